"""One invocation as an environment runs it, and the shapes of Lambda's answers to it."""

from __future__ import annotations

import _thread
import json
import random
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field

from localaws.lambda_engine.logs import TailLines


@dataclass
class Outcome:
    """What one invocation produced, as Invoke answers it."""

    payload: bytes
    function_error: str | None  # "Unhandled" or None
    log_lines: list[str]  # START ... REPORT, for LogType=Tail


class Latch:
    """A one-shot event on a single lock: ``threading.Event`` builds a Condition and two locks, and one is
    made for every invocation (about 4 us of interpreter time on its path)."""

    __slots__ = ("_lock", "_set")

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        self._lock.acquire()
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if not self._set:
            self._set = True
            self._lock.release()

    def wait(self, timeout: float) -> bool:
        if self._set:
            return True
        if self._lock.acquire(timeout=timeout):
            self._lock.release()  # the next waiter passes too
            return True
        return self._set


_SETTLING = threading.Lock()  # an invocation is settled once, by whichever thread comes first


@dataclass(slots=True)
class Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    invoked_arn: str
    client_context: str | None = None  # the JSON the caller sent (base64-decoded)
    lines: TailLines = field(default_factory=TailLines)
    started: float = 0.0
    finished: float = 0.0
    kind: str = ""  # "response" | "error" | "exit"
    body: bytes = b""
    done: Latch = field(default_factory=Latch)

    def runtime_headers(self) -> dict[str, str]:
        """The headers of the Runtime API's ``GET /next`` answer, as Lambda sends them."""
        headers = {
            "Lambda-Runtime-Aws-Request-Id": self.request_id,
            "Lambda-Runtime-Deadline-Ms": str(self.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.invoked_arn,
            "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{random.getrandbits(96):024x};Sampled=0",
        }
        if self.client_context:
            headers["Lambda-Runtime-Client-Context"] = self.client_context
        return headers

    def settle(self, kind: str, body: bytes = b"") -> bool:
        with _SETTLING:
            if self.done.is_set():
                return False
            self.finished = time.perf_counter()
            self.kind, self.body = kind, body
            self.done.set()
            return True


def exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal: {(signal.strsignal(-code) or str(-code)).lower()}"
    return f"exit status {code}"


def error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def error_type_of(body: bytes) -> str | None:
    try:
        return json.loads(body).get("errorType")
    except (ValueError, AttributeError):
        return None


def request_uuid() -> str:
    """A version 4 UUID for a request id, from ``random`` rather than ``os.urandom``: no system call on the
    invocation's path (each one lets the server's other threads take the interpreter lock for a while).
    Request ids need to be unique, not unpredictable."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))
