"""The WSGI application of the embedded local AWS: our layers in front of moto's server app.

Requests pass through a chain of layers; each either answers (e.g. Lambda Invoke, provisioned
concurrency, the local HTTP API endpoints, the health check) or hands the request on. What no layer
claims goes to moto, whose gaps are filled by ``localaws.patches``. A layer with a ``watch(environ)``
method sees every request before any layer answers it; what ``watch`` returns (if not None) is called
once the request is answered (the Lambda layer drops its cached function specs around writes).

A CloudFormation call always answers in CloudFormation's own format: when an error of another
service escapes from moto's stack code (moto builds the resources inside the call, so a Lambda
``ConflictException`` raised there comes back as Lambda's JSON), it is turned into CloudFormation's
XML ``ErrorResponse`` with the same code and message, so the client raises a CloudFormation error
instead of failing to parse another service's body.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from xml.sax.saxutils import escape

from localaws import server

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


class LocalAWS:
    """The composed WSGI app. ``shutdown()`` ends every process the layers started."""

    def __init__(self, state_dir: Path, url: str):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        from localaws import patches

        patches.apply_all()
        self.state_dir = Path(state_dir)
        self.url = url
        self.moto_app = DomainDispatcherApplication(create_backend_app)
        self.layers: list = []  # objects with .handle(environ, start_response) -> iterable | None, .shutdown()
        for factory in _layer_factories():
            self.layers.append(factory(self))
        self._watchers = [layer.watch for layer in self.layers if hasattr(layer, "watch")]

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == server.HEALTH_PATH:
            body = json.dumps(
                {
                    "service": server.SERVICE_NAME,
                    "pid": os.getpid(),
                    "state_dir": str(self.state_dir),
                    "url": self.url,
                    "lambda_sandbox": _sandbox(),
                }
            ).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        answered = [done for watch in self._watchers if (done := watch(environ)) is not None]
        try:
            for layer in self.layers:
                answer = layer.handle(environ, start_response)
                if answer is not None:
                    return answer
            if _CLOUDFORMATION_SCOPE in environ.get("HTTP_AUTHORIZATION", ""):
                return _in_cloudformation_format(self.moto_app, environ, start_response)
            return self.moto_app(environ, start_response)
        finally:
            for done in answered:
                done()

    def shutdown(self) -> None:
        for layer in reversed(self.layers):
            try:
                layer.shutdown()
            except Exception:  # noqa: BLE001 - shut down the others regardless
                log.exception("error shutting down %s", layer)


_CLOUDFORMATION_SCOPE = "/cloudformation/aws4_request"


def _in_cloudformation_format(app: WSGIApp, environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Run ``app``; a JSON error body (another service's) is rewritten as CloudFormation's XML error."""
    captured: dict = {}

    def capture(status: str, headers: list, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return lambda data: None  # moto's Flask apps return their body; they never write()

    body = b"".join(app(environ, capture))
    status, headers = captured["status"], captured["headers"]
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    if int(status.split()[0]) >= 400 and "json" in content_type:
        try:
            doc = json.loads(body)
            code = str(doc.get("__type") or doc.get("code") or "InternalFailure").split("#")[-1]
            message = str(doc.get("message") or doc.get("Message") or "")
        except (ValueError, AttributeError):
            code, message = "InternalFailure", body.decode(errors="replace")[:1000]
        log.warning("a %s error escaped a CloudFormation call: %s", code, message)
        body = (
            '<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error>'
            f"<Type>Sender</Type><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        ).encode()
        headers = [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-length")]
        headers += [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))]
    start_response(status, headers)
    return [body]


def _sandbox() -> dict | None:
    """What the Lambda engine's sandbox enforces (see ``localaws.lambda_engine.sandbox``)."""
    from localaws.lambda_engine import engine

    return engine._current.sandbox.describe() if engine._current is not None else None


def _layer_factories() -> list:
    """The layers in front of moto, in order. Each takes the LocalAWS and returns a layer."""
    from localaws import http_api
    from localaws.lambda_engine import layer as lambda_layer
    from localaws.sagemaker import layer as sagemaker_layer

    return [lambda_layer.create, sagemaker_layer.create, http_api.create]


def create_app(state_dir: Path, url: str) -> LocalAWS:
    return LocalAWS(state_dir, url)
