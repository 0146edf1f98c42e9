"""The WSGI layer in front of moto that owns Lambda's data plane routes.

- ``POST /2015-03-31/functions/{name}/invocations`` (Invoke): qualifier from ``?Qualifier=``,
  ``name:qualifier`` or an ARN; ``X-Amz-Invocation-Type`` ``Event`` -> 202, ``DryRun`` -> 204; reply
  headers ``X-Amz-Executed-Version``, ``X-Amz-Function-Error``, ``X-Amz-Log-Result`` (``LogType=Tail``).
- ``PUT/GET/DELETE /2019-09-30/functions/{name}/provisioned-concurrency?Qualifier=`` and
  ``GET ...?List=ALL``.
Errors carry ``x-amzn-ErrorType`` so that boto3 raises the modelled exceptions. Other Lambda writes
(delete, update) go to moto and then wake the engine's sweeper, so retired environments end at once.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, unquote

from localaws.lambda_engine import engine as engine_module
from localaws.lambda_engine.engine import Engine
from localaws.lambda_engine.errors import LambdaServiceError

log = logging.getLogger(__name__)

_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
_PROVISIONED = re.compile(r"^/2019-09-30/functions/(?P<name>[^/]+)/provisioned-concurrency/?$")
_FUNCTIONS = "/2015-03-31/functions/"
_REGION = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/")
_REASONS = {
    200: "OK",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def _where(environ: dict) -> dict[str, str]:
    match = _REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
    return {
        "account_id": os.environ.get("MOTO_ACCOUNT_ID", "123456789012"),
        "region": match["region"] if match else os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }


def _body(environ: dict) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length else b""


class LambdaLayer:
    def __init__(self, engine: Engine, moto_app: Callable):
        self.engine = engine
        self.moto_app = moto_app

    def handle(self, environ: dict, start_response: Callable) -> Iterable[bytes] | None:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        invoke = _INVOKE.match(path) if method == "POST" else None
        provisioned = _PROVISIONED.match(path)
        if not (invoke or provisioned):
            if method in ("PUT", "DELETE") and path.startswith(_FUNCTIONS):
                answer = self.moto_app(environ, start_response)
                self.engine.sweep()  # a deleted or updated function's environments end now
                return answer
            return None
        try:
            if invoke:
                return self._invoke(environ, start_response, unquote(invoke["name"]), query)
            return self._provisioned(environ, start_response, method, unquote(provisioned["name"]), query)
        except LambdaServiceError as exc:
            return _reply(
                start_response,
                exc.status,
                json.dumps(exc.body()).encode(),
                {"x-amzn-ErrorType": exc.error_type},
            )

    def _invoke(self, environ: dict, start_response: Callable, name: str, query: dict) -> Iterable[bytes]:
        result = self.engine.invoke(
            name,
            query.get("Qualifier"),
            _body(environ),
            invocation_type=environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse"),
            log_type=environ.get("HTTP_X_AMZ_LOG_TYPE", "None"),
            **_where(environ),
        )
        headers = {"X-Amz-Executed-Version": result.executed_version}
        if result.request_id:
            headers["x-amzn-RequestId"] = result.request_id
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        if result.log_result is not None:
            headers["X-Amz-Log-Result"] = result.log_result
        return _reply(start_response, result.status_code, result.payload, headers)

    def _provisioned(
        self, environ: dict, start_response: Callable, method: str, name: str, query: dict
    ) -> Iterable[bytes]:
        where = _where(environ)
        qualifier = query.get("Qualifier")
        if method == "GET" and query.get("List") == "ALL":
            configs = self.engine.list_provisioned_concurrency(name, **where)
            return _reply(
                start_response, 200, json.dumps({"ProvisionedConcurrencyConfigs": configs}).encode()
            )
        if method == "GET":
            config = self.engine.get_provisioned_concurrency(name, qualifier, **where)
            return _reply(start_response, 200, json.dumps(config).encode())
        if method == "PUT":
            try:
                count = int(json.loads(_body(environ) or b"{}")["ProvisionedConcurrentExecutions"])
            except (ValueError, KeyError, TypeError) as exc:
                raise LambdaServiceError(
                    400, "InvalidParameterValueException", "ProvisionedConcurrentExecutions must be a number."
                ) from exc
            config = self.engine.put_provisioned_concurrency(name, qualifier, count, **where)
            return _reply(start_response, 202, json.dumps(config).encode())
        if method == "DELETE":
            self.engine.delete_provisioned_concurrency(name, qualifier, **where)
            return _reply(start_response, 204, b"")
        raise LambdaServiceError(405, "InvalidRequestContentException", f"{method} is not supported here.")

    def shutdown(self) -> None:
        self.engine.shutdown()
        if engine_module._current is self.engine:
            engine_module._current = None


def _reply(
    start_response: Callable, status: int, body: bytes, headers: dict[str, str] | None = None
) -> list[bytes]:
    header_list = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    header_list += list((headers or {}).items())
    start_response(f"{status} {_REASONS.get(status, 'Error')}", header_list)
    return [body]


def create(local_aws: Any) -> LambdaLayer:
    """Layer factory for :class:`localaws.app.LocalAWS`; makes its engine the process's engine."""
    engine = Engine(local_aws.state_dir, local_aws.url)
    engine_module._current = engine
    return LambdaLayer(engine, local_aws.moto_app)
