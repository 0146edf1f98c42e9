"""Invoke's limits as Lambda answers them: request and response sizes, and bodies that are not JSON.

See ``localaws/lambda_engine/layer.py``. Thresholds: 6291456 bytes for a synchronous request,
1048576 for an ``Event`` one, 6291556 for a response.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from localaws import server
from tests.conftest import lambda_zip
from tests.local.test_http_api_limits import _peak_rss_kb, _post_streamed

HANDLER = """
def handler(event, context):
    if isinstance(event, dict) and event.get("respond"):
        return "x" * event["respond"]
    return len(event) if isinstance(event, str) else "ok"
"""


@pytest.fixture(scope="module")
def sizer(local_aws) -> str:
    lam = local_aws.client("lambda")
    name = f"limits-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=local_aws.lambda_role(),
        Handler="app.handler",
        Code={"ZipFile": lambda_zip(HANDLER)},
        Timeout=30,
        MemorySize=512,
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    return name


def _string_payload(total: int) -> bytes:
    """A JSON string of exactly ``total`` bytes."""
    return b'"' + b"a" * (total - 2) + b'"'


def _code(info) -> tuple[str, int]:
    return info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_a_request_of_exactly_6291456_bytes_runs_and_one_byte_more_is_too_large(local_aws, sizer):
    lam = local_aws.client("lambda")
    response = lam.invoke(FunctionName=sizer, Payload=_string_payload(6291456))
    assert "FunctionError" not in response and json.loads(response["Payload"].read()) == 6291454
    with pytest.raises(ClientError) as info:
        lam.invoke(FunctionName=sizer, Payload=_string_payload(6291457))
    assert _code(info) == ("RequestEntityTooLargeException", 413)
    assert "Request must be smaller than 6291456 bytes for the InvokeFunction operation" in str(info.value)


def test_a_200_mb_request_is_refused_without_raising_server_memory(local_aws, sizer):
    pid = server.status(local_aws.state_dir)["pid"]
    before = _peak_rss_kb(pid)
    status, body = _post_streamed(
        f"{local_aws.url}/2015-03-31/functions/{sizer}/invocations", 200 * 1024 * 1024
    )
    assert status == 413 and "Request must be smaller than 6291456 bytes" in json.loads(body)["message"]
    grown_mb = (_peak_rss_kb(pid) - before) / 1024
    assert grown_mb < 50, f"the server's peak memory grew by {grown_mb:.0f} MB"


def _post_chunked(url: str, parts: list[bytes]) -> tuple[int, bytes]:
    split = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(split.hostname, split.port, timeout=120)
    conn.request("POST", split.path, body=iter(parts), encode_chunked=True)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body


def test_a_chunked_request_without_content_length_is_held_to_the_same_limit(local_aws, sizer):
    url = f"{local_aws.url}/2015-03-31/functions/{sizer}/invocations"
    status, body = _post_chunked(url, [b'"', b"a" * 1000, b'"'])
    assert (status, json.loads(body)) == (200, 1000)
    status, body = _post_chunked(url, [b'"'] + [b"a" * (1 << 20)] * 7 + [b'"'])
    assert status == 413 and json.loads(body)["message"].startswith("Request must be smaller than 6291456")


def test_an_event_request_over_1_mb_is_too_large(local_aws, sizer):
    lam = local_aws.client("lambda")
    accepted = lam.invoke(FunctionName=sizer, InvocationType="Event", Payload=_string_payload(1048576))
    assert accepted["StatusCode"] == 202
    with pytest.raises(ClientError) as info:
        lam.invoke(FunctionName=sizer, InvocationType="Event", Payload=_string_payload(1048577))
    assert _code(info) == ("RequestEntityTooLargeException", 413)
    assert "1048577 byte payload is too large for the Event invocation type (limit 1048576 bytes)" in str(
        info.value
    )


def test_the_connection_still_works_after_a_refused_request(local_aws, sizer):
    lam = local_aws.client("lambda")
    for _ in range(2):
        with pytest.raises(ClientError):
            lam.invoke(FunctionName=sizer, Payload=_string_payload(7_000_000))
        assert lam.invoke(FunctionName=sizer, Payload=b'"abc"')["StatusCode"] == 200


@pytest.mark.parametrize(
    "body", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000], ids=["list", "dict"]
)
def test_deeply_nested_json_is_invalid_request_content_not_a_server_error(local_aws, sizer, body):
    with pytest.raises(ClientError) as info:
        local_aws.client("lambda").invoke(FunctionName=sizer, Payload=body)
    assert _code(info) == ("InvalidRequestContentException", 400)


def test_a_body_that_is_not_json_is_invalid_request_content(local_aws, sizer):
    with pytest.raises(ClientError) as info:
        local_aws.client("lambda").invoke(FunctionName=sizer, Payload=b"not json")
    assert _code(info) == ("InvalidRequestContentException", 400)


def test_a_response_over_6_mb_is_function_response_size_too_large(local_aws, sizer):
    lam = local_aws.client("lambda")
    response = lam.invoke(FunctionName=sizer, Payload=json.dumps({"respond": 6_300_000}))
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read()) == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }
    # 6291556 bytes in all: the JSON string's two quotes plus 6291554 characters.
    fits = lam.invoke(FunctionName=sizer, Payload=json.dumps({"respond": 6291554}))
    assert "FunctionError" not in fits and len(fits["Payload"].read()) == 6291556


def test_account_settings_answer_over_plain_http_as_json(local_aws):
    request = urllib.request.Request(
        local_aws.url + "/2016-08-19/account-settings/",
        headers={
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/lambda/aws4_request"
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        doc = json.loads(answer.read())
    assert doc["AccountLimit"]["CodeSizeZipped"] == 52428800
