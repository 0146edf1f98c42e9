"""The local HTTP API enforces API Gateway's limits with API Gateway's answers: body size and timeout.

See ``localaws/http_api.py``. The 200 MB request checks that a refused body is never held in the
server's memory (its peak resident size, VmHWM, must not move).
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from localaws import server
from tests.conftest import lambda_zip
from tests.local.test_http_api import echo_function, fetch, http_stack  # noqa: F401 - fixtures

SLEEPER = "import time\n\ndef handler(event, context):\n    time.sleep(5)\n    return {'statusCode': 200, 'body': 'late'}\n"


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _post_streamed(url: str, total: int, chunk: int = 1 << 20) -> tuple[int, bytes]:
    """POST ``total`` bytes without holding them: a chunk at a time with a Content-Length."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    conn.putrequest("POST", parts.path)
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(total))
    conn.endheaders()
    block = b"\0" * chunk
    sent = 0
    try:
        while sent < total:
            conn.send(block[: min(chunk, total - sent)])
            sent += min(chunk, total - sent)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer and close before the whole body is sent
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body


def test_a_body_over_10_mb_is_413_with_api_gateways_body(http_stack):  # noqa: F811
    status, body = _post_streamed(http_stack["Endpoint"] + "/", 10 * 1024 * 1024 + 1)
    assert (status, json.loads(body)) == (413, {"message": "Request Entity Too Large"})
    status, _, _ = fetch(http_stack["Endpoint"] + "/", b"x" * (10 * 1024 * 1024 - 1024))
    assert status != 413


def test_a_200_mb_body_is_refused_without_raising_server_memory(http_stack, local_aws):  # noqa: F811
    pid = server.status(local_aws.state_dir)["pid"]
    before = _peak_rss_kb(pid)
    status, body = _post_streamed(http_stack["Endpoint"] + "/", 200 * 1024 * 1024)
    assert status == 413 and json.loads(body) == {"message": "Request Entity Too Large"}
    grown_mb = (_peak_rss_kb(pid) - before) / 1024
    assert grown_mb < 50, f"the server's peak memory grew by {grown_mb:.0f} MB"
    assert fetch(http_stack["Endpoint"] + "/plain")[0] == 200  # and it still serves


def _api_in_front_of(local_aws, code: str, timeout_ms: int | None = None):
    """(endpoint, cleanup) of an HTTP API quick-created in front of a new function running ``code``."""
    lam, apis = local_aws.client("lambda"), local_aws.client("apigatewayv2")
    name = f"http-limits-{uuid.uuid4().hex[:8]}"
    arn = lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Handler="app.handler",
        Role=local_aws.lambda_role(),
        Code={"ZipFile": lambda_zip(code)},
        Timeout=10,
        MemorySize=512,
    )["FunctionArn"]
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    api = apis.create_api(Name=name, ProtocolType="HTTP", Target=arn)
    if timeout_ms:
        [integration] = apis.get_integrations(ApiId=api["ApiId"])["Items"]
        apis.update_integration(
            ApiId=api["ApiId"], IntegrationId=integration["IntegrationId"], TimeoutInMillis=timeout_ms
        )

    def cleanup() -> None:
        apis.delete_api(ApiId=api["ApiId"])
        lam.delete_function(FunctionName=name)

    return api["ApiEndpoint"], cleanup


@pytest.fixture
def slow_api(local_aws):
    """An HTTP API whose function answers after 5 s, with a 1 s integration timeout."""
    endpoint, cleanup = _api_in_front_of(local_aws, SLEEPER, timeout_ms=1000)
    yield endpoint
    cleanup()


def test_a_function_response_over_6_mb_is_500_internal_server_error(local_aws):
    code = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'x' * 6_300_000}\n"
    endpoint, cleanup = _api_in_front_of(local_aws, code)
    try:
        status, _, body = fetch(endpoint + "/")
        assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    finally:
        cleanup()


def test_an_integration_past_its_timeout_is_503_service_unavailable(slow_api):
    start = time.monotonic()
    status, _, body = fetch(slow_api + "/")
    elapsed = time.monotonic() - start
    assert (status, json.loads(body)) == (503, {"message": "Service Unavailable"})
    assert 0.9 < elapsed < 4.5, elapsed  # well before the function answers
