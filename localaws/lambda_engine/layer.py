"""The WSGI layer in front of moto that owns Lambda's data plane routes.

- ``POST /2015-03-31/functions/{name}/invocations`` (Invoke): qualifier from ``?Qualifier=``,
  ``name:qualifier`` or an ARN; ``X-Amz-Invocation-Type`` ``Event`` -> 202, ``DryRun`` -> 204; reply
  headers ``X-Amz-Executed-Version``, ``X-Amz-Function-Error``, ``X-Amz-Log-Result`` (``LogType=Tail``).
- ``PUT/GET/DELETE /2019-09-30/functions/{name}/provisioned-concurrency?Qualifier=`` and
  ``GET ...?List=ALL``; ``GET /2016-08-19/account-settings`` (GetAccountSettings).
- Invoke's limits (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html and
  https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): a request above
  6291456 bytes (synchronous) or 1048576 bytes (``Event``) is refused with
  ``RequestEntityTooLargeException`` (413) before this layer sees it (:mod:`localaws.limits`); a
  body that is not JSON, or nested too deeply to parse, is ``InvalidRequestContentException`` (400);
  a function's response above 6291556 bytes becomes ``Function.ResponseSizeTooLarge`` with
  ``X-Amz-Function-Error: Unhandled``, as Lambda answers.
Errors carry ``x-amzn-ErrorType`` so that boto3 raises the modelled exceptions. Other Lambda writes
(delete, update) go to moto and then wake the engine's sweeper, so retired environments end at once.
An update (UpdateFunctionConfiguration, UpdateFunctionCode) keeps the configuration from before it
running while it is ``InProgress``, as AWS does (see :func:`.function_spec.hold_previous`).

:meth:`LambdaLayer.watch` sees every request first: around one that may change a function (a Lambda
or CloudFormation write) the engine's cached specs are dropped, and before one that reads or changes
CloudWatch Logs the log lines still buffered are written (:func:`localaws.logstreams.flush`), so a
GetLogEvents right after an Invoke sees its START, END and REPORT.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, unquote

from moto.awslambda.exceptions import LambdaClientError

from localaws import bodies, limits, logstreams
from localaws.lambda_engine import asynchronous, function_spec
from localaws.lambda_engine import engine as engine_module
from localaws.lambda_engine.engine import Engine
from localaws.lambda_engine.errors import LambdaServiceError
from localaws.patches import lambda_states

log = logging.getLogger(__name__)

_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
_PROVISIONED = re.compile(r"^/2019-09-30/functions/(?P<name>[^/]+)/provisioned-concurrency/?$")
_ACCOUNT_SETTINGS = re.compile(r"^/2016-08-19/account-settings/?$")
_FUNCTIONS = "/2015-03-31/functions/"
_UPDATE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/(?:configuration|code)/?$")
_SERVICE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/(?P<service>[^/]+)/")
_READS = ("GET", "HEAD", "OPTIONS")
RESPONSE_LIMIT = 6291556  # 6 MB + 100 bytes: what Lambda's error message names
_REGION = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/")


def _where(environ: dict) -> dict[str, str]:
    match = _REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
    return {
        "account_id": os.environ.get("MOTO_ACCOUNT_ID", "123456789012"),
        "region": match["region"] if match else os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }


def _invoke_body(environ: dict, invocation_type: str) -> bytes:
    """The request body (held to Invoke's limit in front of every layer: :mod:`localaws.limits`)."""
    limit = limits.INVOKE_LIMIT.get(invocation_type, limits.INVOKE_LIMIT["RequestResponse"])
    body = bodies.read_body(environ, limit)
    try:
        json.loads(body or b"{}")
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise LambdaServiceError(
            400,
            "InvalidRequestContentException",
            f"Could not parse request body into json: Could not parse payload into json: {reason}",
        ) from None
    return body


def response_size_error(payload: bytes) -> bytes | None:
    """The error document Lambda returns instead of a response above its limit, else None."""
    if len(payload) <= RESPONSE_LIMIT:
        return None
    return json.dumps(
        {
            "errorMessage": "Response payload size exceeded maximum allowed payload size "
            f"({RESPONSE_LIMIT} bytes).",
            "errorType": "Function.ResponseSizeTooLarge",
        }
    ).encode()


class LambdaLayer:
    def __init__(self, engine: Engine, moto_app: Callable):
        self.engine = engine
        self.moto_app = moto_app

    def watch(self, environ: dict) -> Callable[[], None] | None:
        """Called before any layer sees the request; what it returns is called once it is answered."""
        match = _SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = match["service"] if match else None
        if service in ("logs", "cloudformation") or environ.get("HTTP_X_AMZ_TARGET", "").startswith("Logs_"):
            logstreams.flush()  # a read sees every line written so far; a deletion deletes them too
        if environ.get("REQUEST_METHOD", "GET") in _READS or service not in (
            None,
            "lambda",
            "cloudformation",
        ):
            return None
        if _INVOKE.match(environ.get("PATH_INFO", "")):
            return None
        changing = function_spec.changing()
        changing.__enter__()
        return lambda: changing.__exit__(None, None, None)

    def handle(self, environ: dict, start_response: Callable) -> Iterable[bytes] | None:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        invoke = _INVOKE.match(path) if method == "POST" else None
        provisioned = _PROVISIONED.match(path)
        if method == "GET" and _ACCOUNT_SETTINGS.match(path):
            from localaws.patches.lambda_validation import account_settings

            doc = account_settings(**_where(environ))
            return bodies.reply(start_response, 200, json.dumps(doc).encode())
        if not (invoke or provisioned):
            if method in ("PUT", "DELETE") and path.startswith(_FUNCTIONS):
                update = _UPDATE.match(path) if method == "PUT" else None
                previous = self._latest(unquote(update["name"]), environ) if update else None
                answer = self.moto_app(environ, start_response)
                if previous is not None:
                    self._hold_while_in_progress(previous)
                self.engine.sweep()  # a deleted or updated function's environments end now
                return answer
            return None
        try:
            if invoke:
                return self._invoke(environ, start_response, unquote(invoke["name"]), query)
            return self._provisioned(environ, start_response, method, unquote(provisioned["name"]), query)
        except LambdaServiceError as exc:
            headers = {"x-amzn-ErrorType": exc.error_type}
            return bodies.reply(start_response, exc.status, json.dumps(exc.body()).encode(), headers)

    def _invoke(self, environ: dict, start_response: Callable, name: str, query: dict) -> Iterable[bytes]:
        invocation_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
        where = _where(environ)
        payload = _invoke_body(environ, invocation_type)
        result = self.engine.invoke(
            name,
            query.get("Qualifier"),
            payload,
            invocation_type=invocation_type,
            log_type=environ.get("HTTP_X_AMZ_LOG_TYPE", "None"),
            client_context=environ.get("HTTP_X_AMZ_CLIENT_CONTEXT"),
            **where,
        )
        too_large = response_size_error(result.payload)
        if too_large is not None:
            result.payload, result.function_error = too_large, "Unhandled"
        headers = {"X-Amz-Executed-Version": result.executed_version}
        if result.request_id:
            headers["x-amzn-RequestId"] = result.request_id
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        if result.log_result is not None:
            headers["X-Amz-Log-Result"] = result.log_result
        return bodies.reply(start_response, result.status_code, result.payload, headers)

    def _latest(self, name: str, environ: dict) -> function_spec.FunctionSpec | None:
        """``$LATEST`` as it runs before an update; None if there is no such function."""
        try:
            return function_spec.resolve(name, None, **_where(environ))
        except LambdaServiceError:
            return None

    def _hold_while_in_progress(self, previous: function_spec.FunctionSpec) -> None:
        """After an update: while it is ``InProgress``, invocations of ``$LATEST`` run ``previous``.

        During the update "you can't modify the function, but you can still invoke it", and
        LastUpdateStatus says "when the update is complete and the function is processing events with
        the new configuration" (https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionConfiguration.html;
        states: https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html)."""
        from moto.awslambda.utils import get_backend

        try:
            fn = get_backend(previous.account_id, previous.region).get_function(previous.name)
        except LambdaClientError:
            return
        until = lambda_states.busy_until(fn)
        if until > time.monotonic():
            function_spec.hold_previous(previous, until)
            self.engine.sweep_at(until)

    def _provisioned(
        self, environ: dict, start_response: Callable, method: str, name: str, query: dict
    ) -> Iterable[bytes]:
        where = _where(environ)
        qualifier = query.get("Qualifier")
        if method == "GET" and query.get("List") == "ALL":
            configs = self.engine.list_provisioned_concurrency(name, **where)
            return bodies.reply(
                start_response, 200, json.dumps({"ProvisionedConcurrencyConfigs": configs}).encode()
            )
        if method == "GET":
            config = self.engine.get_provisioned_concurrency(name, qualifier, **where)
            return bodies.reply(start_response, 200, json.dumps(config).encode())
        if method == "PUT":
            try:
                document = json.loads(bodies.read_body(environ, limits.DEFAULT_LIMIT) or b"{}")
                count = int(document["ProvisionedConcurrentExecutions"])
            except RecursionError:
                raise LambdaServiceError(
                    400,
                    "InvalidRequestContentException",
                    "Could not parse request body into json: nested too deeply",
                ) from None
            except (ValueError, KeyError, TypeError) as exc:
                raise LambdaServiceError(
                    400, "InvalidParameterValueException", "ProvisionedConcurrentExecutions must be a number."
                ) from exc
            config = self.engine.put_provisioned_concurrency(name, qualifier, count, **where)
            return bodies.reply(start_response, 202, json.dumps(config).encode())
        if method == "DELETE":
            self.engine.delete_provisioned_concurrency(name, qualifier, **where)
            return bodies.reply(start_response, 204, b"")
        raise LambdaServiceError(405, "InvalidRequestContentException", f"{method} is not supported here.")

    def shutdown(self) -> None:
        self.engine.shutdown()
        if engine_module._current is self.engine:
            engine_module._current = None


def create(local_aws: Any) -> LambdaLayer:
    """Layer factory for :class:`localaws.app.LocalAWS`; makes its engine the process's engine."""
    engine = Engine(local_aws.state_dir, local_aws.url)
    engine_module._current = engine
    asynchronous.recover(engine)  # events a stopped server left queued run again
    return LambdaLayer(engine, local_aws.moto_app)
