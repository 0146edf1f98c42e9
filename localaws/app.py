"""The WSGI application of the embedded local AWS: our layers in front of moto's server app.

Requests pass through a chain of layers; each either answers (e.g. Lambda Invoke, provisioned
concurrency, the local HTTP API endpoints, the health check) or hands the request on. What no layer
claims goes to moto, whose gaps are filled by ``localaws.patches``. A layer with a ``watch(environ)``
method sees every request before any layer answers it; what ``watch`` returns (if not None) is called
once the request is answered (the Lambda layer drops its cached function specs around writes).

Before any layer, every request's body is held to its limit (:mod:`localaws.limits`: AWS's limits and
AWS's answers, the body never read past them); whatever fails while answering, in a layer or in moto,
is answered with the service's modelled error, never an HTML page (:mod:`localaws.guard`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from localaws import bodies, guard, limits, server, service_errors
from localaws.patches.apigatewayv2 import ENDPOINT_PATH

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


class LocalAWS:
    """The composed WSGI app. ``shutdown()`` ends every process the layers started."""

    def __init__(self, state_dir: Path, url: str):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        from localaws import patches
        from localaws.patches import logs_store

        patches.apply_all()
        self.state_dir = Path(state_dir)
        logs_store.open_store(self.state_dir / "logs")  # CloudWatch Logs events on disk, not in memory
        self.url = url
        self.moto_app = DomainDispatcherApplication(create_backend_app)
        self.layers: list = []  # objects with .handle(environ, start_response) -> iterable | None, .shutdown()
        for factory in _layer_factories():
            self.layers.append(factory(self))
        self._watchers = [layer.watch for layer in self.layers if hasattr(layer, "watch")]

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == server.HEALTH_PATH:
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
        service = None if path.startswith(_HTTP_API) else service_errors.service_of(environ)
        refused = _refuse_oversized(environ, start_response, service)
        if refused is not None:
            return refused
        answered = [done for watch in self._watchers if (done := watch(environ)) is not None]
        try:
            for layer in self.layers:
                answer = layer.handle(environ, start_response)
                if answer is not None:
                    return answer
            if service is None:
                service = service_errors.service_of(environ)
            return guard.call_moto(self.moto_app, environ, start_response, service)
        except Exception as exc:  # noqa: BLE001 - a layer failed: the service's modelled error, not HTML
            status, headers, body = guard.answer_exception(exc, service, environ)
            start_response(status, headers, _exc_info(exc))
            return [body]
        finally:
            for done in answered:
                done()

    def shutdown(self) -> None:
        for layer in reversed(self.layers):
            try:
                layer.shutdown()
            except Exception:  # noqa: BLE001 - shut down the others regardless
                log.exception("error shutting down %s", layer)


_HTTP_API = ENDPOINT_PATH + "/"


def _refuse_oversized(environ: dict, start_response: Callable, service) -> list[bytes] | None:
    """AWS's answer to a body over the request's limit, or to a body that cannot be framed; else None
    (and a chunked body within the limit now has a Content-Length)."""
    limit = limits.for_request(environ, service)
    try:
        bodies.capped_input(environ, limit.bytes)
    except bodies.TooLarge as exc:
        log.info("refused a %d-byte body to %s (limit %d)", exc.length, environ.get("PATH_INFO"), limit.bytes)
        status, headers, body = limit.refuse(exc.length)
        if not exc.drained:
            headers.append(("Connection", "close"))
        start_response(status, headers)
        return [body]
    except bodies.BadFraming as exc:
        status, headers, body = guard.answer_exception(exc, service, environ)
        start_response(status, headers + [("Connection", "close")])
        return [body]
    refused = limits.refuse_deep_xml(environ, service)
    if refused is not None:
        start_response(*refused[:2])
        return [refused[2]]
    return None


def _exc_info(exc: BaseException) -> tuple:
    return (type(exc), exc, exc.__traceback__)


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
