"""The Lambda Runtime API for one execution environment, served on 127.0.0.1 (an ephemeral port).

The runtime client in the environment's process (``awslambdaric`` or :mod:`bootstrap`) long-polls
``GET /2018-06-01/runtime/invocation/next``, then posts ``.../invocation/{id}/response`` or
``.../invocation/{id}/error``; an init failure is ``POST /2018-06-01/runtime/init/error``.
Sockets use TCP_NODELAY: without it Nagle + delayed ACK add ~40 ms to every keep-alive round trip.
With ``callers``, a connection is served only if it comes from one of the environment's own processes
(:mod:`.sandbox.caller`): no other process can take its invocations or post its responses. Refusing is
cheap (one netlink query) and its warning is rate-limited: the first refusal is logged, then at most one
line a minute with the count, so a flood of connections grows neither the server's CPU time nor its log.

A response or error body above Lambda's 6291556-byte limit is never held: the first 6291556 bytes
are read (chunked bodies through :mod:`localaws.bodies`), the invocation fails with
``Function.ResponseSizeTooLarge``, and the runtime gets Lambda's answer, 413 ``{"errorMessage":
"Exceeded maximum allowed payload size (6291556 bytes).", "errorType": "RequestEntityTooLarge"}``
(the Runtime Interface Emulator's ``RenderRequestEntityTooLarge``); at most ``DRAIN_CAP`` more bytes
are read and dropped so that the runtime can read that answer, and past it the connection is closed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from localaws import bodies
from localaws.lambda_engine.invocation import error_body
from localaws.lambda_engine.sandbox import caller

log = logging.getLogger(__name__)

PREFIX = "/2018-06-01/runtime"
RESPONSE_LIMIT = 6 * 1024 * 1024 + 100  # 6291556 bytes: synchronous response payload, Lambda quotas page
DRAIN_CAP = 64 << 20  # of a body over the limit, at most this is read (and dropped) before closing
TOO_LARGE = json.dumps(
    {
        "errorMessage": f"Exceeded maximum allowed payload size ({RESPONSE_LIMIT} bytes).",
        "errorType": "RequestEntityTooLarge",
    }
).encode()
RESPONSE_TOO_LARGE = error_body(
    "Function.ResponseSizeTooLarge",
    f"Response payload size exceeded maximum allowed payload size ({RESPONSE_LIMIT} bytes).",
)


SENT = "sent"  # what next_invocation returns when the environment answered GET /next on the connection itself


@dataclass(frozen=True)
class InvalidState:
    """What next_invocation returns for a ``GET /next`` the runtime's state does not allow: answered 403
    ``InvalidStateTransition``, in the words of the Runtime Interface Emulator (see :mod:`.delivery`)."""

    state: str

    def body(self) -> bytes:
        message = (
            f"State transition from {self.state} to Ready failed for runtime. "
            "Error: State transition is not allowed"
        )
        return json.dumps({"errorMessage": message, "errorType": "InvalidStateTransition"}).encode()


class Delivery(Protocol):
    """What the server needs from its environment."""

    def next_invocation(
        self, conn: socket.socket
    ) -> tuple[str, bytes, dict[str, str]] | str | InvalidState | None:
        """Block until there is an invocation: (request id, payload, headers), or ``SENT`` once the
        environment has written it on ``conn`` itself; an :class:`InvalidState` to refuse at once; None
        when stopping."""

    def complete(self, request_id: str, body: bytes, *, is_error: bool, error_type: str | None) -> bool:
        """Record a response or error; False if ``request_id`` is not the current invocation."""

    def init_failed(self, body: bytes, error_type: str | None) -> None:
        """Record an init error."""


_UNKNOWN_PATH = b'{"errorMessage": "unknown path", "errorType": "InvalidRequest"}'
_ACCEPTED = b'{"status": "OK"}'
_MAX_LINE = 65536
_MAX_HEADERS = 100


_TRANSIENT = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)  # accept() fails, then recovers
REFUSAL_LOG_S = 60.0


class _RefusalLog:
    """The refusals' warning: the first at once, then one line per ``REFUSAL_LOG_S`` with the count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._unsaid = 0
        self._said_at = float("-inf")

    def refused(self, address: str, peer) -> None:
        with self._lock:
            now = time.monotonic()
            self._unsaid += 1
            if now - self._said_at < REFUSAL_LOG_S:
                return
            count, self._unsaid, self._said_at = self._unsaid, 0, now
        more = f" ({count} refusals since the last of these lines)" if count > 1 else ""
        log.warning("runtime api %s refused a connection from another process (%s)%s", address, peer, more)


