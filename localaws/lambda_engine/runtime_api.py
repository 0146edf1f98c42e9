"""The Lambda Runtime API for one execution environment, served on 127.0.0.1 (an ephemeral port).

The runtime client in the environment's process (``awslambdaric`` or :mod:`bootstrap`) long-polls
``GET /2018-06-01/runtime/invocation/next``, then posts ``.../invocation/{id}/response`` or
``.../invocation/{id}/error``; an init failure is ``POST /2018-06-01/runtime/init/error``.
Sockets use TCP_NODELAY: without it Nagle + delayed ACK add ~40 ms to every keep-alive round trip.
With ``callers``, a connection is served only if it comes from one of the environment's own processes
(:mod:`.sandbox.caller`): no other process can take its invocations or post its responses.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Protocol

from localaws.lambda_engine.sandbox import caller

log = logging.getLogger(__name__)

PREFIX = "/2018-06-01/runtime"
RESPONSE_LIMIT = 6 * 1024 * 1024 + 100  # 6291556 bytes: synchronous response payload, Lambda quotas page


class Delivery(Protocol):
    """What the server needs from its environment."""

    def next_invocation(self) -> tuple[str, bytes, dict[str, str]] | None:
        """Block until there is an invocation: (request id, payload, headers); None when stopping."""

    def complete(self, request_id: str, body: bytes, *, is_error: bool, error_type: str | None) -> bool:
        """Record a response or error; False if ``request_id`` is not the current invocation."""

    def init_failed(self, body: bytes, error_type: str | None) -> None:
        """Record an init error."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RuntimeAPIServer

    def setup(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - signature of the base class
        log.debug("runtime api %s: " + format, self.server.address, *args)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}", "", ""]
        self.wfile.write("\r\n".join(lines).encode() + body)

    def _body(self) -> bytes:
        """The body, at most one byte over Lambda's 6 MB response limit (enough for the layer to answer
        Function.ResponseSizeTooLarge); the rest is read and dropped, never held in memory."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, RESPONSE_LIMIT + 1)) if length else b""
        left = length - len(body)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)
        return body

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if self.path != f"{PREFIX}/invocation/next":
            self._send(404, b'{"errorMessage": "unknown path", "errorType": "InvalidRequest"}')
            return
        invocation = self.server.delivery.next_invocation()
        if invocation is None:  # the environment is stopping
            self.close_connection = True
            self._send(410, b'{"errorMessage": "environment stopping"}')
            return
        request_id, payload, headers = invocation
        self._send(200, payload, headers)

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = self._body()
        error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
        if self.path == f"{PREFIX}/init/error":
            self.server.delivery.init_failed(body, error_type)
            self._send(202, b'{"status": "OK"}')
            return
        parts = self.path[len(PREFIX) :].strip("/").split("/")
        if self.path.startswith(PREFIX) and len(parts) == 3 and parts[0] == "invocation":
            if parts[2] in ("response", "error"):
                accepted = self.server.delivery.complete(
                    parts[1], body, is_error=parts[2] == "error", error_type=error_type
                )
                if accepted:
                    self._send(202, b'{"status": "OK"}')
                else:
                    self._send(
                        400,
                        json.dumps(
                            {
                                "errorMessage": f"unknown request id {parts[1]}",
                                "errorType": "InvalidRequestID",
                            }
                        ).encode(),
                    )
                return
        self._send(404, b'{"errorMessage": "unknown path", "errorType": "InvalidRequest"}')


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
            except OSError:
                return
            if self.callers is not None and not self._from_environment(conn):
                log.warning(
                    "runtime api %s refused a connection from another process (%s)", self.address, peer
                )
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
        try:
            _Handler(conn, peer, self)
        except OSError:
            pass  # the process went away mid-request
        finally:
            conn.close()
            with self._lock:
                if conn in self._connections:
                    self._connections.remove(conn)

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


def _refuse(conn: socket.socket) -> None:
    body = b'{"errorMessage": "This Runtime API serves only its own execution environment.", "errorType": "AccessDenied"}'
    head = f"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    try:
        conn.sendall(head.encode() + body)
    except OSError:
        pass
    finally:
        conn.close()
