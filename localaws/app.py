"""The WSGI application of the embedded local AWS: our layers in front of moto's server app.

Requests pass through a chain of layers; each either answers (e.g. Lambda Invoke, provisioned
concurrency, the local HTTP API endpoints, the health check) or hands the request on. What no layer
claims goes to moto, whose gaps are filled by ``localaws.patches``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

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

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == server.HEALTH_PATH:
            body = json.dumps(
                {
                    "service": server.SERVICE_NAME,
                    "pid": os.getpid(),
                    "state_dir": str(self.state_dir),
                    "url": self.url,
                }
            ).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        for layer in self.layers:
            answer = layer.handle(environ, start_response)
            if answer is not None:
                return answer
        return self.moto_app(environ, start_response)

    def shutdown(self) -> None:
        for layer in reversed(self.layers):
            try:
                layer.shutdown()
            except Exception:  # noqa: BLE001 - shut down the others regardless
                log.exception("error shutting down %s", layer)


def _layer_factories() -> list:
    """The layers in front of moto, in order. Each takes the LocalAWS and returns a layer."""
    from localaws import http_api
    from localaws.lambda_engine import layer as lambda_layer

    return [lambda_layer.create, http_api.create]


def create_app(state_dir: Path, url: str) -> LocalAWS:
    return LocalAWS(state_dir, url)