_refusals = _RefusalLog()  # one for the server: a flood spread over many environments says little more


class _BadRequest(Exception):
    """The bytes on the connection are not an HTTP/1.1 request this server can answer."""


def _read_request(reader) -> tuple[str, str, dict[str, str]] | None:
    """``(method, path, headers with lower-case names)`` of the next request; None at end of stream."""
    line = reader.readline(_MAX_LINE)
    while line in (b"\r\n", b"\n"):  # tolerated between keep-alive requests
        line = reader.readline(_MAX_LINE)
    if not line:
        return None
    parts = line.split()
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise _BadRequest(line[:100])
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS):
        field = reader.readline(_MAX_LINE)
        if field in (b"\r\n", b"\n", b""):
            return parts[0].decode("latin-1"), parts[1].decode("latin-1"), headers
        name, sep, value = field.partition(b":")
        if not sep:
            raise _BadRequest(field[:100])
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    raise _BadRequest(b"too many headers")


def _read_body(reader, headers: dict[str, str]) -> bytes:
    """The body, at most Lambda's 6 MB response limit: bodies.TooLarge past it."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        stream, length = bodies.dechunked(reader), None
    else:
        stream = reader
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError as exc:
            raise _BadRequest(b"bad Content-Length") from exc
        if length < 0:
            raise _BadRequest(b"negative Content-Length")
    try:
        return bodies.read_capped(stream, length, RESPONSE_LIMIT, drain_cap=DRAIN_CAP)
    except bodies.BadFraming as exc:
        raise _BadRequest(str(exc).encode()) from None


def _response(status: int, body: bytes, headers: dict[str, str] | None = None, close: bool = False) -> bytes:
    lines = [f"HTTP/1.1 {status} {bodies.phrase(status)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def next_response(payload: bytes, headers: dict[str, str]) -> bytes:
    """``GET /next``'s answer: the invocation's payload and headers."""
    return _response(200, payload, headers)


def _answer(
    delivery: Delivery, conn: socket.socket, method: str, path: str, headers: dict[str, str], body: bytes
) -> bytes | None:
    """The response to one request (for ``GET .../next``, once there is an invocation; b"" if the
    environment sent it itself); None: the environment is stopping, answer 410 and close."""
    if method == "GET" and path == f"{PREFIX}/invocation/next":
        invocation = delivery.next_invocation(conn)
        if invocation is None or invocation == SENT:
            return None if invocation is None else b""
        if isinstance(invocation, InvalidState):
            return _response(403, invocation.body())
        _, payload, invocation_headers = invocation
        return next_response(payload, invocation_headers)
    if method != "POST":
        return _response(404, _UNKNOWN_PATH)
    error_type = headers.get("lambda-runtime-function-error-type")
    if path == f"{PREFIX}/init/error":
        delivery.init_failed(body, error_type)
        return _response(202, _ACCEPTED)
    parts = path[len(PREFIX) :].strip("/").split("/")
    if path.startswith(PREFIX) and len(parts) == 3 and parts[0] == "invocation":
        if parts[2] in ("response", "error"):
            if delivery.complete(parts[1], body, is_error=parts[2] == "error", error_type=error_type):
                return _response(202, _ACCEPTED)
            error = {"errorMessage": f"unknown request id {parts[1]}", "errorType": "InvalidRequestID"}
            return _response(400, json.dumps(error).encode())
    return _response(404, _UNKNOWN_PATH)


class RuntimeAPIServer:
    """Accepts the runtime client's connections; one thread per connection (the client keeps one alive)."""

    def __init__(self, delivery: Delivery, callers: Callable[[], list[int]] | None = None):
        self.delivery = delivery
        self.callers = callers
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(8)
        self.address = f"127.0.0.1:{self._socket.getsockname()[1]}"
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name=f"runtime-api-{self.address}", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, peer = self._socket.accept()
            except OSError as exc:
                if exc.errno in _TRANSIENT and not self._closed:  # out of descriptors for now: not the end
                    time.sleep(0.05)
                    continue
                return
            if self.callers is not None and not self._from_environment(conn):
                _refusals.refused(self.address, peer)
                _refuse(conn)
                continue
            with self._lock:
                if self._closed:
                    conn.close()
                    return
                self._connections.append(conn)
            threading.Thread(target=self._serve, args=(conn, peer), daemon=True).start()

    def _from_environment(self, conn: socket.socket) -> bool:
        inode = caller.socket_inode(conn)
        return inode is not None and caller.owned_by(inode, self.callers())

    def _serve(self, conn: socket.socket, peer) -> None:
        """HTTP/1.1 with keep-alive, as the runtime client speaks it (a lean loop: ``http.server``'s
        header parsing cost ~100 µs a request, twice per invocation)."""
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = conn.makefile("rb")
        try:
            while True:
                request = _read_request(reader)
                if request is None:
                    return
                method, path, headers = request
                if headers.get("expect", "").lower() == "100-continue":
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                try:
                    body = _read_body(reader, headers)
                except bodies.TooLarge as exc:
                    self._too_large(conn, path, headers, exc)
                    return
                log.debug("runtime api %s: %s %s", self.address, method, path)
                answer = _answer(self.delivery, conn, method, path, headers, body)
                if answer is None:
                    conn.sendall(_response(410, b'{"errorMessage": "environment stopping"}', close=True))
                    return
                if answer:
                    conn.sendall(answer)
                if headers.get("connection", "").lower() == "close":
                    return
        except _BadRequest as exc:
            log.warning("runtime api %s: bad request from %s: %r", self.address, peer, exc.args[0])
            with contextlib.suppress(OSError):
                conn.sendall(_response(400, b'{"errorMessage": "bad request"}', close=True))
        except OSError:
            pass  # the process went away mid-request
        finally:
            reader.close()
            conn.close()
            with self._lock:
                if conn in self._connections:
                    self._connections.remove(conn)

    def _too_large(
        self, conn: socket.socket, path: str, headers: dict[str, str], exc: bodies.TooLarge
    ) -> None:
        """A response or error over Lambda's limit fails the invocation with Function.ResponseSizeTooLarge."""
        parts = path[len(PREFIX) :].strip("/").split("/")
        if path.startswith(PREFIX) and len(parts) == 3 and parts[0] == "invocation":
            self.delivery.complete(
                parts[1], RESPONSE_TOO_LARGE, is_error=True, error_type="Function.ResponseSizeTooLarge"
            )
        log.info("runtime api %s: a %d-byte body to %s is over the limit", self.address, exc.length, path)
        with contextlib.suppress(OSError):
            conn.sendall(_response(413, TOO_LARGE, close=True))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections = list(self._connections)
        for sock in [self._socket, *connections]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


