"""localaws.network.guard: requests from an environment's AWS addresses are checked against the address
they were sent to (the signature's scope) and the environment's network before the app sees them."""

from __future__ import annotations

import socket
import threading

import botocore.session
import pytest
from botocore import parsers
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, HeadersDict
from botocore.credentials import Credentials

from localaws.network import addresses, guard
from localaws.network.reachability import Policy, Verdict

CREDENTIALS = Credentials("AKIDEXAMPLE", "secret")
EXPECTED_CODE = {
    "json": "InvalidSignatureException",
    "rest-json": "InvalidSignatureException",
    "query": "SignatureDoesNotMatch",
    "ec2": "SignatureDoesNotMatch",
    "rest-xml": "AuthorizationHeaderMalformed",
}


def signed_environ(service: str, *, path: str = "/", presigned: bool = False) -> dict:
    request = AWSRequest(method="GET", url=f"http://198.18.0.10{path}", headers={"Host": "198.18.0.10"})
    if presigned:
        SigV4QueryAuth(CREDENTIALS, service, "us-east-1", expires=60).add_auth(request)
        return {"PATH_INFO": path, "QUERY_STRING": request.url.partition("?")[2]}
    SigV4Auth(CREDENTIALS, service, "us-east-1").add_auth(request)
    return {"PATH_INFO": path, "QUERY_STRING": "", "HTTP_AUTHORIZATION": request.headers["Authorization"]}


def test_the_scope_names_the_service_in_a_header_or_a_presigned_url():
    assert guard.scope_service(signed_environ("lambda")) == "lambda"
    assert guard.scope_service(signed_environ("s3", presigned=True)) == "s3"
    assert guard.scope_service({"PATH_INFO": "/", "QUERY_STRING": ""}) is None
    assert guard.scope_service({"HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=a/b/c, X=y"}) is None


@pytest.mark.parametrize("service", addresses.SERVICES, ids=lambda s: s.client)
def test_a_wrong_scope_is_an_error_the_sdk_parses_as_the_services_own(service):
    status, headers, body = guard.wrong_scope(service, "lambda" if service.signing != "lambda" else "s3")
    model = botocore.session.get_session().get_service_model(service.client)
    output = model.operation_model(model.operation_names[0]).output_shape
    response = {"status_code": int(status.split()[0]), "headers": HeadersDict(headers), "body": body}
    parsed = parsers.create_parser(service.protocol).parse(response, output)
    assert parsed["Error"]["Code"] == EXPECTED_CODE[service.protocol]
    if service.protocol != "rest-xml":
        assert (
            parsed["Error"]["Message"]
            == f"Credential should be scoped to correct service: '{service.signing}'. "
        )
    assert 400 <= parsed["ResponseMetadata"]["HTTPStatusCode"] < 500


class Recorder:
    """A WSGI app that answers 200 and remembers that it was called."""

    def __init__(self):
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]


S3_ONLY = Policy(
    {s.client: Verdict(s.client == "s3", "test") for s in addresses.SERVICES}, Verdict(False, "test")
)


def call(app, environ: dict):
    answer = {}
    body = b"".join(app(environ, lambda status, headers: answer.update(status=status, headers=headers)))
    return answer.get("status"), body


def from_environment(environ: dict, listener: str, client_socket: socket.socket | None = None) -> dict:
    environ = dict(environ, **{guard.ENDPOINT_KEY: guard.Endpoint("env-1", listener)})
    if client_socket is not None:
        environ["werkzeug.socket"] = client_socket
    return environ


def test_requests_of_this_machines_own_clients_are_not_checked():
    app = Recorder()
    status, _ = call(guard.guard(app, lambda env: None), signed_environ("lambda"))
    assert status == "200 OK" and app.calls == 1


