"""Function states as AWS reports them, so that boto3's waiters are needed and really wait.

See ``localaws/patches/lambda_states.py``. A server of this module's own runs with a 2 s window
(``LOCALAWS_LAMBDA_STATE_SECONDS``), so that "immediately" is unambiguous on a loaded machine.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest
from botocore.exceptions import ClientError

from localaws import server
from tests.conftest import lambda_zip, start_local_aws

HANDLER = "def handler(event, context):\n    return 'ok'\n"
FAST = {"Delay": 0.2, "MaxAttempts": 50}


@pytest.fixture(scope="module")
def slow_states(tmp_path_factory):
    previous = os.environ.get("LOCALAWS_LAMBDA_STATE_SECONDS")
    os.environ["LOCALAWS_LAMBDA_STATE_SECONDS"] = "2.0"  # the server inherits it at start
    try:
        handle = start_local_aws(tmp_path_factory.mktemp("lambda-states"))
    finally:
        if previous is None:
            os.environ.pop("LOCALAWS_LAMBDA_STATE_SECONDS")
        else:
            os.environ["LOCALAWS_LAMBDA_STATE_SECONDS"] = previous
    yield handle
    server.stop(handle.state_dir)


def _create(handle, code: str = HANDLER, **kwargs) -> tuple[str, dict]:
    name = f"states-{uuid.uuid4().hex[:8]}"
    config = handle.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=handle.lambda_role(),
        Handler="app.handler",
        Code={"ZipFile": lambda_zip(code)},
        **kwargs,
    )
    return name, config


def _conflict(call) -> str:
    with pytest.raises(ClientError) as info:
        call()
    error = info.value.response["Error"]
    assert error["Code"] == "ResourceConflictException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    return error["Message"]


def test_a_new_function_is_pending_then_active_and_cannot_be_updated_before(slow_states):
    lam = slow_states.client("lambda")
    name, config = _create(slow_states)
    assert config["State"] == "Pending" and config["StateReason"] == "The function is being created."
    assert lam.get_function(FunctionName=name)["Configuration"]["State"] == "Pending"
    message = _conflict(lambda: lam.update_function_configuration(FunctionName=name, Timeout=10))
    assert message.endswith("The function is currently in the following state: Pending")
    _conflict(lambda: lam.publish_version(FunctionName=name))
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST)
    assert lam.get_function(FunctionName=name)["Configuration"]["State"] == "Active"
    assert lam.update_function_configuration(FunctionName=name, Timeout=10)["Timeout"] == 10


def test_an_update_is_in_progress_then_successful_and_a_second_update_needs_the_waiter(slow_states):
    lam = slow_states.client("lambda")
    name, _ = _create(slow_states)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST)
    first = lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"A": "1"}})
    assert first["LastUpdateStatus"] == "InProgress" and first["State"] == "Active"
    message = _conflict(
        lambda: lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"A": "2"}})
    )
    assert message.endswith(f"An update is in progress for resource: {first['FunctionArn']}")
    _conflict(lambda: lam.update_function_code(FunctionName=name, ZipFile=lambda_zip(HANDLER)))
    _conflict(lambda: lam.publish_version(FunctionName=name))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST)
    assert lam.get_function_configuration(FunctionName=name)["LastUpdateStatus"] == "Successful"
    second = lam.update_function_code(FunctionName=name, ZipFile=lambda_zip(HANDLER + "# v2\n"))
    assert second["LastUpdateStatus"] == "InProgress"
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST)
    assert lam.get_function_configuration(FunctionName=name)["Environment"] == {"Variables": {"A": "1"}}


def test_a_pending_function_or_version_is_not_invoked(slow_states):
    lam = slow_states.client("lambda")
    name, _ = _create(slow_states)
    message = _conflict(lambda: lam.invoke(FunctionName=name, Payload=b"{}"))
    assert message.endswith("The function is currently in the following state: Pending")
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST)
    assert lam.invoke(FunctionName=name, Payload=b"{}")["StatusCode"] == 200
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    _conflict(lambda: lam.invoke(FunctionName=name, Qualifier="live", Payload=b"{}"))
    lam.get_waiter("published_version_active").wait(FunctionName=name, Qualifier=version, WaiterConfig=FAST)
    assert lam.invoke(FunctionName=name, Qualifier="live", Payload=b"{}")["StatusCode"] == 200


def test_a_new_version_is_pending_until_ready(slow_states):
    lam = slow_states.client("lambda")
    name, _ = _create(slow_states)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST)
    version = lam.publish_version(FunctionName=name)
    assert version["State"] == "Pending" and version["Version"] == "1"
    assert lam.get_function_configuration(FunctionName=name, Qualifier="1")["State"] == "Pending"
    assert lam.get_function_configuration(FunctionName=name)["State"] == "Active"  # $LATEST stays Active
    lam.get_waiter("published_version_active").wait(FunctionName=name, Qualifier="1", WaiterConfig=FAST)
    assert lam.get_function_configuration(FunctionName=name, Qualifier="1")["State"] == "Active"


def test_cloudformation_functions_and_versions_are_active_when_the_stack_is_complete(slow_states):
    cfn, lam = slow_states.client("cloudformation"), slow_states.client("lambda")
    stack = f"states-{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.12",
                    "Handler": "index.handler",
                    "Role": slow_states.lambda_role(),
                    "Code": {"ZipFile": HANDLER},
                },
            },
            "Version": {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": {"Ref": "Fn"}}},
        },
        "Outputs": {
            "Name": {"Value": {"Ref": "Fn"}},
            "Version": {"Value": {"Fn::GetAtt": ["Version", "Version"]}},
        },
    }
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    try:
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        assert described["StackStatus"] == "CREATE_COMPLETE"
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
        config = lam.get_function_configuration(FunctionName=outputs["Name"])
        assert (config["State"], config["LastUpdateStatus"]) == ("Active", "Successful")
        assert (
            lam.get_function_configuration(FunctionName=outputs["Name"], Qualifier=outputs["Version"])[
                "State"
            ]
            == "Active"
        )
        lam.update_function_configuration(FunctionName=outputs["Name"], Timeout=7)  # no conflict: CFN is done
    finally:
        cfn.delete_stack(StackName=stack)


VERSIONED = "import os\n\nCODE = {code!r}\n\ndef handler(event, context):\n    return {{'code': CODE, 'A': os.environ.get('A')}}\n"


def _run(lam, name: str) -> dict:
    response = lam.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in response
    return json.loads(response["Payload"].read())


def _in_progress(lam, name: str) -> bool:
    return lam.get_function_configuration(FunctionName=name)["LastUpdateStatus"] == "InProgress"


def test_invocations_run_the_previous_configuration_and_code_until_the_update_is_successful(slow_states):
    lam = slow_states.client("lambda")
    name, _ = _create(slow_states, VERSIONED.format(code="v1"), Environment={"Variables": {"A": "1"}})
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST)
    assert _run(lam, name) == {"code": "v1", "A": "1"}

    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"A": "2"}})
    assert _run(lam, name) == {"code": "v1", "A": "1"}  # still the configuration from before
    assert _in_progress(lam, name), "the 2 s InProgress window ended before the invocation came back"
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST)
    assert _run(lam, name) == {"code": "v1", "A": "2"}

    lam.update_function_code(FunctionName=name, ZipFile=lambda_zip(VERSIONED.format(code="v2")))
    assert _run(lam, name) == {"code": "v1", "A": "2"}  # still the code from before
    assert _in_progress(lam, name), "the 2 s InProgress window ended before the invocation came back"
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST)
    assert _run(lam, name) == {"code": "v2", "A": "2"}
