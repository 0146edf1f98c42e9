"""CloudWatch Logs: log events kept on disk, not in the server's memory.

Gap of stock moto 5.2.5 filled here: every log event is a Python object in a list of its stream, so a
function that prints 200 MB keeps the server 259 MB larger for as long as it runs, and a read of a
large stream sorts and copies all of it. Here, once :func:`open_store` has named a folder (the server
does so at start, in its state folder), each stream's events live in one SQLite file there; memory
holds a stream's count and first and last timestamps only. Reads page as CloudWatch Logs does: at most
10,000 events and 1 MB per answer (GetLogEvents and FilterLogEvents,
https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html), streamed
from the file, so no read holds more than a page either. A deleted stream's (or group's) events are
deleted from the file once moto forgets the stream. moto's memory is empty at each start, and so is
the file. Without :func:`open_store` (moto used in-process by tests) moto's lists stay as they are.
"""

from __future__ import annotations

import collections
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from moto.logs import models
from moto.logs.exceptions import InvalidParameterException
from moto.logs.utils import EventMessageFilter

PAGE_EVENTS = 10_000
PAGE_BYTES = 1_048_576
_BATCH = 1000  # rows fetched at a time while iterating

_store: _Store | None = None


class _Store:
    """One SQLite file for every stream's events; one connection, serialised by a lock."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in (path, path.with_name(path.name + "-journal")):
            stale.unlink(missing_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-4096", "temp_store=FILE"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, stream INTEGER, timestamp INTEGER, "
            "ingestion INTEGER, event_id INTEGER, message TEXT)"
        )
        self._db.execute("CREATE INDEX by_time ON events (stream, timestamp, seq)")
        self._lock = threading.Lock()
        self._streams = 0
        self._dropped: list[int] = []  # streams moto forgot; their rows go at the next write

    def new_stream(self) -> int:
        with self._lock:
            self._streams += 1
            return self._streams

    def add(self, stream: int, events: list) -> None:
        rows = [(stream, e.timestamp, e.ingestion_time, e.event_id, str(e.message)) for e in events]
        with self._lock:
            while self._dropped:
                self._db.execute("DELETE FROM events WHERE stream = ?", (self._dropped.pop(),))
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO events (stream, timestamp, ingestion, event_id, message) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            self._db.execute("COMMIT")

    def drop(self, stream: int) -> None:
        """Forget a stream's events (called by the garbage collector, which may run anywhere, even inside
        this store's lock: the rows are deleted by the next write, not here)."""
        self._dropped.append(stream)

    def count(self, stream: int, start: int | None, end: int | None) -> int:
        where, args = _range(stream, start, end)
        with self._lock:
            return self._db.execute(f"SELECT COUNT(*) FROM events WHERE {where}", args).fetchone()[0]

    def rows(
        self,
        stream: int,
        start: int | None = None,
        end: int | None = None,
        *,
        by_time: bool = True,
        offset: int = 0,
    ) -> Iterator[tuple]:
        """(timestamp, ingestion, event_id, message) in time (or arrival) order from the ``offset``-th on,
        fetched a batch at a time (each batch goes on from the last row seen, not from an offset)."""
        where, args = _range(stream, start, end)
        order = "timestamp, seq" if by_time else "seq"
        after, after_args = "", ()
        while True:
            with self._lock:
                batch = self._db.execute(
                    f"SELECT timestamp, ingestion, event_id, message, seq FROM events WHERE {where}{after} "
                    f"ORDER BY {order} LIMIT ? OFFSET ?",
                    (*args, *after_args, _BATCH, offset),
                ).fetchall()
            for row in batch:
                yield row[:4]
            if len(batch) < _BATCH:
                return
            offset = 0
            last = batch[-1]
            if by_time:
                after, after_args = " AND (timestamp, seq) > (?, ?)", (last[0], last[4])
            else:
                after, after_args = " AND seq > ?", (last[4],)


def _range(stream: int, start: int | None, end: int | None) -> tuple[str, tuple]:
    where, args = "stream = ?", [stream]
    if start:
        where, args = where + " AND timestamp >= ?", [*args, int(start)]
    if end:
        where, args = where + " AND timestamp <= ?", [*args, int(end)]
    return where, tuple(args)


class DiskEvents:
    """A stream's events, as moto's ``LogStream.events`` list is used: ``+=``, ``len``, iteration."""

    def __init__(self, store: _Store):
        self._store = store
        self.id = store.new_stream()
        self._count = 0
        self.first: int | None = None
        self.last: int | None = None
        weakref.finalize(self, store.drop, self.id)

    def __iadd__(self, events: list) -> DiskEvents:
        if events:
            self._store.add(self.id, events)
            self._count += len(events)
            stamps = [e.timestamp for e in events]
            self.first = min(stamps) if self.first is None else min(self.first, *stamps)
            self.last = max(stamps) if self.last is None else max(self.last, *stamps)
        return self

    def __len__(self) -> int:
        return self._count

    def __deepcopy__(self, memo: dict) -> DiskEvents:
        return self  # moto deep-copies models that reach a log group (a function's): the events are shared

    def __copy__(self) -> DiskEvents:
        return self

    def __iter__(self) -> Iterator[models.LogEvent]:
        for timestamp, ingestion, event_id, message in self._store.rows(self.id, by_time=False):
            yield _event(timestamp, ingestion, event_id, message)


def _event(timestamp: int, ingestion: int, event_id: int, message: str) -> models.LogEvent:
    event = models.LogEvent.__new__(models.LogEvent)
    event.timestamp, event.ingestion_time, event.event_id, event.message = (
        timestamp,
        ingestion,
        event_id,
        message,
    )
    return event