def test_a_request_signed_for_another_service_is_refused_on_a_services_address():
    app = Recorder()
    checked = guard.guard(app, {"env-1": S3_ONLY}.get)
    status, body = call(checked, from_environment(signed_environ("lambda"), "s3"))
    assert status.startswith("400") and b"AuthorizationHeaderMalformed" in body and app.calls == 0
    status, _ = call(checked, from_environment(signed_environ("s3"), "s3"))
    assert status == "200 OK" and app.calls == 1
    status, _ = call(checked, from_environment({"PATH_INFO": "/bucket/key", "QUERY_STRING": ""}, "s3"))
    assert status == "200 OK" and app.calls == 2  # anonymous S3


def held(checked, environ: dict) -> bool:
    """Whether the guard holds the request unanswered: it must still be waiting after the client's
    socket stays open, and end (as a dropped connection) once the client closes."""
    server_end, client_end = socket.socketpair()
    outcome = {}

    def run():
        try:
            outcome["answer"] = call(checked, from_environment(environ, environ["listener"], server_end))
        except ConnectionAbortedError:
            outcome["dropped"] = True

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(0.5)
    waiting = worker.is_alive()
    client_end.close()
    worker.join(30)
    server_end.close()
    return waiting and outcome.get("dropped", False)


def test_the_generic_address_holds_requests_for_services_the_network_does_not_reach():
    app = Recorder()
    checked = guard.guard(app, {"env-1": S3_ONLY}.get)
    assert held(checked, dict(signed_environ("lambda"), listener=addresses.GENERIC))
    assert held(checked, dict(signed_environ("kinesis"), listener=addresses.GENERIC))
    assert held(checked, dict({"PATH_INFO": "/", "QUERY_STRING": ""}, listener=addresses.GENERIC))  # unsigned
    assert app.calls == 0
    status, _ = call(checked, from_environment(signed_environ("s3"), addresses.GENERIC))
    assert status == "200 OK" and app.calls == 1


def test_the_generic_address_tells_sagemakers_runtime_from_its_api_by_path():
    runtime_only = Policy(
        {s.client: Verdict(s.client == "sagemaker-runtime", "test") for s in addresses.SERVICES},
        Verdict(False, "t"),
    )
    app = Recorder()
    checked = guard.guard(app, {"env-1": runtime_only}.get)
    invoke = signed_environ("sagemaker", path="/endpoints/resnet/invocations")
    status, _ = call(checked, from_environment(invoke, addresses.GENERIC))
    assert status == "200 OK"
    assert held(checked, dict(signed_environ("sagemaker"), listener=addresses.GENERIC))


def test_a_service_address_the_network_no_longer_reaches_holds_its_requests():
    app = Recorder()
    assert held(guard.guard(app, {"env-1": S3_ONLY}.get), dict(signed_environ("lambda"), listener="lambda"))
    assert held(guard.guard(app, {}.get), dict(signed_environ("s3"), listener="s3"))  # environment gone
    assert app.calls == 0


def test_a_held_request_ends_at_the_hold_limit_even_if_the_client_stays():
    server_end, client_end = socket.socketpair()
    checked = guard.guard(Recorder(), {"env-1": S3_ONLY}.get, hold_limit_s=0.2)
    with pytest.raises(ConnectionAbortedError):
        call(checked, from_environment(signed_environ("lambda"), "lambda", server_end))
    server_end.close()
    client_end.close()


def test_a_held_request_reads_and_discards_what_the_client_keeps_sending():
    server_end, client_end = socket.socketpair()
    checked = guard.guard(Recorder(), {"env-1": S3_ONLY}.get, hold_limit_s=60)
    worker = threading.Thread(
        target=lambda: pytest.raises(
            ConnectionAbortedError, call, checked, from_environment(signed_environ("sts"), "sts", server_end)
        ),
        daemon=True,
    )
    worker.start()
    client_end.settimeout(30)
    client_end.sendall(b"x" * 300_000)  # more than the socket buffers: it is being read
    client_end.close()
    worker.join(30)
    assert not worker.is_alive()
    server_end.close()
