"""Log lines as Lambda writes them, and their delivery to moto's CloudWatch Logs backend.

Formats (tab-separated fields, as on AWS)::

    START RequestId: <id> Version: <version>
    END RequestId: <id>
    REPORT RequestId: <id>\tDuration: 15.74 ms\tBilled Duration: 147 ms\tMemory Size: 128 MB\t
        Max Memory Used: 56 MB\tInit Duration: 130.49 ms\tStatus: timeout

``Billed Duration`` = ceil(Duration + Init Duration), at least 1 ms (Lambda bills on-demand init since
August 2025; provisioned environments report no Init Duration). ``Status: timeout`` or
``Status: error\tError Type: <type>`` comes last. Each environment has its own stream,
``YYYY/MM/DD/[<version>]<32 hex>``, in the group ``/aws/lambda/<function>``, written through
:mod:`localaws.logstreams` (which creates them on the first write and batches the writes into moto).

A function's ``LoggingConfig`` (JSON platform events, log levels, a custom log group; see
:mod:`.log_format`) is applied by the stream: :meth:`LogStream.for_environment` reads it, names the
stream as Lambda does for a custom group (``YYYY/MM/DD/<function>[<version>]<guid>``:
https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-loggroups.html) and gives the
runtime its variables. The line builders below return :class:`~.log_format.PlatformLine` (plain
strings that also carry their platform event), so Text output is unchanged.
"""

from __future__ import annotations

import collections
import math
import sys
import time
import uuid

from localaws import logstreams
from localaws.lambda_engine.log_format import Formatter, PlatformLine, tail_text

TAIL_BYTES = 4096
# A line longer than a log event can hold is split into events of this size, as Lambda's log capture
# splits it: 256 KB less the 26 bytes CloudWatch Logs counts for each event.
MAX_LINE_BYTES = 262144 - 26


def events_of(line: bytes):
    """The log events of one line of output: its text, in pieces of at most ``MAX_LINE_BYTES``."""
    if len(line) <= MAX_LINE_BYTES:
        yield line.decode(errors="replace").rstrip("\r")
        return
    for start in range(0, len(line), MAX_LINE_BYTES):
        yield line[start : start + MAX_LINE_BYTES].decode(errors="replace")


class TailLines:
    """The last lines of an invocation's log, enough for ``LogType=Tail`` (its last 4 KB): older lines are
    dropped once ``keep`` characters of newer ones are held, so a function that prints without end never
    grows the server (its whole output goes to CloudWatch Logs, on disk)."""

    __slots__ = ("_lines", "_chars", "_keep")

    def __init__(self, keep: int = 64 * 1024) -> None:
        self._lines: collections.deque[str] = collections.deque()
        self._chars = 0
        self._keep = keep

    def extend(self, lines) -> None:
        for line in lines:
            self._lines.append(line)
            self._chars += len(line) + 1
        while self._lines and self._chars - len(self._lines[0]) - 1 >= self._keep:
            self._chars -= len(self._lines.popleft()) + 1

    def append(self, line: str) -> None:
        self.extend((line,))

    def __iter__(self):
        return iter(self._lines)

    def __len__(self) -> int:
        return len(self._lines)


def stream_name(version: str) -> str:
    return time.strftime("%Y/%m/%d", time.gmtime()) + f"/[{version}]" + uuid.uuid4().hex


