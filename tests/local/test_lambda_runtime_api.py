"""The Runtime API's HTTP/1.1 loop (localaws/lambda_engine/runtime_api.py), spoken to over a raw socket.

No server of the workshop is needed: a fake environment (the ``Delivery``) hands out invocations and
records what the runtime posts back.
"""

from __future__ import annotations

import json
import queue
import socket

import pytest

from localaws.lambda_engine import runtime_api
from localaws.lambda_engine.runtime_api import PREFIX, RESPONSE_LIMIT, SENT, RuntimeAPIServer


class FakeEnvironment:
    def __init__(self, send_itself: bool = False):
        self.invocations: queue.Queue = queue.Queue()
        self.completed: list[tuple[str, bytes, bool, str | None]] = []
        self.send_itself = send_itself

    def next_invocation(self, conn):
        request_id, payload = self.invocations.get(timeout=5)
        headers = {"Lambda-Runtime-Aws-Request-Id": request_id}
        if self.send_itself:
            conn.sendall(runtime_api.next_response(payload, headers))
            return SENT
        return request_id, payload, headers

    def complete(self, request_id, body, *, is_error, error_type):
        if request_id != "r1":
            return False
        self.completed.append((request_id, body, is_error, error_type))
        return True

    def init_failed(self, body, error_type):
        self.completed.append(("init", body, True, error_type))


@pytest.fixture
def api():
    servers = []

    def start(environment: FakeEnvironment) -> tuple[str, int]:
        server = RuntimeAPIServer(environment)
        servers.append(server)
        host, port = server.address.split(":")
        return host, int(port)

    yield start
    for server in servers:
        server.close()


def _read_response(conn: socket.socket) -> tuple[int, dict[str, str], bytes]:
    reader = _readers.setdefault(conn, conn.makefile("rb"))
    status_line = reader.readline().decode()
    assert status_line, "the connection was closed"
    headers = {}
    while (field := reader.readline()) not in (b"\r\n", b""):
        name, _, value = field.decode().partition(":")
        headers[name.lower()] = value.strip()
    return int(status_line.split()[1]), headers, reader.read(int(headers.get("content-length", 0)))


_readers: dict[socket.socket, object] = {}


def _post(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {PREFIX}{path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode()
        + body
    )


@pytest.mark.parametrize("send_itself", [False, True], ids=["from-the-api-thread", "from-the-environment"])
def test_next_and_response_on_one_kept_alive_connection(api, send_itself):
    environment = FakeEnvironment(send_itself)
    with socket.create_connection(api(environment), timeout=5) as conn:
        for body in (b'{"n": 1}', b'{"n": 2}'):
            environment.invocations.put(("r1", b'{"event": true}'))
            conn.sendall(f"GET {PREFIX}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            status, headers, payload = _read_response(conn)
            assert (status, headers["lambda-runtime-aws-request-id"], payload) == (
                200,
                "r1",
                b'{"event": true}',
            )
            conn.sendall(_post("/invocation/r1/response", body))
            assert _read_response(conn)[0] == 202
    assert [c[1] for c in environment.completed] == [b'{"n": 1}', b'{"n": 2}']


def test_expect_100_continue_and_a_chunked_body_are_understood(api):
    environment = FakeEnvironment()
    with socket.create_connection(api(environment), timeout=5) as conn:
        conn.sendall(_post("/invocation/r1/error", b"{}", "Expect: 100-continue\r\n"))
        assert _read_response(conn) == (100, {}, b"")
        assert _read_response(conn)[0] == 202
        chunked = (
            f"POST {PREFIX}/invocation/r1/response HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
            "Lambda-Runtime-Function-Error-Type: Custom.Error\r\n\r\n"
            "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        conn.sendall(chunked.encode())
        assert _read_response(conn)[0] == 202
    assert environment.completed == [("r1", b"{}", True, None), ("r1", b"hello world", False, "Custom.Error")]


def test_a_response_over_the_limit_is_413_and_fails_the_invocation_as_response_size_too_large(api):
    environment = FakeEnvironment()
    with socket.create_connection(api(environment), timeout=10) as conn:
        conn.sendall(_post("/invocation/r1/response", b"x" * (RESPONSE_LIMIT + 5000)))
        status, headers, body = _read_response(conn)
    # The Runtime Interface Emulator's RenderRequestEntityTooLarge, and Lambda's Invoke error.
    assert (status, headers["connection"], json.loads(body)) == (
        413,
        "close",
        {
            "errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).",
            "errorType": "RequestEntityTooLarge",
        },
    )
    [(request_id, answer, is_error, error_type)] = environment.completed
    assert (request_id, is_error, error_type) == ("r1", True, "Function.ResponseSizeTooLarge")
    assert json.loads(answer)["errorType"] == "Function.ResponseSizeTooLarge"


def test_what_is_not_http_gets_a_400_and_the_connection_is_closed(api):
    with socket.create_connection(api(FakeEnvironment()), timeout=5) as conn:
        conn.sendall(b"hello there\r\n\r\n")
        status, headers, _ = _read_response(conn)
        assert status == 400 and headers["connection"] == "close"
        assert _readers[conn].read() == b""  # closed by the server


def test_unknown_paths_are_404_and_init_errors_are_recorded(api):
    environment = FakeEnvironment()
    with socket.create_connection(api(environment), timeout=5) as conn:
        conn.sendall(f"GET {PREFIX}/nothing HTTP/1.1\r\n\r\n".encode())
        assert _read_response(conn)[0] == 404
        conn.sendall(_post("/init/error", b'{"errorType": "X"}', "Lambda-Runtime-Function-Error-Type: X\r\n"))
        assert _read_response(conn)[0] == 202
    assert environment.completed == [("init", b'{"errorType": "X"}', True, "X")]
