"""Lambda ``REPORT`` lines: parse them, find them in invoke tails and CloudWatch events, format them.

Lambda writes one ``REPORT`` line per invocation, tab-separated, for example::

    REPORT RequestId: 8f50...\tDuration: 15.74 ms\tBilled Duration: 147 ms\tMemory Size: 128 MB\t
    Max Memory Used: 56 MB\tInit Duration: 130.49 ms

``Init Duration`` appears only on the first invocation of an on-demand environment; ``Status: timeout``
(or ``Status: error`` followed by ``Error Type: Runtime.OutOfMemory``) comes last when the invocation
failed at the platform level. Fields this module does not know (``XRAY TraceId``, ``Restore Duration``,
a trailing tab, an ``XRAY`` line in the same CloudWatch event) are ignored, so new AWS fields do not
break parsing.

An on-demand init is capped at 10 s. Past that, Lambda logs
``INIT_REPORT Init Duration: 9999.86 ms\tPhase: init\tStatus: timeout``, runs init again inside the
first invocation under the function's timeout, and that invocation's ``REPORT`` has no ``Init Duration``:
its Duration includes the init (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html,
"Init phase"). ``parse_init_report`` reads those lines, and ``init_details`` the inference function's
own init log line (JSON with the phases of its init).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_PREFIX = "REPORT RequestId:"
_INIT_PREFIX = "INIT_REPORT"
#: Lambda's cap on an on-demand init; past it, init is re-run inside the first invocation.
INIT_CAP_MS = 10_000.0


@dataclass(frozen=True)
class Report:
    """The fields of one ``REPORT`` line. Durations in milliseconds, memory in MB (as Lambda prints them)."""

    request_id: str
    duration_ms: float
    billed_duration_ms: int
    memory_size_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None = None
    status: str | None = None
    error_type: str | None = None


# Field name as printed -> (Report attribute, unit printed after the value or None, converter).
_FIELDS: dict[str, tuple[str, str | None, type]] = {
    "Duration": ("duration_ms", "ms", float),
    "Billed Duration": ("billed_duration_ms", "ms", int),
    "Memory Size": ("memory_size_mb", "MB", int),
    "Max Memory Used": ("max_memory_used_mb", "MB", int),
    "Init Duration": ("init_duration_ms", "ms", float),
    "Status": ("status", None, str),
    "Error Type": ("error_type", None, str),
}
_REQUIRED = ("Duration", "Billed Duration", "Memory Size", "Max Memory Used")


def is_report_line(line: str) -> bool:
    """True if ``line`` is a ``REPORT`` line (leading whitespace allowed)."""
    return line.lstrip().startswith(_PREFIX)


def parse_report(line: str) -> Report:
    """Parse one ``REPORT`` line (or a CloudWatch event message whose first line is one).

    Raises ``ValueError`` naming the line when it is not a ``REPORT`` line or a field is missing or
    malformed.
    """
    text = line.strip().splitlines()[0] if line.strip() else ""
    if not text.startswith(_PREFIX):
        raise ValueError(f"Not a Lambda REPORT line (it must start with {_PREFIX!r}): {line!r}")
    first, *rest = text.split("\t")
    request_id = first[len(_PREFIX) :].strip()
    if not request_id:
        raise ValueError(f"REPORT line has an empty RequestId: {line!r}")
    values: dict[str, Any] = {"request_id": request_id}
    for part in rest:
        name, sep, raw = part.strip().partition(": ")
        if not sep or name not in _FIELDS:
            continue  # XRAY, Restore Duration, empty trailing field...: not ours to interpret
        attribute, unit, convert = _FIELDS[name]
        values[attribute] = _convert(raw.strip(), unit, convert, name, line)
    missing = [name for name in _REQUIRED if _FIELDS[name][0] not in values]
    if missing:
        raise ValueError(f"REPORT line lacks {', '.join(missing)}: {line!r}")
    return Report(**values)


def _convert(raw: str, unit: str | None, convert: type, name: str, line: str) -> Any:
    if unit is not None:
        number, _, printed_unit = raw.partition(" ")
        if printed_unit != unit:
            raise ValueError(f"REPORT field {name!r} should be in {unit}, got {raw!r}: {line!r}")
        raw = number
    try:
        return convert(raw)
    except ValueError:
        raise ValueError(f"REPORT field {name!r} has a malformed value {raw!r}: {line!r}") from None


def format_report(report: Report) -> str:
    """The ``REPORT`` line Lambda would print for ``report`` (no trailing newline).

    Durations have two decimals, billed duration and memory are integers; ``Init Duration``,
    ``Status`` and ``Error Type`` appear only when set, in that order, as on AWS.
    """
    parts = [
        f"{_PREFIX} {report.request_id}",
        f"Duration: {report.duration_ms:.2f} ms",
        f"Billed Duration: {report.billed_duration_ms} ms",
        f"Memory Size: {report.memory_size_mb} MB",
        f"Max Memory Used: {report.max_memory_used_mb} MB",
    ]
    if report.init_duration_ms is not None:
        parts.append(f"Init Duration: {report.init_duration_ms:.2f} ms")
    if report.status is not None:
        parts.append(f"Status: {report.status}")
    if report.error_type is not None:
        parts.append(f"Error Type: {report.error_type}")
    return "\t".join(parts)


def report_from_log_result(log_result: str, request_id: str | None = None) -> Report:
    """The ``REPORT`` in an invoke response's ``LogResult`` (base64 log tail from ``LogType="Tail"``).

    With ``request_id``, the report for that request; otherwise the last one in the tail.
    Raises ``LookupError`` when the tail holds no matching ``REPORT`` line.
    """
    try:
        text = base64.b64decode(log_result, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        raise ValueError(
            f"LogResult is not base64 (pass the invoke response's 'LogResult' as is): {log_result[:60]!r}"
        ) from None
    return _pick(_reports_in(text.splitlines()), request_id, "the invoke LogResult tail")


def reports_from_events(events: Iterable[Mapping[str, Any]]) -> list[Report]:
    """Every ``REPORT`` in CloudWatch log events (dicts with a ``message``, as get/filter_log_events return)."""
    return _reports_in(event["message"] for event in events)


def report_from_events(events: Iterable[Mapping[str, Any]], request_id: str | None = None) -> Report:
    """The ``REPORT`` for ``request_id`` (or the last one) in CloudWatch log events.

    Raises ``LookupError`` when none matches: the events may not have arrived yet, so callers that
    just invoked should poll.
    """
    return _pick(reports_from_events(events), request_id, "the log events")


def _reports_in(lines: Iterable[str]) -> list[Report]:
    return [parse_report(line) for line in lines if is_report_line(line)]


def _pick(reports: list[Report], request_id: str | None, where: str) -> Report:
    if request_id is not None:
        reports = [report for report in reports if report.request_id == request_id]
    if not reports:
        wanted = f"for request {request_id}" if request_id else "at all"
        raise LookupError(
            f"No REPORT line {wanted} in {where}; invoke with LogType='Tail' or wait for the log events."
        )
    return reports[-1]


@dataclass(frozen=True)
class InitReport:
    """One ``INIT_REPORT`` line: an init that did not end normally (``Status: timeout`` or ``error``)."""

    init_duration_ms: float
    phase: str | None = None
    status: str | None = None
    error_type: str | None = None

    @property
    def timed_out(self) -> bool:
        """True when init ran past its cap and Lambda re-runs it inside the invocation."""
        return self.status == "timeout"


def is_init_report_line(line: str) -> bool:
    """True if ``line`` is an ``INIT_REPORT`` line."""
    return line.lstrip().startswith(_INIT_PREFIX)


def parse_init_report(line: str) -> InitReport:
    """Parse ``INIT_REPORT Init Duration: 10000.00 ms\tPhase: init\tStatus: timeout`` (fields may vary)."""
    text = line.strip()
    if not text.startswith(_INIT_PREFIX):
        raise ValueError(f"Not a Lambda INIT_REPORT line (it must start with {_INIT_PREFIX!r}): {line!r}")
    values: dict[str, Any] = {}
    for part in text[len(_INIT_PREFIX) :].split("\t"):
        name, sep, raw = part.strip().partition(": ")
        if name == "Init Duration" and sep:
            values["init_duration_ms"] = _convert(raw.strip(), "ms", float, name, line)
        elif name in ("Phase", "Status", "Error Type") and sep:
            values[name.lower().replace(" ", "_")] = raw.strip()
    if "init_duration_ms" not in values:
        raise ValueError(f"INIT_REPORT line lacks Init Duration: {line!r}")
    return InitReport(**values)


def init_reports_in(lines: Iterable[str]) -> list[InitReport]:
    """Every ``INIT_REPORT`` in ``lines`` (a decoded log tail's lines, or CloudWatch messages)."""
    return [parse_init_report(line) for line in lines if is_init_report_line(line)]


def init_details(message: str) -> dict[str, Any] | None:
    """The JSON object logged by the function's init (``{"init": {"phases_ms": ...}, ...}``), or None.

    ``message`` is a CloudWatch event or log line as the Python runtime writes it
    (``[INFO]\\t<time>\\t<request id>\\t{...}``), or with the function's LogFormat JSON, the object Lambda
    wraps it in (``{"level": "INFO", "message": ...}``). Lines that hold no JSON object, or one without
    ``init`` (or the older ``init_ms``), give None.
    """
    start = message.find("{")
    if start < 0:
        return None
    try:
        data = json.loads(message[start:].strip())
    except ValueError:
        return None
    if isinstance(data, dict) and "init" not in data and "init_ms" not in data:
        # LogFormat JSON: Lambda wraps the line as {"timestamp", "level", "message": <the line>, ...}
        inner = data.get("message")
        if isinstance(inner, str):
            return init_details(inner) if inner.lstrip().startswith("{") else None
        data = inner
    if not isinstance(data, dict) or not ("init" in data or "init_ms" in data):
        return None
    return data


def init_phases(init: Mapping[str, Any] | None) -> dict[str, float]:
    """``init["phases_ms"]`` as floats (empty when absent or malformed): the contract of the inference
    function's first response in each environment and of its init log line."""
    phases = (init or {}).get("phases_ms") if isinstance(init, Mapping) else None
    if not isinstance(phases, Mapping):
        return {}
    return {name: float(value) for name, value in phases.items() if isinstance(value, int | float)}
