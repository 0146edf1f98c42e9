"""Bad input gets the service's modelled error, never an HTML page (issue 23, item 9).

Each case is one the audit found answered with an HTML 500 (or passed through): sent as an attacker
would, over raw HTTP or boto3, and checked as boto3 reads it (the error code botocore parses from the
service's own format). See ``localaws/guard.py``, ``localaws/limits.py`` and ``localaws/http_api.py``.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import urllib.parse
import uuid

import botocore.session
import pytest
from botocore.exceptions import ClientError

from tests.conftest import lambda_zip
from tests.local.test_http_api_limits import _api_in_front_of

DEEP = b"[" * 100_000 + b"]" * 100_000


def signed(service: str) -> str:
    return f"AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"


def send(url: str, method: str, path: str, body: bytes = b"", headers: dict | None = None, chunked=False):
    """(status, headers with lower-case names, body) of one raw request."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    if chunked:
        conn.request(method, path, body=iter([body[i : i + (1 << 20)] for i in range(0, len(body), 1 << 20)]),
                     headers=headers or {}, encode_chunked=True)  # fmt: skip
    else:
        conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def parsed_error(service: str, operation: str, status: int, headers: dict, body: bytes) -> dict:
    """The error as boto3 parses it (a ResponseParserError if the body is not the service's format)."""
    model = botocore.session.get_session().get_service_model(service)
    parser = botocore.parsers.create_parser(model.metadata["protocol"])
    op = model.operation_model(operation)
    return parser.parse({"status_code": status, "headers": headers, "body": body}, op.output_shape)["Error"]


@pytest.mark.parametrize(
    ("service", "signing", "operation", "method", "path", "extra", "code"),
    [
        ("lambda", "lambda", "CreateFunction", "POST", "/2015-03-31/functions", {}, "InvalidRequestContentException"),
        ("lambda", "lambda", "UpdateFunctionConfiguration", "PUT", "/2015-03-31/functions/f/configuration", {},
         "InvalidRequestContentException"),
        ("lambda", "lambda", "PutProvisionedConcurrencyConfig", "PUT",
         "/2019-09-30/functions/f/provisioned-concurrency?Qualifier=1", {}, "InvalidRequestContentException"),
        ("logs", "logs", "CreateLogGroup", "POST", "/", {"X-Amz-Target": "Logs_20140328.CreateLogGroup"},
         "SerializationException"),
        ("sagemaker", "sagemaker", "CreateEndpoint", "POST", "/", {"X-Amz-Target": "SageMaker.CreateEndpoint"},
         "SerializationException"),
        ("apigatewayv2", "apigateway", "CreateApi", "POST", "/v2/apis", {}, "BadRequestException"),
    ],
)  # fmt: skip
def test_json_nested_100000_deep_is_the_services_modelled_400(
    local_aws, service, signing, operation, method, path, extra, code
):
    content_type = "application/x-amz-json-1.1" if extra else "application/json"  # json or rest-json
    headers = {"Authorization": signed(signing), "Content-Type": content_type, **extra}
    status, reply_headers, body = send(local_aws.url, method, path, DEEP, headers)
    assert status == 400 and "html" not in reply_headers.get("content-type", "")
    assert parsed_error(service, operation, status, reply_headers, body)["Code"] == code


def test_an_unknown_path_is_unknown_operation_not_an_html_page(local_aws):
    status, headers, body = send(
        local_aws.url, "GET", "/2015-03-31/nothing/here", headers={"Authorization": signed("lambda")}
    )
    assert status == 404 and headers["x-amzn-errortype"] == "UnknownOperationException"
    assert json.loads(body)["message"] == "No lambda operation answers GET /2015-03-31/nothing/here."


def test_an_operation_moto_does_not_emulate_says_so_in_the_services_format(local_aws):
    with pytest.raises(ClientError) as info:
        local_aws.client("lambda").get_runtime_management_config(FunctionName="any")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert info.value.response["Error"] == {
        "Code": "NotImplemented",
        "Message": "The local AWS does not emulate GetRuntimeManagementConfig "
        "(GET /2021-07-20/functions/any/runtime-management-config).",
    }