_REFUSAL = b'{"errorMessage": "This Runtime API serves only its own execution environment.", "errorType": "AccessDenied"}'
LINGER_S = 1.0  # how long a refused connection's request is read and dropped before it is closed
_MAX_LINGERING = 64  # refused connections closed gracefully at once; past that, at once
_lingering = threading.BoundedSemaphore(_MAX_LINGERING)


def _refuse(conn: socket.socket) -> None:
    """Answer 403 and close, once the client's request is read and dropped: closing a socket with its
    request unread resets the connection, and the client could then lose the answer (BrokenPipeError)
    instead of reading the 403. A request not there yet is waited for by a short-lived thread (at most
    ``LINGER_S``, at most ``_MAX_LINGERING`` at once)."""
    head = (
        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(_REFUSAL)}\r\nConnection: close\r\n\r\n"
    )
    try:
        conn.setblocking(False)
        try:
            arrived = conn.recv(65536)  # the request, when it came with the connection (usually)
        except BlockingIOError:
            arrived = None
        conn.setblocking(True)
        conn.sendall(head.encode() + _REFUSAL)
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        conn.close()
        return
    if arrived is not None or not _lingering.acquire(blocking=False):
        conn.close()
        return
    try:
        threading.Thread(target=_drain_and_close, args=(conn,), daemon=True).start()
    except RuntimeError:  # no thread to be had: close now
        _lingering.release()
        conn.close()


def _drain_and_close(conn: socket.socket) -> None:
    try:
        conn.settimeout(LINGER_S)
        deadline = time.monotonic() + LINGER_S
        while time.monotonic() < deadline and conn.recv(65536):
            pass
    except OSError:
        pass
    finally:
        conn.close()
        _lingering.release()
