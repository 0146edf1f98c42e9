"""Log lines as Lambda writes them, and their delivery to moto's CloudWatch Logs backend.

Formats (tab-separated fields, as on AWS)::

    START RequestId: <id> Version: <version>
    END RequestId: <id>
    REPORT RequestId: <id>\tDuration: 15.74 ms\tBilled Duration: 147 ms\tMemory Size: 128 MB\t
        Max Memory Used: 56 MB\tInit Duration: 130.49 ms\tStatus: timeout

``Billed Duration`` = ceil(Duration + Init Duration), at least 1 ms (Lambda bills on-demand init since
August 2025; provisioned environments report no Init Duration). ``Status: timeout`` or
``Status: error\tError Type: <type>`` comes last. Each environment has its own stream,
``YYYY/MM/DD/[<version>]<32 hex>``, in the group ``/aws/lambda/<function>``. moto's logs backend is
not thread-safe, so every write goes through one lock.
"""

from __future__ import annotations

import math
import sys
import threading
import time
import uuid

from moto.logs.exceptions import ResourceAlreadyExistsException, ResourceNotFoundException
from moto.logs.models import logs_backends

TAIL_BYTES = 4096
_write_lock = threading.Lock()


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
    return "\t".join(fields)


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


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
    return "\t".join(fields)


def tail(lines: list[str]) -> str:
    """The last 4 KB of an invocation's log, as ``LogType=Tail`` returns it (before base64)."""
    data = "".join(line + "\n" for line in lines).encode()
    return data[-TAIL_BYTES:].decode(errors="ignore")


class LogStream:
    """One environment's stream; created lazily with its group (Lambda creates both on first write)."""

    def __init__(self, account_id: str, region: str, function_name: str, version: str):
        self.group = f"/aws/lambda/{function_name}"
        self.name = stream_name(version)
        self._backend = logs_backends[account_id][region]
        self._created = False

    def write(self, lines: list[str], timestamp: float | None = None) -> None:
        if not lines:
            return
        millis = int((timestamp or time.time()) * 1000)
        events = [{"timestamp": millis, "message": line} for line in lines]
        with _write_lock:
            if not self._created:
                self._create()
            try:
                self._backend.put_log_events(self.group, self.name, events)
            except ResourceNotFoundException:  # the group was deleted under a live environment
                self._create()
                self._backend.put_log_events(self.group, self.name, events)

    def _create(self) -> None:
        if self.group not in self._backend.groups:
            try:
                self._backend.create_log_group(self.group, {})
            except ResourceAlreadyExistsException:
                pass
        try:
            self._backend.create_log_stream(self.group, self.name)
        except ResourceAlreadyExistsException:
            pass
        self._created = True
