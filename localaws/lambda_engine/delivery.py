"""How invocations reach an environment's runtime: the Runtime API's ``GET /next``, as Lambda answers it.

The runtime client asks ``GET /2018-06-01/runtime/invocation/next`` and waits; the engine delivers an
invocation by answering it. Lambda's runtime API answers two other cases without waiting, as the AWS
Lambda Runtime Interface Emulator's source shows (``internal/lambda/rapi/handler/invocationnext.go`` and
the runtime's states in ``internal/lambda/core/states.go``):

- a ``/next`` while an invocation runs (the handler asking its own Runtime API, or a URL a request
  pointed there): the runtime is in its *Running* state, whose ``Ready()`` is allowed, and the invoke
  renderer renders the invocation in progress again: the same request id, payload and headers. Nothing
  waits, so the next invocation is never swallowed by a stray waiter;
- a ``/next`` the runtime's state does not allow: ``403`` with ``InvalidStateTransition`` and the
  emulator's message, ``State transition from <state> to Ready failed for runtime. Error: State
  transition is not allowed``. Here, a second ``/next`` while one already waits gets it: only one waiter
  is ever parked (the emulator would park both, and whichever woke first would take the invocation).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

from localaws.lambda_engine import runtime_api
from localaws.lambda_engine.invocation import Invocation, Latch
from localaws.lambda_engine.runtime_api import SENT, InvalidState

log = logging.getLogger(__name__)

Answer = tuple[str, bytes, dict[str, str]] | str | InvalidState | None


class _Waiter:
    """The one parked ``GET /next``: its connection, and what wakes it (SENT once its invocation was
    written on the connection, an invocation to answer with, or None when stopping)."""

    __slots__ = ("conn", "item", "woken")

    def __init__(self, conn: socket.socket | None):
        self.conn = conn
        self.item: Invocation | str | None = None
        self.woken = Latch()

    def wake(self, item: Invocation | str | None) -> None:
        self.item = item
        self.woken.set()


class Mailbox:
    """One environment's delivery: at most one parked ``/next``, and invocations not yet asked for.

    ``lock`` also orders freezing an idle environment against delivering to it (``thaw`` is called under
    it on every delivery); ``waiting_since`` is when the runtime began waiting, None while it works."""

    def __init__(self, name: str, thaw: Callable[[], None]):
        self.name = name
        self.lock = threading.Lock()
        self.waiting_since: float | None = None
        self._thaw = thaw
        self._waiter: _Waiter | None = None
        self._backlog: deque[Invocation] = deque()
        self._stopped = False

    @property
    def idle(self) -> bool:
        """The runtime waits and nothing is held for it (call with ``lock`` held)."""
        return self.waiting_since is not None and not self._backlog

    def next(self, conn: socket.socket | None, current: Invocation | None) -> Answer:
        """The answer to a ``GET /next`` on ``conn`` while ``current`` is the environment's invocation:
        (request id, payload, headers); ``SENT`` once :meth:`deliver` wrote it on ``conn``; an
        :class:`InvalidState` to refuse; None when stopping."""
        with self.lock:
            if self._stopped:
                return None
            if current is not None and current.started and not current.done.is_set():
                return current.request_id, current.payload, current.runtime_headers()
            if self._waiter is not None:
                log.info("environment %s: a second GET /next while one waits was refused", self.name)
                return InvalidState("Ready")
            if self._backlog:
                return _answer(self._backlog.popleft())
            waiter = self._waiter = _Waiter(conn)
            self.waiting_since = time.monotonic()  # the engine's watchdog freezes it soon
        waiter.woken.wait(-1)
        item = waiter.item
        return _answer(item) if isinstance(item, Invocation) else item

    def deliver(self, invocation: Invocation) -> None:
        """Hand ``invocation`` to the runtime. If its ``GET /next`` waits, it is answered from this thread,
        on its connection: the Runtime API thread's wake-up is then not on the invocation's path."""
        with self.lock:
            self.waiting_since = None
            self._thaw()  # a no-op unless the watchdog froze it
            waiter, self._waiter = self._waiter, None
            if waiter is None:
                self._backlog.append(invocation)
                return
            if waiter.conn is None:  # no connection to write on: the waiting thread answers
                waiter.wake(invocation)
                return
            invocation.started = time.perf_counter()
            try:
                waiter.conn.sendall(
                    runtime_api.next_response(invocation.payload, invocation.runtime_headers())
                )
            except OSError:  # the process is gone: its exit settles the invocation
                log.info("environment %s: its runtime's connection closed before an invocation", self.name)
            waiter.wake(SENT)  # the Runtime API thread goes on reading the connection

    def release(self, *, stop: bool) -> None:
        """Wake the parked ``/next`` with None (its process is being replaced, or the environment stops)."""
        with self.lock:
            self._stopped = self._stopped or stop
            waiter, self._waiter = self._waiter, None
            self.waiting_since = None
        if waiter is not None:
            waiter.wake(None)


def _answer(invocation: Invocation) -> tuple[str, bytes, dict[str, str]]:
    invocation.started = time.perf_counter()
    return invocation.request_id, invocation.payload, invocation.runtime_headers()
