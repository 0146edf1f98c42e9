"""Every route the server serves, fed malformed, deeply nested and oversized bodies, answers as AWS would:
the service's modelled error (or a success), never an HTML page and never a 5xx AWS would not give.

The routes are those of the services the workshop and the embedded AWS serve, as botocore's service
models define them (every operation: its method, URI and protocol), plus the server's own endpoints
(an HTTP API's, the health check). Per operation: a body that does not parse, one nested 100,000
deep, and one whose every member has the wrong type (for the query protocols, which share one route,
the last per operation and the first two per service); per route, a Content-Length over any limit
(refused from the header); per service, a chunked body one byte over its limit. The only 5xx allowed is
501 ``NotImplemented`` in the service's format, for an operation the local AWS does not emulate.
See ``localaws/limits.py``, ``localaws/guard.py`` and ``localaws/service_errors.py`` (issue 23, item 9).
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import botocore.parsers
import botocore.session
import pytest

from localaws import server
from tests.conftest import start_local_aws
from tests.local.test_http_api_limits import _api_in_front_of

SERVICES = [
    "lambda", "efs", "apigatewayv2", "sagemaker", "sagemaker-runtime", "cloudformation", "ec2", "logs", "iam",
    "s3", "sts", "sqs", "sns", "events", "cloudwatch",
]  # fmt: skip
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
DEEP_XML = b"<a>" * 100_000 + b"</a>" * 100_000
OVER_ANY_LIMIT = 6 << 30  # above every limit and above what the server drains: refused unread
# The limits of routes without one of their own (localaws/limits.py): form-encoded (query) and others.
QUERY_LIMIT, DEFAULT_LIMIT, HTTP_API_LIMIT = 2 << 20, 8 << 20, 10 << 20
_SESSION = botocore.session.get_session()


@dataclass
class Probe:
    service: str
    operation: str
    variant: str
    method: str
    path: str
    headers: dict
    body: bytes = b""
    declared_length: int | None = None  # a Content-Length larger than the body sent (never sent)
    chunked: bool = False


def _signing(model) -> str:
    return model.metadata.get("signingName") or model.metadata["endpointPrefix"]


def _headers(model, operation) -> dict:
    service = _signing(model)
    headers = {
        "Authorization": f"AWS4-HMAC-SHA256 Credential=fuzz/20260101/us-east-1/{service}/aws4_request, "
        "SignedHeaders=host, Signature=0"
    }
    protocol = model.metadata["protocol"]
    if protocol == "json":
        headers["X-Amz-Target"] = f"{model.metadata['targetPrefix']}.{operation.name}"
        headers["Content-Type"] = f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.1')}"
    elif protocol == "smithy-rpc-v2-cbor":
        headers["smithy-protocol"] = "rpc-v2-cbor"
        headers["Content-Type"] = "application/cbor"
    elif protocol in ("query", "ec2"):
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif protocol == "rest-xml":
        headers["Content-Type"] = "application/xml"
    else:
        headers["Content-Type"] = "application/json"
    return headers


def _path(model, operation) -> str:
    if model.metadata["protocol"] == "smithy-rpc-v2-cbor":
        return f"/service/{model.metadata['targetPrefix']}/operation/{operation.name}"
    uri = operation.http.get("requestUri", "/")
    uri = re.sub(r"\{[^}]+\+\}", "fuzz/key", uri)
    return re.sub(r"\{[^}]+\}", "fuzz", uri)


def _wrongly_typed(shape) -> dict:
    """Every member of ``shape`` with a value of another type than its own."""
    wrong = {"structure": "x", "list": {"x": 1}, "map": ["x"], "string": {"x": [1]}, "blob": {"x": 1}}
    members = getattr(shape, "members", {}) if shape is not None else {}
    return {name: wrong.get(member.type_name, "not a number") for name, member in members.items()}


def _query_body(model, operation, params: dict[str, str]) -> bytes:
    fields = {"Action": operation.name, "Version": model.metadata["apiVersion"], **params}
    return urllib.parse.urlencode(fields).encode()


def _operation_probes(service: str, model, op) -> list[Probe]:
    """The bad bodies one operation gets (see the module)."""
    protocol = model.metadata["protocol"]
    route = (service, op.name)
    where = (op.http.get("method", "POST"), _path(model, op), _headers(model, op))
    if protocol in ("query", "ec2"):
        typed = {k: "!!" for k in getattr(op.input_shape, "members", {})}
        return [Probe(*route, "wrong types", *where, _query_body(model, op, typed))]
    xml = protocol == "rest-xml"
    found = [
        Probe(*route, "malformed", *where, b"<a><b" if xml else b'{"a": [1, {"b'),
        Probe(*route, "deep", *where, DEEP_XML if xml else DEEP_JSON),
    ]
    if not xml:
        found.append(
            Probe(*route, "wrong types", *where, json.dumps(_wrongly_typed(op.input_shape)).encode())
        )
    return found


def _service_probes(service: str, model) -> list[Probe]:
    """What a service's shared route gets: malformed and deep forms (query protocols), a chunked body over
    its limit."""
    protocol = model.metadata["protocol"]
    op = model.operation_model(model.operation_names[0])
    method, path, headers = op.http.get("method", "POST"), _path(model, op), _headers(model, op)
    found = []
    if protocol in ("query", "ec2"):
        deep_name = ".".join(["Filter", "1"] * 2000) + ".Name"
        found.append(
            Probe(service, op.name, "deep", method, path, headers, _query_body(model, op, {deep_name: "x"}))
        )
        found.append(Probe(service, op.name, "malformed", method, path, headers, b"Action=%ZZ&&==&Version=%"))
    limit = QUERY_LIMIT if protocol in ("query", "ec2") else DEFAULT_LIMIT
    if service == "lambda":  # its first operation may carry a larger limit: probe one that does not
        method, path = "PUT", "/2015-03-31/functions/fuzz/configuration"
    found.append(
        Probe(
            service, op.name, "oversized (chunked)", method, path, headers, b"{" * (limit + 1), chunked=True
        )
    )
    return found


def probes() -> list[Probe]:
    found = []
    for service in SERVICES:
        model = _SESSION.get_service_model(service)
        routes = set()
        for name in model.operation_names:
            op = model.operation_model(name)
            found += _operation_probes(service, model, op)
            route = (op.http.get("method", "POST"), _path(model, op))
            if route not in routes:
                routes.add(route)
                found.append(
                    Probe(
                        service,
                        name,
                        "oversized (Content-Length)",
                        *route,
                        _headers(model, op),
                        b"",
                        OVER_ANY_LIMIT,
                    )
                )
        found += _service_probes(service, model)
    return found


def send(url: str, probe: Probe) -> tuple[int, dict, bytes]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        conn.putrequest(probe.method, probe.path, skip_accept_encoding=True)
        for key, value in probe.headers.items():
            conn.putheader(key, value)
        if probe.chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        else:
            conn.putheader("Content-Length", str(probe.declared_length or len(probe.body)))
        conn.endheaders()
        try:
            if probe.chunked:
                for start in range(0, len(probe.body), 1 << 20):
                    piece = probe.body[start : start + (1 << 20)]
                    conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                conn.send(b"0\r\n\r\n")
            elif probe.declared_length is None:
                conn.send(probe.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole body was sent: the answer is there to read
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


# Answers AWS gives without an error code: SageMaker Runtime's payload limit (boto3 reports "An error
# occurred (413) ...: HTTP content length exceeded ... bytes.").
AWS_BARE_ERRORS = {("sagemaker-runtime", 413)}


def problem(probe: Probe, status: int, headers: dict, body: bytes) -> str | None:
    """What is wrong with an answer, or None."""
    if probe.method == "HEAD":  # an answer without a body: its status is all there is, as on AWS
        return f"status {status}" if status >= 500 and status != 501 else None
    content_type = headers.get("content-type", "")
    if "html" in content_type or body.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
        return f"HTML answer ({status})"
    if status >= 500 and status != 501:
        return f"status {status}: {body[:200]!r}"
    if status >= 400:
        model = _SESSION.get_service_model(probe.service)
        parser = botocore.parsers.create_parser(model.metadata["protocol"])
        shape = model.operation_model(probe.operation).output_shape
        try:
            error = parser.parse({"status_code": status, "headers": headers, "body": body}, shape)["Error"]
        except Exception as exc:  # noqa: BLE001 - a body boto3 cannot read is the finding
            return f"unparsable {status} error ({exc}): {body[:200]!r}"
        bare = (probe.service, status) in AWS_BARE_ERRORS
        if not bare and (not error.get("Code") or str(error["Code"]).isdigit()):
            return f"unmodelled {status} error {error}: {body[:200]!r}"
    return None


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """A server of the test's own (fuzzing creates and breaks things), with an HTTP API to probe too."""
    handle = start_local_aws(tmp_path_factory.mktemp("fuzz") / "state")
    yield handle
    server.stop(handle.state_dir)


