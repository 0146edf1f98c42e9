"""The local HTTP API: quick create, its loopback ApiEndpoint, and requests turned into payload 2.0 events.

Event building and response mapping are checked in-process; the endpoint and the quick-create
resources through the server (see ``localaws/http_api.py`` and
``localaws/patches/apigatewayv2.py``); the round trip through a real function once the Lambda
engine is in.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid

import pytest
from werkzeug.test import EnvironBuilder

from localaws import http_api
from tests.conftest import lambda_zip

ECHO = """\
import base64, json


def handler(event, context):
    if event.get("rawPath") == "/fail":
        raise RuntimeError("asked to fail")
    if event.get("rawPath") == "/plain":
        return {"plain": True}
    if event.get("rawPath") == "/png":
        png = base64.b64encode(b"\\x89PNG\\r\\n\\x1a\\n").decode()
        return {"statusCode": 201, "headers": {"content-type": "image/png"}, "body": png, "isBase64Encoded": True}
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}
"""


def request(method: str = "GET", path: str = "/", **kwargs):
    return EnvironBuilder(method=method, path=path, **kwargs).get_request()


def event_for(req, path: str = "/") -> dict:
    return http_api.build_event(req, path, "abc123", "123456789012", "$default", {})


# --- events ------------------------------------------------------------------------------------------


def test_event_has_the_payload_2_0_fields_with_lower_case_headers_and_comma_joined_query_values():
    req = request(
        "GET",
        "/items",
        query_string="a=1&a=2&b=x",
        headers=[("X-Custom", "one"), ("User-Agent", "tester/1")],
        environ_base={"REMOTE_ADDR": "192.0.2.7"},
    )
    event = event_for(req, "/items")
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert (event["rawPath"], event["rawQueryString"]) == ("/items", "a=1&a=2&b=x")
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x"}
    assert event["headers"]["x-custom"] == "one"
    assert all(name == name.lower() for name in event["headers"])
    context = event["requestContext"]
    assert context["http"] == {
        "method": "GET",
        "path": "/items",
        "protocol": "HTTP/1.1",
        "sourceIp": "192.0.2.7",
        "userAgent": "tester/1",
    }
    assert (context["apiId"], context["stage"]) == ("abc123", "$default")
    assert (
        context["requestId"] and isinstance(context["timeEpoch"], int) and context["time"].endswith("+0000")
    )
    assert "body" not in event and event["isBase64Encoded"] is False


def test_json_body_is_passed_as_text_and_binary_body_as_base64():
    text = event_for(request("POST", data=b'{"top_k": 3}', content_type="application/json"))
    assert (text["body"], text["isBase64Encoded"]) == ('{"top_k": 3}', False)
    jpeg = b"\xff\xd8\xff\xe0binary"
    binary = event_for(request("POST", data=jpeg, content_type="image/jpeg"))
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == jpeg


def test_cookies_move_from_the_headers_to_the_cookies_field():
    event = event_for(request(headers=[("Cookie", "a=1; b=2")]))
    assert event["cookies"] == ["a=1", "b=2"] and "cookie" not in event["headers"]


# --- responses ---------------------------------------------------------------------------------------


def test_a_status_code_answer_is_the_response_and_a_base64_body_is_decoded():
    answer = {
        "statusCode": 201,
        "headers": {"content-type": "image/png"},
        "body": "iVBORw==",
        "isBase64Encoded": True,
    }
    status, headers, body = http_api.proxy_response(json.dumps(answer).encode())
    assert (status, body) == (201, base64.b64decode("iVBORw=="))
    assert ("content-type", "image/png") in headers


def test_any_other_json_answer_is_a_200_json_body():
    status, headers, body = http_api.proxy_response(b'{"label": "military uniform"}')
    assert (status, json.loads(body)) == (200, {"label": "military uniform"})
    assert ("Content-Type", "application/json") in headers


def test_an_answer_that_is_not_json_is_an_internal_server_error():
    status, _, body = http_api.proxy_response(b"not json")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})


# --- the endpoint and quick create on the server -----------------------------------------------------


@pytest.fixture(scope="module")
def echo_function(local_aws) -> str:
    """The ARN of a function that echoes its event as JSON (and fails on /fail)."""
    lam = local_aws.client("lambda")
    role = local_aws.lambda_role()
    name = f"http-echo-{uuid.uuid4().hex[:8]}"
    arn = lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Handler="app.handler",
        Role=role,
        Code={"ZipFile": lambda_zip(ECHO)},
        Timeout=10,
    )["FunctionArn"]
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})  # as on AWS
    return arn


@pytest.fixture
def http_stack(local_aws, echo_function):
    """An HTTP API quick-created by CloudFormation in front of the echo function; yields its outputs."""
    cfn = local_aws.client("cloudformation")
    name = f"http-api-{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {
            "Api": {
                "Type": "AWS::ApiGatewayV2::Api",
                "Properties": {
                    "Name": name,
                    "ProtocolType": "HTTP",
                    "Target": echo_function,
                    "Tags": {"Name": name},
                },
            }
        },
        "Outputs": {
            "Endpoint": {"Value": {"Fn::GetAtt": ["Api", "ApiEndpoint"]}},
            "ApiId": {"Value": {"Fn::GetAtt": ["Api", "ApiId"]}},
            "Ref": {"Value": {"Ref": "Api"}},
        },
    }
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    yield {"StackName": name} | {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    cfn.delete_stack(StackName=name)


def fetch(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def test_cloudformation_api_has_a_loopback_endpoint_served_by_the_local_server(http_stack, local_aws):
    assert http_stack["Ref"] == http_stack["ApiId"]
    assert http_stack["Endpoint"] == f"{local_aws.url}/_api/{http_stack['ApiId']}"
    api = local_aws.client("apigatewayv2").get_api(ApiId=http_stack["ApiId"])
    assert (api["ApiEndpoint"], api["ProtocolType"]) == (http_stack["Endpoint"], "HTTP")
    assert api["Tags"] == {"Name": http_stack["StackName"]}


def test_quick_create_makes_a_lambda_proxy_route_and_an_auto_deployed_default_stage(
    http_stack, local_aws, echo_function
):
    client = local_aws.client("apigatewayv2")
    api_id = http_stack["ApiId"]
    [integration] = client.get_integrations(ApiId=api_id)["Items"]
    assert (
        integration["IntegrationType"],
        integration["IntegrationUri"],
        integration["PayloadFormatVersion"],
    ) == (
        "AWS_PROXY",
        echo_function,
        "2.0",
    )
    [route] = client.get_routes(ApiId=api_id)["Items"]
    assert (route["RouteKey"], route["Target"]) == (
        "$default",
        f"integrations/{integration['IntegrationId']}",
    )
    [stage] = client.get_stages(ApiId=api_id)["Items"]
    assert (stage["StageName"], stage["AutoDeploy"]) == ("$default", True)


def test_quick_create_through_the_api_takes_target_and_route_key(local_aws, echo_function):
    client = local_aws.client("apigatewayv2")
    api = client.create_api(Name="quick", ProtocolType="HTTP", Target=echo_function, RouteKey="POST /predict")
    try:
        assert [r["RouteKey"] for r in client.get_routes(ApiId=api["ApiId"])["Items"]] == ["POST /predict"]
        assert api["ApiEndpoint"] == f"{local_aws.url}/_api/{api['ApiId']}"
    finally:
        client.delete_api(ApiId=api["ApiId"])


def test_unknown_api_is_not_found_and_the_api_is_gone_with_its_stack(http_stack, local_aws):
    status, _, body = fetch(f"{local_aws.url}/_api/nosuchapi/")
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})
    local_aws.client("cloudformation").delete_stack(StackName=http_stack["StackName"])
    status, _, _ = fetch(http_stack["Endpoint"] + "/")
    assert status == 404


# --- round trip through a real function -------------------------------


def test_json_post_reaches_the_function_as_a_2_0_event(http_stack):
    status, headers, body = fetch(
        http_stack["Endpoint"] + "/predict?top_k=3&top_k=5",
        data=b'{"image": "aGk="}',
        headers={"Content-Type": "application/json", "X-Trace": "t1"},
    )
    assert status == 200 and headers["content-type"] == "application/json"
    event = json.loads(body)
    assert (event["rawPath"], event["rawQueryString"]) == ("/predict", "top_k=3&top_k=5")
    assert event["queryStringParameters"] == {"top_k": "3,5"}
    assert (event["body"], event["isBase64Encoded"]) == ('{"image": "aGk="}', False)
    assert event["headers"]["x-trace"] == "t1"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["apiId"] == http_stack["ApiId"]


def test_binary_post_arrives_base64_encoded_and_a_base64_answer_is_decoded(http_stack):
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF"
    status, _, body = fetch(http_stack["Endpoint"] + "/", data=jpeg, headers={"Content-Type": "image/jpeg"})
    event = json.loads(body)
    assert status == 200 and event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == jpeg
    status, headers, body = fetch(http_stack["Endpoint"] + "/png")
    assert (status, headers["content-type"], body) == (201, "image/png", b"\x89PNG\r\n\x1a\n")


def test_a_plain_answer_is_json_and_a_function_error_is_internal_server_error(http_stack):
    status, headers, body = fetch(http_stack["Endpoint"] + "/plain")
    assert (status, headers["content-type"], json.loads(body)) == (200, "application/json", {"plain": True})
    status, _, body = fetch(http_stack["Endpoint"] + "/fail")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    status, _, _ = fetch(http_stack["Endpoint"] + "/plain")
    assert status == 200