def test_update_stage_with_default_route_settings_applies_the_throttle(local_aws):
    apis = local_aws.client("apigatewayv2")
    endpoint, cleanup = _api_in_front_of(local_aws, "def handler(event, context):\n    return 'ok'\n")
    api_id = endpoint.rsplit("/", 1)[-1]
    try:
        stage = apis.update_stage(
            ApiId=api_id,
            StageName="$default",
            DefaultRouteSettings={"ThrottlingBurstLimit": 1, "ThrottlingRateLimit": 0.01},
        )
        assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 1
        assert (
            apis.get_stage(ApiId=api_id, StageName="$default")["DefaultRouteSettings"]["ThrottlingRateLimit"]
            == 0.01
        )
        statuses = [send(endpoint, "GET", urllib.parse.urlsplit(endpoint).path + "/")[0] for _ in range(3)]
        assert statuses[0] == 200 and statuses[1:] == [429, 429]
        with pytest.raises(ClientError) as info:
            apis.update_stage(ApiId=api_id, StageName="nope", Description="x")
        assert info.value.response["Error"]["Code"] == "NotFoundException"
    finally:
        cleanup()


@pytest.fixture(scope="module")
def echo_api(local_aws):
    code = "import json\n\ndef handler(event, context):\n    return json.loads(event.get('body') or '{}').get('answer', 'ok')\n"
    endpoint, cleanup = _api_in_front_of(local_aws, code)
    yield endpoint
    cleanup()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_11_mb_body_to_the_http_api_is_413_chunked_or_not(echo_api, chunked):
    path = urllib.parse.urlsplit(echo_api).path + "/"
    status, headers, body = send(echo_api, "POST", path, b"x" * (11 << 20), chunked=chunked)
    assert (status, json.loads(body)) == (413, {"message": "Request Entity Too Large"})
    assert send(echo_api, "POST", path, b"{}", {"Content-Type": "application/json"})[0] == 200


@pytest.mark.parametrize("status_code", [999, 42, -1, "abc"])
def test_a_status_code_http_cannot_carry_is_api_gateways_500(echo_api, status_code):
    path = urllib.parse.urlsplit(echo_api).path + "/"
    answer = json.dumps({"answer": {"statusCode": status_code, "body": "hi"}}).encode()
    status, _, body = send(echo_api, "POST", path, answer, {"Content-Type": "application/json"})
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})


def test_an_invoke_on_a_full_disk_is_lambdas_service_exception(own_local_aws):
    if os.geteuid() != 0:
        pytest.skip("filling a disk here means mounting a small tmpfs, which needs root")
    local_aws = own_local_aws  # its code cache is covered by a full disk for a moment
    lam = local_aws.client("lambda")
    name = f"fulldisk-{uuid.uuid4().hex[:8]}"
    code = {"app.py": "def handler(event, context):\n    return 1\n", "data.bin": "z" * (2 << 20)}
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=local_aws.lambda_role(), Handler="app.handler",
        Code={"ZipFile": lambda_zip(code)},
    )  # fmt: skip
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    code_cache = local_aws.state_dir / "lambda" / "code"
    code_cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(code_cache)], check=True)
    try:
        with pytest.raises(ClientError) as info:  # its code cannot be unpacked: there is no room
            lam.invoke(FunctionName=name, Payload=b"{}")
    finally:
        subprocess.run(["umount", "-l", str(code_cache)], check=True)
    error = info.value.response["Error"]
    assert (info.value.response["ResponseMetadata"]["HTTPStatusCode"], error["Code"]) == (
        500,
        "ServiceException",
    )
    assert "disk is full" in error["Message"] or "No space left" in error["Message"]
    assert lam.invoke(FunctionName=name, Payload=b"{}")["StatusCode"] == 200  # room again: it runs
