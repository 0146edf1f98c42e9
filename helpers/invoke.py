"""Invoke a Lambda function and read what came back: the payload, the function error, the REPORT line.

``invoke`` asks for the log tail (``LogType="Tail"``) so that every invocation carries its own
REPORT line (Duration, Billed Duration, Init Duration, Max Memory Used) and, when init did not end
normally, its INIT_REPORT line; it times the client round trip around the call.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from helpers import session
from helpers.reports import InitReport, Report, init_reports_in, report_from_log_result

log = logging.getLogger(__name__)


class FunctionFailed(RuntimeError):
    """The function raised (or Lambda failed it); carries Lambda's errorType and errorMessage."""

    def __init__(self, invocation: Invocation):
        self.invocation = invocation
        body = invocation.payload if isinstance(invocation.payload, dict) else {}
        self.error_type = body.get("errorType", invocation.function_error)
        self.error_message = body.get("errorMessage", str(invocation.payload))
        super().__init__(f"{invocation.target} failed: {self.error_type}: {self.error_message}")


@dataclass
class Invocation:
    """One invocation: what the function returned and what Lambda reported about it."""

    target: str
    status_code: int
    payload: Any
    function_error: str | None
    executed_version: str | None
    report: Report | None
    client_ms: float
    log_tail: str
    request_id: str | None
    init_report: InitReport | None = None

    @property
    def init(self) -> dict | None:
        """The ``init`` block the inference function adds to the first response of each environment."""
        init = self.payload.get("init") if isinstance(self.payload, dict) else None
        return init if isinstance(init, dict) else None

    @property
    def ok(self) -> bool:
        return self.function_error is None

    def raise_for_error(self) -> Invocation:
        if not self.ok:
            raise FunctionFailed(self)
        return self


def invoke(
    function_name: str, payload: Any = None, qualifier: str | None = None, *, client=None
) -> Invocation:
    """Invoke synchronously with the log tail; return the parsed payload and REPORT (never raises on a
    function error: check ``.ok`` or call ``.raise_for_error()``)."""
    lam = client or session.client("lambda")
    body = (
        payload if isinstance(payload, bytes) else json.dumps(payload if payload is not None else {}).encode()
    )
    args = {"FunctionName": function_name, "Payload": body, "LogType": "Tail"}
    if qualifier:
        args["Qualifier"] = qualifier
    started = time.perf_counter()
    response = lam.invoke(**args)
    raw = response["Payload"].read()
    client_ms = (time.perf_counter() - started) * 1000
    tail = base64.b64decode(response.get("LogResult", "")).decode("utf-8", errors="replace")
    request_id = response.get("ResponseMetadata", {}).get("RequestId")
    try:
        report = (
            report_from_log_result(response["LogResult"], request_id) if response.get("LogResult") else None
        )
    except LookupError:
        report = None
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode("utf-8", errors="replace")
    target = f"{function_name}:{qualifier}" if qualifier else function_name
    try:
        found = init_reports_in(tail.splitlines())
        init_report = next((r for r in found if r.timed_out), found[0] if found else None)
    except ValueError:
        init_report = None
    return Invocation(
        target=target,
        status_code=response["StatusCode"],
        payload=parsed,
        function_error=response.get("FunctionError"),
        executed_version=response.get("ExecutedVersion"),
        report=report,
        client_ms=client_ms,
        log_tail=tail,
        request_id=request_id,
        init_report=init_report,
    )


def fields(report: Report | None) -> dict[str, Any]:
    """A REPORT line's fields as a flat dict (None where Lambda printed nothing)."""
    return {
        "duration_ms": report.duration_ms if report else None,
        "billed_ms": report.billed_duration_ms if report else None,
        "init_ms": report.init_duration_ms if report else None,
        "max_memory_mb": report.max_memory_used_mb if report else None,
        "memory_size_mb": report.memory_size_mb if report else None,
        "status": report.status if report else None,
    }
