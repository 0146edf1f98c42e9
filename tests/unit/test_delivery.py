"""How an environment answers ``GET /next`` (localaws/lambda_engine/delivery.py): never two waiters.

The end-to-end case (a handler asking its own Runtime API for the next invocation, through boto3) is in
tests/local/test_isolation_engine.py; here, the cases a handler cannot reach deterministically: a second
``/next`` arriving while the runtime's own one waits, and the waiter let go when the environment stops.
"""

from __future__ import annotations

import json
import socket
import threading

from localaws.lambda_engine import runtime_api
from localaws.lambda_engine.delivery import Mailbox
from localaws.lambda_engine.invocation import Invocation
from localaws.lambda_engine.runtime_api import SENT, InvalidState


def _invocation(request_id: str) -> Invocation:
    return Invocation(request_id=request_id, payload=b"{}", deadline_ms=0, invoked_arn="arn")


def _park(mailbox: Mailbox, conn) -> tuple[threading.Thread, list]:
    answers: list = []
    waiter = threading.Thread(target=lambda: answers.append(mailbox.next(conn, None)))
    waiter.start()
    while mailbox.waiting_since is None:  # parked
        waiter.join(0.001)
    return waiter, answers


def test_a_second_next_while_one_waits_is_refused_and_the_first_gets_the_invocation():
    mailbox = Mailbox("env", lambda: None)
    runtime_end, server_end = socket.socketpair()
    with runtime_end, server_end:
        waiter, answers = _park(mailbox, server_end)
        refused = mailbox.next(None, None)
        assert refused == InvalidState("Ready")
        assert json.loads(refused.body()) == {
            "errorMessage": "State transition from Ready to Ready failed for runtime. "
            "Error: State transition is not allowed",
            "errorType": "InvalidStateTransition",
        }
        mailbox.deliver(_invocation("r1"))
        waiter.join(10)
        assert answers == [SENT]
        assert b"Lambda-Runtime-Aws-Request-Id: r1" in runtime_end.recv(4096)


def test_a_next_while_an_invocation_runs_gets_that_invocation_again():
    mailbox = Mailbox("env", lambda: None)
    current = _invocation("r2")
    mailbox.deliver(current)  # no waiter yet: held until the runtime asks
    request_id, _, headers = mailbox.next(None, None)
    assert request_id == "r2" and current.started
    again = mailbox.next(None, current)  # the handler asks, the invocation still runs
    assert again[0] == "r2" and again[2]["Lambda-Runtime-Aws-Request-Id"] == "r2"
    current.settle("response", b"1")
    waiter, answers = _park(mailbox, None)  # once it answered, /next waits for the next one
    mailbox.deliver(_invocation("r3"))
    waiter.join(10)
    assert answers[0][0] == "r3"


def test_stopping_lets_the_waiter_go_and_answers_every_later_next_with_none():
    mailbox = Mailbox("env", lambda: None)
    waiter, answers = _park(mailbox, None)
    mailbox.release(stop=True)
    waiter.join(10)
    assert answers == [None] and mailbox.next(None, None) is None


def test_the_runtime_api_answers_an_invalid_state_with_a_403():
    class Refusing:
        def next_invocation(self, conn):
            return InvalidState("Ready")

    server = runtime_api.RuntimeAPIServer(Refusing())
    host, port = server.address.split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = conn.recv(4096)
        assert answer.startswith(b"HTTP/1.1 403")
        assert b'"errorType": "InvalidStateTransition"' in answer
    finally:
        server.close()