def init_start_line(region: str, sandbox: str, notes: list[str]) -> str:
    """``INIT_START`` as Lambda writes it (runtime version and its ARN), then what ran it here::

    INIT_START Runtime Version: python:3.11.local\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:localaws-python3.11\t
        Local Sandbox: <on, or which guarantees are off and why>\tLocal Runtime: <notes>
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    fields = [
        f"INIT_START Runtime Version: python:{version}.local",
        f"Runtime Version ARN: arn:aws:lambda:{region}::runtime:localaws-python{version}",
    ]
    if sandbox:
        fields.append(f"Local Sandbox: {sandbox}")
    if notes:
        fields.append(f"Local Runtime: {'; '.join(notes)}")
    record = {
        "phase": "init",
        "runtimeVersion": f"python:{version}.local",
        "runtimeVersionArn": f"arn:aws:lambda:{region}::runtime:localaws-python{version}",
    }
    if sandbox:
        record["localSandbox"] = sandbox
    if notes:
        record["localRuntime"] = "; ".join(notes)
    return PlatformLine("\t".join(fields), "platform.initStart", record)


def start_line(request_id: str, version: str) -> str:
    text = f"START RequestId: {request_id} Version: {version}"
    return PlatformLine(text, "platform.start", {"requestId": request_id, "version": version})


def end_line(request_id: str) -> str:
    record = {"requestId": request_id, "status": "success"}  # the REPORT that follows says otherwise
    return PlatformLine(f"END RequestId: {request_id}", "platform.runtimeDone", record, level="DEBUG")


def report_line(
    request_id: str,
    *,
    duration_ms: float,
    memory_size_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None = None,
    status: str | None = None,
    error_type: str | None = None,
) -> str:
    """The REPORT line; ``status`` is ``timeout`` or ``error`` (with ``error_type``)."""
    billed = max(1, math.ceil(round(duration_ms + (init_duration_ms or 0.0), 6)))
    fields = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {billed} ms",
        f"Memory Size: {memory_size_mb} MB",
        f"Max Memory Used: {max_memory_used_mb} MB",
    ]
    if init_duration_ms is not None:
        fields.append(f"Init Duration: {init_duration_ms:.2f} ms")
    if status:
        fields.append(f"Status: {status}")
    if error_type:
        fields.append(f"Error Type: {error_type}")
    metrics = {
        "durationMs": round(duration_ms, 3),
        "billedDurationMs": billed,
        "memorySizeMB": memory_size_mb,
        "maxMemoryUsedMB": max_memory_used_mb,
    }
    if init_duration_ms is not None:
        metrics["initDurationMs"] = round(init_duration_ms, 3)
    record = {"requestId": request_id, "metrics": metrics, "status": status or "success"}
    if error_type:
        record["errorType"] = error_type
    return PlatformLine("\t".join(fields), "platform.report", record)


def tail(lines: list[str]) -> str:
    """The last 4 KB of an invocation's log, as ``LogType=Tail`` returns it (before base64)."""
    data = "".join(text + "\n" for line in lines if (text := tail_text(line)) is not None).encode()
    return data[-TAIL_BYTES:].decode(errors="ignore")


class LogStream:
    """One environment's stream; created lazily with its group (Lambda creates both on first write)."""

    def __init__(
        self,
        account_id: str,
        region: str,
        function_name: str,
        version: str,
        *,
        logging_config: dict | None = None,
        init_type: str = "on-demand",
        memory_mb: int = 128,
    ):
        default_group = f"/aws/lambda/{function_name}"
        self.group = (logging_config or {}).get("LogGroup") or default_group
        self.name = stream_name(version)
        instance_id = self.name.replace("/[", f"/{function_name}[", 1)
        if self.group != default_group:  # a custom group's streams name the function
            self.name = instance_id
        self.formatter = Formatter(
            logging_config,
            function_arn=f"arn:aws:lambda:{region}:{account_id}:function:{function_name}",
            function_name=function_name,
            version=version,
            init_type=init_type,
            instance_id=instance_id,
            memory_mb=memory_mb,
        )
        self._stream = logstreams.Stream(account_id, region, self.group, self.name)

    @classmethod
    def for_environment(cls, spec, launch, init_type: str) -> LogStream:
        """The stream of a new environment, as its function's LoggingConfig says; sets the runtime's
        log variables (group name, format, level) in ``launch.env``."""
        stream = cls(
            spec.account_id,
            spec.region,
            spec.name,
            spec.version,
            logging_config=spec.logging_config,
            init_type=init_type,
            memory_mb=spec.memory_mb,
        )
        launch.env["AWS_LAMBDA_LOG_GROUP_NAME"] = stream.group
        launch.env.update(stream.formatter.runtime_variables())
        return stream

    def write(self, lines: list[str], timestamp: float | None = None) -> None:
        if not lines:
            return
        stamp = timestamp or time.time()
        lines = self.formatter.render(lines, stamp)
        self._stream.put(lines, int(stamp * 1000))
