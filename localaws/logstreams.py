"""CloudWatch Logs streams the embedded AWS writes itself: Lambda's function logs, SageMaker's container logs.

A :class:`Stream` creates its group and stream on its first write, as AWS does, and again if the
group was deleted under it. Lines are buffered and written into moto's Logs backend by a writer
thread, a batch every ``FLUSH_S``, in the order they were written (one ``put_log_events`` per stream
and batch instead of one per line group: this keeps those calls off an invocation's response path).
Whatever reads or changes CloudWatch Logs must call :func:`flush` first, so that it sees every line
written before it (the Lambda layer does so for every CloudWatch Logs and CloudFormation request:
a GetLogEvents right after an Invoke sees its REPORT line). moto's Logs backend is not thread-safe:
every call into it from here holds one lock.
"""

from __future__ import annotations

import logging
import threading
import time

from moto.logs.exceptions import ResourceAlreadyExistsException, ResourceNotFoundException
from moto.logs.models import logs_backends

log = logging.getLogger(__name__)

FLUSH_S = 0.05
# A stream holding more is written at once, by the thread that wrote them: a flood of output is held
# back by its own writes (into the events file, :mod:`localaws.patches.logs_store`), never buffered.
FLUSH_AT_EVENTS = 10_000
FLUSH_AT_BYTES = 1 << 20

_write_lock = threading.Lock()  # held around every call into moto's Logs backend
_lock = threading.Lock()  # guards the buffers and the set of streams with lines to write
_dirty: dict[Stream, None] = {}  # streams with buffered lines, in the order they got them
_wake = threading.Event()
_writer: threading.Thread | None = None


class Stream:
    """One log stream of ``group``; created with its group on the first write that reaches moto."""

    def __init__(self, account_id: str, region: str, group: str, name: str):
        self.group = group
        self.name = name
        self._backend = logs_backends[account_id][region]
        self._created = False
        self._pending: list[dict] = []
        self._pending_bytes = 0
        self._last_ms = 0

    def put(self, messages: list[str], timestamp_ms: int) -> None:
        """Buffer ``messages``, all at ``timestamp_ms``; they reach moto in order, at the latest at the next
        :func:`flush`. Timestamps never go back (moto refuses a batch out of chronological order)."""
        if not messages:
            return
        with _lock:
            self._last_ms = stamp = max(timestamp_ms, self._last_ms)
            self._pending.extend({"timestamp": stamp, "message": str(m)} for m in messages)
            self._pending_bytes += sum(len(m) for m in messages)
            _dirty[self] = None
            full = len(self._pending) >= FLUSH_AT_EVENTS or self._pending_bytes >= FLUSH_AT_BYTES
        if full:
            flush()
        else:
            _start_writer()
            if not _wake.is_set():
                _wake.set()

    def _write(self, events: list[dict]) -> None:
        """Into moto (``_write_lock`` held)."""
        if not self._created:
            self._create()
        try:
            self._backend.put_log_events(self.group, self.name, events)
        except ResourceNotFoundException:  # the group was deleted under a live writer
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


def flush() -> None:
    """Write every buffered line into moto's Logs backend; returns once they are there."""
    with _write_lock:
        with _lock:
            batches = [(stream, stream._pending) for stream in _dirty]
            for stream in _dirty:
                stream._pending, stream._pending_bytes = [], 0
            _dirty.clear()
        for stream, events in batches:
            try:
                stream._write(events)
            except Exception:  # noqa: BLE001 - one stream's failure must not lose the others' lines
                log.exception(
                    "could not write %d log events to %s %s", len(events), stream.group, stream.name
                )


def _start_writer() -> None:
    global _writer
    if _writer is not None:
        return
    with _lock:
        if _writer is None:
            _writer = threading.Thread(target=_write_loop, name="log-writer", daemon=True)
            _writer.start()


def _write_loop() -> None:
    while True:
        _wake.wait()
        _wake.clear()
        time.sleep(FLUSH_S)  # gather a batch: lines written meanwhile go in the same call
        flush()