def open_store(folder: Path) -> None:
    """Keep the events of every stream created from now on in ``folder`` (emptied first)."""
    global _store
    _store = _Store(Path(folder) / "events.sqlite3")


# --- moto's LogStream and LogGroup, reading from the file ---------------------------------------------


def _wrap_init(original):
    def __init__(self, log_group, name: str):
        original(self, log_group, name)
        if _store is not None:
            self.events = DiskEvents(_store)

    return __init__


def _wrap_update(original):
    def _update(self) -> None:
        if not isinstance(self.events, DiskEvents):
            return original(self)
        self.first_event_timestamp, self.last_event_timestamp = self.events.first, self.events.last

    return _update


def _wrap_get_log_events(original):
    def get_log_events(self, start_time, end_time, limit, next_token, start_from_head):
        if not isinstance(self.events, DiskEvents):
            return original(self, start_time, end_time, limit, next_token, start_from_head)
        limit = min(int(limit or PAGE_EVENTS), PAGE_EVENTS)
        total = self.events._store.count(self.events.id, start_time, end_time)
        direction, index = _token(next_token)
        final = total - 1
        if direction is None:
            start, end = (0, limit - 1) if start_from_head else (final - limit + 1, final)
        elif direction == "f":
            start, end = index + 1, index + limit
        else:
            start, end = index - limit, index - 1
        start = max(start, 0)
        if start > final:
            return [], f"b/{final:056d}", f"f/{final:056d}"
        end = min(end, final)
        if end < 0:
            return [], f"b/{0:056d}", f"f/{0:056d}"
        forward = direction == "f" or (direction is None and start_from_head)
        page: collections.deque = collections.deque()
        size = 0
        rows = self.events._store.rows(self.events.id, start_time, end_time, offset=start)
        for _, row in zip(range(end - start + 1), rows, strict=False):
            page.append(row)
            size += len(row[3].encode()) + 26
            if size > PAGE_BYTES and len(page) > 1:
                if forward:  # the page ends before this event
                    page.pop()
                    break
                size -= len(page.popleft()[3].encode()) + 26  # the newest events are kept
                start += 1
        end = start + len(page) - 1
        events = [{"ingestionTime": r[1], "message": r[3], "timestamp": r[0]} for r in page]
        return events, f"b/{start:056d}", f"f/{end:056d}"

    return get_log_events


def _token(token: str | None) -> tuple[str | None, int]:
    if token is None:
        return None, 0
    try:
        direction, index = token[0], int(token[2:])
    except (ValueError, IndexError):
        raise InvalidParameterException("The specified nextToken is invalid.") from None
    if direction not in "fb":
        raise InvalidParameterException("The specified nextToken is invalid.")
    return direction, index


def _wrap_filter_log_events(original):
    def filter_log_events(
        self,
        log_group_name,
        log_stream_names,
        start_time,
        end_time,
        limit,
        next_token,
        filter_pattern,
        interleaved,
    ):
        streams = [s for n, s in self.streams.items() if not log_stream_names or n in log_stream_names]
        if not all(isinstance(s.events, DiskEvents) for s in streams):
            return original(
                self, log_group_name, log_stream_names, start_time, end_time, limit, next_token,
                filter_pattern, interleaved,
            )  # fmt: skip
        limit = min(int(limit or PAGE_EVENTS), PAGE_EVENTS)
        matches = EventMessageFilter(filter_pattern).matches
        found = _matching(streams, start_time, end_time, matches, interleaved)
        if next_token:
            try:
                group, stream_name, event_id = next_token.split("@")
                if group != log_group_name:
                    raise ValueError(group)
            except ValueError:
                found = iter(())  # AWS answers an invalid token with no events
            else:
                for event in found:
                    if event["logStreamName"] == stream_name and event["eventId"] == event_id:
                        break
                else:
                    found = iter(())
        page, size, more = [], 0, False
        for event in found:
            if len(page) >= limit or (page and size + len(event["message"].encode()) + 26 > PAGE_BYTES):
                more = True
                break
            page.append(event)
            size += len(event["message"].encode()) + 26
        token = f"{log_group_name}@{page[-1]['logStreamName']}@{page[-1]['eventId']}" if more else None
        searched = [{"logStreamName": s.log_stream_name, "searchedCompletely": True} for s in streams]
        return page, token, searched

    return filter_log_events


def _matching(streams: list, start, end, matches, interleaved: bool) -> Iterator[dict[str, Any]]:
    """The events of ``streams`` that match, as filter dicts: by time across streams (interleaved), or
    stream after stream."""

    def of(stream) -> Iterator[tuple]:
        for timestamp, ingestion, event_id, message in stream.events._store.rows(
            stream.events.id, start, end
        ):
            if matches(message):
                yield timestamp, ingestion, event_id, message, stream.log_stream_name

    sources = [of(stream) for stream in streams]
    rows = _merge(sources) if interleaved else (row for source in sources for row in source)
    for timestamp, ingestion, event_id, message, name in rows:
        yield {
            "eventId": str(event_id),
            "ingestionTime": ingestion,
            "message": message,
            "timestamp": timestamp,
            "logStreamName": name,
        }


def _merge(sources: list[Iterator[tuple]]) -> Iterator[tuple]:
    import heapq

    return heapq.merge(*sources, key=lambda row: row[0])


def apply() -> None:
    models.LogStream.__init__ = _wrap_init(models.LogStream.__init__)
    models.LogStream._update = _wrap_update(models.LogStream._update)
    models.LogStream.get_log_events = _wrap_get_log_events(models.LogStream.get_log_events)
    models.LogGroup.filter_log_events = _wrap_filter_log_events(models.LogGroup.filter_log_events)
