"""Queued asynchronous invocations kept on disk, in the state folder, until they are done.

Lambda keeps an event it accepted (Invoke answered 202) until it has run, been retried and delivered,
or grown older than its maximum age, up to six hours
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html). Here each queued event is two
files in ``<state>/lambda/async``: ``<request id>.payload`` (the request, as sent) and
``<request id>.json`` (which function, how many attempts, when it is due next, in wall-clock time),
plus ``<request id>.outcome`` once an attempt failed (the function's answer, which the on-failure
record carries). The queue holds only the small part in memory and reads the payload when the event
runs, so queued events never grow the server; and a server that stops (``localaws stop``) and starts
again finds them and runs them (:meth:`Spool.load`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[0-9a-f-]{36}$")


class Spool:
    """The files of one engine's queued events."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, request_id: str, suffix: str) -> Path:
        if not _NAME.match(request_id):
            raise ValueError(f"not a request id: {request_id!r}")
        return self.folder / f"{request_id}.{suffix}"

    def add(self, request_id: str, payload: bytes, state: dict) -> None:
        """Keep a new event (its payload first: a state file always has its payload)."""
        _write(self._path(request_id, "payload"), payload)
        self.update(request_id, state)

    def update(self, request_id: str, state: dict, outcome: bytes | None = None) -> None:
        """Record the event's state (and the last attempt's answer, when there is one)."""
        if outcome is not None:
            _write(self._path(request_id, "outcome"), outcome)
        _write(self._path(request_id, "json"), json.dumps(state).encode())

    def payload(self, request_id: str) -> bytes:
        return self._path(request_id, "payload").read_bytes()

    def outcome(self, request_id: str) -> bytes | None:
        try:
            return self._path(request_id, "outcome").read_bytes()
        except FileNotFoundError:
            return None

    def remove(self, request_id: str) -> None:
        """Forget a finished event (its state file first, so that a half-removed event is never loaded)."""
        for suffix in ("json", "outcome", "payload"):
            with contextlib.suppress(FileNotFoundError):
                self._path(request_id, suffix).unlink()

    def load(self) -> list[tuple[str, dict]]:
        """``(request id, state)`` of every event kept by an earlier server, oldest first."""
        found = []
        for path in self.folder.glob("*.json"):
            request_id = path.stem
            try:
                state = json.loads(path.read_text())
                if not (_NAME.match(request_id) and self._path(request_id, "payload").is_file()):
                    raise ValueError("no payload")
            except (OSError, ValueError) as exc:
                log.warning("ignoring the queued event file %s: %s", path, exc)
                continue
            found.append((request_id, state))
        for stray in self.folder.glob("*.payload"):  # a payload whose state was never written
            if not stray.with_suffix(".json").exists():
                stray.unlink(missing_ok=True)
        return sorted(found, key=lambda item: item[1].get("enqueued", 0.0))


def _write(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (a new file renamed over the old one)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)