def test_every_route_answers_bad_bodies_with_modelled_errors(fuzzed):
    found = probes()
    assert {p.service for p in found} == set(SERVICES) and len(found) > 3000
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda probe: send(fuzzed.url, probe), found))
    failures = [
        f"{p.service} {p.operation} ({p.variant}, {p.method} {p.path}): {issue}"
        for p, answer in zip(found, answers, strict=True)
        if (issue := problem(p, *answer))
    ]
    assert not failures, f"{len(failures)} bad answers, e.g.:\n" + "\n".join(failures[:25])
    assert server.health(fuzzed.url) is not None  # and the server still serves


def test_the_servers_own_endpoints_answer_bad_bodies_without_html(fuzzed):
    endpoint, cleanup = _api_in_front_of(
        fuzzed, "def handler(event, context):\n    return {'statusCode': 200, 'body': '{}'}\n"
    )
    base = urllib.parse.urlsplit(endpoint).path
    try:
        requests = [
            ("POST", f"{base}/any/path", DEEP_JSON, False, None),
            ("PUT", f"{base}/", b'{"a": [1, {"b', False, None),
            ("POST", f"{base}/", b"x" * (HTTP_API_LIMIT + 1), True, None),
            ("POST", f"{base}/", b"", False, OVER_ANY_LIMIT),
            ("POST", "/_api/nosuchapi/", b"{}", False, None),
            ("POST", server.HEALTH_PATH, DEEP_JSON, False, None),
        ]
        for method, path, body, chunked, declared in requests:
            probe = Probe("http-api", "-", "own", method, path, {}, body, declared, chunked)
            status, headers, data = send(fuzzed.url, probe)
            assert "html" not in headers.get("content-type", "") and status < 500, (
                method,
                path,
                status,
                data[:200],
            )
            json.loads(data)  # API Gateway's JSON answers ({"message": ...}) or the function's
    finally:
        cleanup()
