"""What the engine keeps between invocations never hides a change: its cached function specs are dropped
by every Lambda or CloudFormation write, and its buffered log lines are in CloudWatch Logs as soon as
Invoke returns (see localaws/lambda_engine/function_spec.py and localaws/logstreams.py).
"""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.local.test_lambda_engine import ECHO, create_function, invoke, unique

VARIABLE = "import os\n\ndef handler(event, context):\n    return os.environ.get('A')\n"


def test_an_alias_move_and_reserved_concurrency_are_seen_by_the_next_invocation(local_aws):
    lam = local_aws.client("lambda")
    name = create_function(local_aws, ECHO)
    versions = []
    for greeting in ("one", "two"):
        lam.update_function_configuration(
            FunctionName=name, Environment={"Variables": {"GREETING": greeting}}
        )
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
        versions.append(lam.publish_version(FunctionName=name)["Version"])
        lam.get_waiter("published_version_active").wait(
            FunctionName=name, Qualifier=versions[-1], WaiterConfig={"Delay": 0.1}
        )
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=versions[0])
    response, payload, _ = invoke(local_aws, name, Qualifier="live")
    assert (response["ExecutedVersion"], payload["env"]["GREETING"]) == (versions[0], "one")
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion=versions[1])
    response, payload, _ = invoke(local_aws, name, Qualifier="live")
    assert (response["ExecutedVersion"], payload["env"]["GREETING"]) == (versions[1], "two")

    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as info:
        invoke(local_aws, name, Qualifier="live")
    assert info.value.response["Error"]["Code"] == "TooManyRequestsException"
    lam.delete_function_concurrency(FunctionName=name)
    assert invoke(local_aws, name, Qualifier="live")[1]["env"]["GREETING"] == "two"


def test_a_cloudformation_update_is_seen_by_the_next_invocation(local_aws):
    cfn, lam = local_aws.client("cloudformation"), local_aws.client("lambda")
    stack = unique("cache-stack")

    def template(value: str) -> str:
        function = {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.12",
                "Handler": "index.handler",
                "Role": local_aws.lambda_role(),
                "Code": {"ZipFile": VARIABLE},
                "Environment": {"Variables": {"A": value}},
            },
        }
        return json.dumps({"Resources": {"Fn": function}, "Outputs": {"Name": {"Value": {"Ref": "Fn"}}}})

    cfn.create_stack(StackName=stack, TemplateBody=template("1"))
    try:
        outputs = cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
        name = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "Name")
        assert json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()) == "1"
        cfn.update_stack(StackName=stack, TemplateBody=template("2"))
        assert json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()) == "2"
    finally:
        cfn.delete_stack(StackName=stack)


def test_an_invocations_log_lines_are_in_cloudwatch_as_soon_as_invoke_returns(local_aws):
    name = create_function(local_aws, ECHO)
    logs = local_aws.client("logs")
    for _ in range(5):
        say = uuid.uuid4().hex
        _, payload, report = invoke(local_aws, name, {"say": say})
        request_id = payload["request_id"]
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern=f'"{request_id}"')
        messages = [e["message"].split("\t")[0].rstrip() for e in events["events"]]
        assert messages == [
            f"START RequestId: {request_id} Version: $LATEST",
            f"END RequestId: {request_id}",
            f"REPORT RequestId: {request_id}",
        ]
        stream = logs.get_log_events(
            logGroupName=f"/aws/lambda/{name}", logStreamName=payload["env_id"], startFromHead=True
        )
        lines = [e["message"].rstrip("\n") for e in stream["events"]]
        assert lines[-3:-1] == [f"echo {say}", f"END RequestId: {request_id}"]
        assert lines[-1].startswith(f"REPORT RequestId: {request_id}")
        assert report.request_id == request_id
