"""The public HTTP API has a throttle: function.yaml sets it, the local AWS keeps it and enforces it.

API Gateway throttles with a token bucket (burst = bucket size, rate = refill per second) and answers
429 Too Many Requests past it: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-throttling.html
"""

from __future__ import annotations

import json
import types
import uuid

import pytest

from helpers.config import REPO_ROOT
from helpers.template_checks import load_template
from localaws.patches import apigatewayv2
from tests.local.test_http_api import echo_function, fetch  # noqa: F401 (echo_function: a fixture)

FUNCTION_YAML = REPO_ROOT / "cloudformation" / "function.yaml"


def fake_api(rate=None, burst=None):
    settings = {
        k: v for k, v in (("throttlingRateLimit", rate), ("throttlingBurstLimit", burst)) if v is not None
    }
    stage = types.SimpleNamespace(default_route_settings=settings)
    return types.SimpleNamespace(api_id=uuid.uuid4().hex, stages={"$default": stage})


def test_the_token_bucket_allows_the_burst_then_the_rate():
    api = fake_api(rate=2.0, burst=3)
    assert [apigatewayv2.admit(api, now=100.0) for _ in range(4)] == [True, True, True, False]
    assert apigatewayv2.admit(api, now=100.5)  # half a second at 2 per second: one token back
    assert not apigatewayv2.admit(api, now=100.5)
    assert [apigatewayv2.admit(api, now=200.0) for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]  # never above burst


def test_a_stage_without_a_throttle_admits_everything():
    api = fake_api()
    assert all(apigatewayv2.admit(api, now=1.0) for _ in range(100))


def test_function_yaml_throttles_the_quick_created_stage_of_its_http_api():
    template = load_template(FUNCTION_YAML)
    [override] = [
        r
        for r in template["Resources"].values()
        if r["Type"] == apigatewayv2.ManagedOverridesResource.cloudformation_type()
    ]
    assert override["Properties"]["ApiId"] == {"Ref": "HttpApi"}
    settings = override["Properties"]["Stage"]["DefaultRouteSettings"]
    rate, burst = (
        template["Parameters"][settings[key]["Ref"]]
        for key in ("ThrottlingRateLimit", "ThrottlingBurstLimit")
    )
    assert 1 <= rate["Default"] <= 50 and 1 <= burst["Default"] <= 100  # a workshop's traffic, not a bill


def throttled_template(name: str, target: str, rate: int | None, burst: int | None) -> str:
    resources = {
        "Api": {
            "Type": "AWS::ApiGatewayV2::Api",
            "Properties": {"Name": name, "ProtocolType": "HTTP", "Target": target},
        }
    }
    if rate is not None:
        resources["Throttle"] = {
            "Type": "AWS::ApiGatewayV2::ApiGatewayManagedOverrides",
            "Properties": {
                "ApiId": {"Ref": "Api"},
                "Stage": {
                    "DefaultRouteSettings": {"ThrottlingRateLimit": rate, "ThrottlingBurstLimit": burst}
                },
            },
        }
    return json.dumps(
        {
            "Resources": resources,
            "Outputs": {
                "Endpoint": {"Value": {"Fn::GetAtt": ["Api", "ApiEndpoint"]}},
                "ApiId": {"Value": {"Ref": "Api"}},
            },
        }
    )


@pytest.fixture
def throttled_api(local_aws, echo_function):  # noqa: F811
    cfn = local_aws.client("cloudformation")
    name = f"throttled-{uuid.uuid4().hex[:8]}"
    cfn.create_stack(StackName=name, TemplateBody=throttled_template(name, echo_function, 0.001, 2))
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    yield {"StackName": name, "Target": echo_function} | {
        o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]
    }
    cfn.delete_stack(StackName=name)


def test_the_overrides_set_the_default_stages_route_settings(throttled_api, local_aws):
    [stage] = local_aws.client("apigatewayv2").get_stages(ApiId=throttled_api["ApiId"])["Items"]
    assert stage["StageName"] == "$default"
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == 0.001
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 2


def test_requests_past_the_burst_get_429_too_many_requests(throttled_api):
    answers = [
        fetch(throttled_api["Endpoint"] + "/", b"{}", {"content-type": "application/json"}) for _ in range(3)
    ]
    assert [status for status, _, _ in answers] == [200, 200, 429]
    assert json.loads(answers[2][2]) == {"message": "Too Many Requests"}


def test_removing_the_overrides_restores_the_stage_defaults(throttled_api, local_aws):
    cfn = local_aws.client("cloudformation")
    name = throttled_api["StackName"]
    cfn.update_stack(
        StackName=name, TemplateBody=throttled_template(name, throttled_api["Target"], None, None)
    )
    [stage] = local_aws.client("apigatewayv2").get_stages(ApiId=throttled_api["ApiId"])["Items"]
    assert "ThrottlingRateLimit" not in stage.get("DefaultRouteSettings", {})
    statuses = [
        fetch(throttled_api["Endpoint"] + "/", b"{}", {"content-type": "application/json"})[0]
        for _ in range(4)
    ]
    assert statuses == [200] * 4
