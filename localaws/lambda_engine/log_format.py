"""A function's LoggingConfig applied to its log lines: JSON platform events and log-level filtering.

With ``LogFormat: JSON`` Lambda writes its own lines as JSON platform events, ``{"time", "type",
"record"}`` (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-logformat.html;
records as in https://docs.aws.amazon.com/lambda/latest/dg/telemetry-schema-reference.html):

- ``INIT_START`` -> ``platform.initStart`` ``{initializationType, phase, runtimeVersion,
  runtimeVersionArn, functionName, functionVersion, instanceId, instanceMaxMemory}`` (plus
  ``localSandbox`` / ``localRuntime``: what this machine did not enforce, as INIT_START's text says);
- ``START`` -> ``platform.start`` ``{requestId, functionArn, version}``;
- ``END`` -> ``platform.runtimeDone`` ``{requestId, status}`` (a DEBUG event);
- ``REPORT`` -> ``platform.report`` ``{requestId, metrics {durationMs, billedDurationMs,
  memorySizeMB, maxMemoryUsedMB, initDurationMs}, status, errorType}``;
- ``INIT_REPORT`` -> ``platform.initReport`` ``{initializationType, phase, status, metrics {durationMs}}``.

Levels (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html):
``SystemLogLevel`` keeps platform events at or above it (runtimeDone is DEBUG, the others INFO);
``ApplicationLogLevel`` keeps the function's lines at or above it, reading a JSON line's ``"level"``
and counting any other line as INFO. The runtime gets ``AWS_LAMBDA_LOG_FORMAT`` and
``AWS_LAMBDA_LOG_LEVEL`` so awslambdaric writes the ``logging`` module's records as JSON and filters
them itself. Text (the default) leaves every line exactly as it is.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

SYSTEM_ORDER = {"DEBUG": 0, "INFO": 1, "WARN": 2}
APPLICATION_ORDER = {"TRACE": 0, "DEBUG": 1, "INFO": 2, "WARN": 3, "WARNING": 3, "ERROR": 4, "FATAL": 5}
APPLICATION_ORDER["CRITICAL"] = 5
_INIT_REPORT = re.compile(
    r"^INIT_REPORT Init Duration: (?P<ms>[\d.]+) ms\tPhase: (?P<phase>\w+)\tStatus: (?P<status>\w+)"
    r"(?:\tError Type: (?P<error>\S+))?$"
)
# Lines the engine writes for Lambda that stay text: never filtered as the function's own.
_SYSTEM_TEXT = re.compile(r"^(\S+ \S+ Task timed out after |RequestId: \S+ Error: |Runtime\.)")


class PlatformLine(str):
    """A line Lambda writes itself, carrying its platform event; ``rendered`` is what was logged."""

    event_type: str
    record: dict[str, Any]
    level: str
    rendered: str | None

    def __new__(cls, text: str, event_type: str, record: dict[str, Any], level: str = "INFO") -> PlatformLine:
        line = super().__new__(cls, text)
        line.event_type, line.record, line.level = event_type, record, level
        line.rendered = text
        return line


def _iso(timestamp: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{int(timestamp * 1000) % 1000:03d}Z"
    )


class Formatter:
    """Renders lines for one environment as its function's LoggingConfig says."""

    def __init__(
        self,
        config: dict[str, Any] | None,
        *,
        function_arn: str,
        function_name: str,
        version: str,
        init_type: str,
        instance_id: str,
        memory_mb: int,
    ):
        config = config or {}
        self.json = config.get("LogFormat") == "JSON"
        self.system_level = SYSTEM_ORDER.get(config.get("SystemLogLevel", "INFO"), 1)
        self.application_level = APPLICATION_ORDER.get(config.get("ApplicationLogLevel", "INFO"), 2)
        self.application_level_name = config.get("ApplicationLogLevel", "INFO")
        self._context = {
            "functionArn": function_arn,
            "functionName": function_name,
            "functionVersion": version,
            "initializationType": init_type,
            "instanceId": instance_id,
            "instanceMaxMemory": memory_mb * 1024 * 1024,
        }

    def runtime_variables(self) -> dict[str, str]:
        """What the runtime reads to format and filter its application logs."""
        if not self.json:
            return {}
        return {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": self.application_level_name}

    def render(self, lines: list[str], timestamp: float) -> list[str]:
        """The lines as CloudWatch Logs receives them (filtered lines are left out)."""
        if not self.json:
            return list(lines)
        out = []
        for index, line in enumerate(lines):
            event = self._event(line, lines[index + 1 :])
            if event is not None:
                event_type, record, level = event
                text = None
                if SYSTEM_ORDER[level] >= self.system_level:
                    doc = {"time": _iso(timestamp), "type": event_type, "record": record}
                    text = json.dumps(doc, separators=(",", ":"))
                    out.append(text)
                if isinstance(line, PlatformLine):
                    line.rendered = text
            elif _SYSTEM_TEXT.match(line) or self._application_level(line) >= self.application_level:
                out.append(line)
        return out

    def _event(self, line: str, following: list[str]) -> tuple[str, dict, str] | None:
        if isinstance(line, PlatformLine):
            record = dict(line.record)
            if line.event_type == "platform.initStart":
                local = {k: record.pop(k) for k in ("localSandbox", "localRuntime") if k in record}
                keys = ("functionName", "functionVersion", "instanceId", "instanceMaxMemory")
                record = {"initializationType": self._context["initializationType"], **record}
                record.update({k: self._context[k] for k in keys}, **local)
            elif line.event_type == "platform.start":
                record = {
                    "requestId": record["requestId"],
                    "functionArn": self._context["functionArn"],
                    **record,
                }
            elif line.event_type == "platform.runtimeDone":
                report = next(
                    (
                        f
                        for f in following
                        if isinstance(f, PlatformLine) and f.event_type == "platform.report"
                    ),
                    None,
                )
                if report is not None:
                    record["status"] = report.record.get("status", "success")
            return line.event_type, record, line.level
        match = _INIT_REPORT.match(line)
        if match:
            record = {
                "initializationType": self._context["initializationType"],
                "phase": match["phase"],
                "status": match["status"],
                "metrics": {"durationMs": float(match["ms"])},
            }
            if match["error"]:
                record["errorType"] = match["error"]
            return "platform.initReport", record, "INFO"
        return None

    @staticmethod
    def _application_level(line: str) -> int:
        """A JSON line's ``level``; INFO for anything else, as Lambda counts it."""
        if line.startswith("{"):
            try:
                level = json.loads(line).get("level")
            except (ValueError, AttributeError):
                level = None
            if isinstance(level, str):
                return APPLICATION_ORDER.get(level.upper(), 2)
        return 2


def tail_text(line: str) -> str | None:
    """What a line looked like in the log (None when its level filtered it out)."""
    return line.rendered if isinstance(line, PlatformLine) else line
