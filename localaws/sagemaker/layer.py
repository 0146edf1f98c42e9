"""The WSGI layer that owns InvokeEndpoint for serverless endpoints (stock moto answers canned data).

``POST /endpoints/{EndpointName}/invocations`` signed for ``sagemaker``
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html), answered
as SageMaker Runtime does:

- an unknown endpoint: ``ValidationError`` (400) "Endpoint <name> of account <account> not found.";
  one not ``InService``: ``ValidationError`` saying its status;
- a body over 4 MB, the serverless limit
  (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-invoke.html): 413 "HTTP content
  length exceeded 4194304 bytes." (the form SageMaker uses for its limit), drained, never held (a body
  over the 6 MB of any endpoint never reaches this layer: :mod:`localaws.limits`);
- more than ``MaxConcurrency`` at once: ``ThrottlingException`` (400, the common error of
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/CommonErrors.html), which boto3 retries;
- the container's 4xx/5xx: ``ModelError`` (424) "Received client|server error (<status>) from primary
  with message "<body>". See <CloudWatch console link> ...", with ``OriginalStatusCode``,
  ``OriginalMessage`` and ``LogStreamArn``; no answer within 60 s: ``ModelError`` with status 0 and
  "Your invocation timed out while waiting for a response from container primary...";
- success: the container's body and Content-Type, ``x-Amzn-Invoked-Production-Variant`` and the
  container's ``X-Amzn-SageMaker-Custom-Attributes``.
Every invocation publishes its metrics (:mod:`.telemetry`). Endpoints with instance-based variants
only are left to moto.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from moto.sagemaker.models import sagemaker_backends

from localaws import bodies
from localaws.sagemaker import endpoints, telemetry
from localaws.sagemaker.pool import Throttled

log = logging.getLogger(__name__)

_INVOKE = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations/?$")
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/sagemaker/aws4_request")
OFF_SETTING = "LOCALAWS_SAGEMAKER_DATA_PLANE"  # off: stock moto's endpoints (to check a test fails there)
PAYLOAD_LIMIT = 4 * 1024 * 1024  # serverless: 4 MB request and response
_FORWARDED = {"CONTENT_TYPE": "Content-Type", "HTTP_ACCEPT": "Accept",
              "HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES": "X-Amzn-SageMaker-Custom-Attributes"}  # fmt: skip
TIMEOUT_MESSAGE = (
    "Your invocation timed out while waiting for a response from container primary. Review the latency "
    "metrics for each container in Amazon CloudWatch, resolve the issue, and try again."
)


class SageMakerRuntimeLayer:
    def __init__(self, manager: endpoints.Manager, moto_app: Callable):
        self.manager = manager
        self.moto_app = moto_app

    def handle(self, environ: dict, start_response: Callable) -> Iterable[bytes] | None:
        match = _INVOKE.match(environ.get("PATH_INFO", ""))
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if not (match and scope and environ.get("REQUEST_METHOD") == "POST"):
            return None
        started = time.perf_counter()
        name, region = unquote(match["name"]), scope["region"]
        account = os.environ.get("MOTO_ACCOUNT_ID", "123456789012")
        endpoint = sagemaker_backends[account][region].endpoints.get(name)
        if endpoint is None:
            return _error(
                start_response, 400, "ValidationError", f"Endpoint {name} of account {account} not found."
            )
        pool = self.manager.variant(
            account, region, name, environ.get("HTTP_X_AMZN_SAGEMAKER_TARGET_VARIANT")
        )
        if endpoint.endpoint_status != "InService":
            return _error(
                start_response, 400, "ValidationError",
                f"Endpoint {name} of account {account} is not in service (its status is "
                f"{endpoint.endpoint_status}): wait for InService (the endpoint_in_service waiter) and try again.",
            )  # fmt: skip
        if pool is None:
            return None  # instance-based: moto's canned answer
        try:
            payload = bodies.read_body(environ, PAYLOAD_LIMIT)
        except bodies.TooLarge:
            body = json.dumps({"message": f"HTTP content length exceeded {PAYLOAD_LIMIT} bytes."}).encode()
            return _reply(start_response, 413, body)
        headers = {header: environ[key] for key, header in _FORWARDED.items() if environ.get(key)}
        try:
            answer = pool.invoke(payload, headers)
        except Throttled:
            return _error(
                start_response, 400, "ThrottlingException",
                f"Endpoint {name} is serving its MaxConcurrency ({pool.max_concurrency}) of invocations: retry "
                "with backoff, or raise MaxConcurrency in a new endpoint configuration.",
            )  # fmt: skip
        total_us = (time.perf_counter() - started) * 1e6
        telemetry.put_invocation_metrics(
            account, region, name, pool.spec.variant_name,
            model_latency_us=answer.model_latency_us,
            overhead_latency_us=max(0.0, total_us - (answer.model_latency_us or 0.0)),
            setup_time_us=answer.setup_ms * 1000 if answer.setup_ms is not None else None,
            status=answer.status if answer.failure is None else (0 if answer.failure == "timeout" else 500),
        )  # fmt: skip
        console = (
            f"See https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:group="
            f"{telemetry.log_group(name)} in account {account} for more information."
        )
        if answer.failure == "timeout":
            return _model_error(start_response, 0, TIMEOUT_MESSAGE, answer.log_stream_arn, console)
        if answer.failure == "setup":
            message = f"The model container could not start: {answer.message}"
            if self.manager.framework_dir() is None:
                message += (
                    f" (the local backend has no framework for the PyTorch image: set {endpoints.FRAMEWORK_SETTING} "
                    "to a folder holding torch, or create <state>/sagemaker/framework)"
                )
            return _model_error(start_response, 500, message, answer.log_stream_arn, console)
        if answer.failure == "crash":
            return _model_error(start_response, 500, answer.message, answer.log_stream_arn, console)
        if answer.status >= 400:
            text = answer.body.decode(errors="replace")
            return _model_error(start_response, answer.status, text, answer.log_stream_arn, console)
        reply_headers = {
            "Content-Type": _header(answer.headers, "Content-Type") or "application/octet-stream",
            "x-Amzn-Invoked-Production-Variant": pool.spec.variant_name,
        }
        custom = _header(answer.headers, "X-Amzn-SageMaker-Custom-Attributes")
        if custom:
            reply_headers["X-Amzn-SageMaker-Custom-Attributes"] = custom
        return _reply(start_response, 200, answer.body, reply_headers)

    def shutdown(self) -> None:
        endpoints.uninstall(self.manager)


def _header(headers: dict, name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _model_error(
    start_response: Callable, status: int, text: str, log_stream_arn: str, console: str
) -> list[bytes]:
    kind = "client" if 400 <= status < 500 else "server"
    body = {
        "Message": f'Received {kind} error ({status}) from primary with message "{text}". {console}',
        "OriginalStatusCode": status,
        "OriginalMessage": text[:2048],
        "LogStreamArn": log_stream_arn,
    }
    return _reply(start_response, 424, json.dumps(body).encode(), {"x-amzn-ErrorType": "ModelError"})


def _error(start_response: Callable, status: int, code: str, message: str) -> list[bytes]:
    return _reply(
        start_response, status, json.dumps({"message": message}).encode(), {"x-amzn-ErrorType": code}
    )


def _reply(
    start_response: Callable, status: int, body: bytes, headers: dict[str, str] | None = None
) -> list[bytes]:
    return bodies.reply(start_response, status, body, headers)


class _Off:
    """The layer when the data plane is switched off (to compare with stock moto)."""

    def handle(self, environ: dict, start_response: Callable) -> None:
        return None

    def shutdown(self) -> None:
        pass


def create(local_aws: Any) -> SageMakerRuntimeLayer:
    """Layer factory for :class:`localaws.app.LocalAWS`: the Lambda engine's sandbox, reused."""
    from localaws.lambda_engine import engine

    if os.environ.get(OFF_SETTING, "").lower() in ("off", "0", "false", "no"):
        log.warning("%s=off: SageMaker endpoints behave as in stock moto (no data plane)", OFF_SETTING)
        return _Off()
    sandbox = engine._current.sandbox if engine._current is not None else None
    manager = endpoints.install(local_aws.state_dir, sandbox)
    return SageMakerRuntimeLayer(manager, local_aws.moto_app)
