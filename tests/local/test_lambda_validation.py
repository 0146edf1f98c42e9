"""Lambda's control plane validates as AWS does: limits, reserved keys, code sizes, runtimes, concurrency.

See ``localaws/patches/lambda_validation.py``; each test fails on stock moto, which accepts all of it.
"""

from __future__ import annotations

import io
import json
import os
import uuid
import zipfile

import botocore.config
import pytest
from botocore.exceptions import ClientError

from localaws import server
from tests.conftest import lambda_zip, start_local_aws

HANDLER = "def handler(event, context):\n    return 'ok'\n"


def _name() -> str:
    return f"valid-{uuid.uuid4().hex[:8]}"


def _create(local_aws, client=None, **kwargs):
    lam = client or local_aws.client("lambda")
    kwargs.setdefault("Runtime", "python3.12")
    kwargs.setdefault("Code", {"ZipFile": lambda_zip(HANDLER)})
    return lam.create_function(
        FunctionName=kwargs.pop("FunctionName", _name()),
        Role=local_aws.lambda_role(),
        Handler="app.handler",
        **kwargs,
    )


def _unvalidated(local_aws):
    """A client that sends what botocore would refuse on its own (AWS's server-side answer is under test)."""
    return local_aws.client("lambda", config=botocore.config.Config(parameter_validation=False))


def _error(info) -> tuple[str, str, int]:
    error = info.value.response["Error"]
    return error["Code"], error["Message"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize(
    ("kwargs", "field", "bound"),
    [
        ({"MemorySize": 10241}, "memorySize", "less than or equal to 10240"),
        ({"MemorySize": 64}, "memorySize", "greater than or equal to 128"),
        ({"Timeout": 901}, "timeout", "less than or equal to 900"),
        ({"Timeout": 0}, "timeout", "greater than or equal to 1"),
        ({"EphemeralStorage": {"Size": 10241}}, "ephemeralStorage.size", "less than or equal to 10240"),
        ({"EphemeralStorage": {"Size": 256}}, "ephemeralStorage.size", "greater than or equal to 512"),
    ],
    ids=["memory-high", "memory-low", "timeout-high", "timeout-low", "storage-high", "storage-low"],
)
def test_out_of_range_settings_are_refused_on_create_and_update(local_aws, kwargs, field, bound):
    lam = _unvalidated(local_aws)
    with pytest.raises(ClientError) as info:
        _create(local_aws, lam, **kwargs)
    code, message, status = _error(info)
    assert (code, status) == ("ValidationException", 400)
    assert f"at '{field}' failed to satisfy constraint: Member must have value {bound}" in message
    name = _create(local_aws)["FunctionName"]
    local_aws.client("lambda").get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2}
    )
    with pytest.raises(ClientError) as info:
        lam.update_function_configuration(FunctionName=name, **kwargs)
    assert _error(info)[0] == "ValidationException"
    assert local_aws.client("lambda").get_function_configuration(FunctionName=name)["MemorySize"] == 128


def test_the_largest_and_smallest_allowed_settings_are_accepted(local_aws):
    config = _create(local_aws, MemorySize=10240, Timeout=900, EphemeralStorage={"Size": 10240})
    assert (config["MemorySize"], config["Timeout"], config["EphemeralStorage"]) == (
        10240,
        900,
        {"Size": 10240},
    )
    config = _create(local_aws, MemorySize=128, Timeout=1, EphemeralStorage={"Size": 512})
    assert (config["MemorySize"], config["Timeout"]) == (128, 1)


@pytest.mark.parametrize("key", ["AWS_REGION", "_HANDLER", "AWS_LAMBDA_FUNCTION_NAME", "AWS_ACCESS_KEY_ID"])
def test_reserved_environment_keys_are_refused(local_aws, key):
    with pytest.raises(ClientError) as info:
        _create(local_aws, Environment={"Variables": {"MINE": "1", key: "x"}})
    code, message, _ = _error(info)
    assert code == "InvalidParameterValueException"
    assert "reserved keys" in message and message.endswith(f"Reserved keys used in this request: {key}")


def test_environment_over_4_kb_is_refused_and_4_kb_accepted(local_aws):
    # {"BIG":"..."} is 10 bytes of JSON around the value: 4086 + 10 = 4096 bytes exactly.
    assert _create(local_aws, Environment={"Variables": {"BIG": "x" * 4086}})["Environment"]
    with pytest.raises(ClientError) as info:
        _create(local_aws, Environment={"Variables": {"BIG": "x" * 4087}})
    code, message, _ = _error(info)
    assert code == "InvalidParameterValueException" and "exceeded the 4KB limit" in message


def test_a_direct_upload_over_50_mb_is_request_entity_too_large(local_aws):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("app.py", HANDLER)
        archive.writestr("blob.bin", os.urandom(50 * 1024 * 1024))
    assert len(buffer.getvalue()) > 52428800
    with pytest.raises(ClientError) as info:
        _create(local_aws, Code={"ZipFile": buffer.getvalue()})
    code, message, status = _error(info)
    assert (code, status) == ("RequestEntityTooLargeException", 413)
    assert message == "Zipped size must be smaller than 52428800 bytes"  # Lambda's answer since late 2023


def _zip_unzipping_to(size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("app.py", HANDLER)
        with archive.open("zeros.bin", "w", force_zip64=True) as out:
            chunk = bytes(1 << 20)
            written = 0
            while written < size:
                part = chunk[: min(len(chunk), size - written)]
                out.write(part)
                written += len(part)
    return buffer.getvalue()


def test_code_over_250_mb_unzipped_is_refused_on_create_and_update(local_aws):
    too_big = _zip_unzipping_to(262144001)
    with pytest.raises(ClientError) as info:
        _create(local_aws, Code={"ZipFile": too_big})
    code, message, _ = _error(info)
    assert (
        code == "InvalidParameterValueException"
        and "Unzipped size must be smaller than 262144000 bytes" in message
    )
    lam = local_aws.client("lambda")
    name = _create(local_aws)["FunctionName"]
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2})
    with pytest.raises(ClientError) as info:
        lam.update_function_code(FunctionName=name, ZipFile=too_big)
    assert "Unzipped size" in _error(info)[1]


def test_a_file_that_is_not_a_zip_is_refused(local_aws):
    with pytest.raises(ClientError) as info:
        _create(local_aws, Code={"ZipFile": b"not a zip"})
    assert _error(info)[0] == "InvalidParameterValueException" and "Could not unzip" in _error(info)[1]


@pytest.mark.parametrize("runtime", ["python3.8", "python3.7", "python3.6"])
def test_deprecated_python_runtimes_are_refused_on_create(local_aws, runtime):
    with pytest.raises(ClientError) as info:
        _create(local_aws, Runtime=runtime)
    code, message, _ = _error(info)
    assert code == "InvalidParameterValueException"
    assert f"The runtime parameter of {runtime} is no longer supported" in message


@pytest.mark.parametrize("runtime", ["nodejs20.x", "java21", "provided.al2023"])
def test_runtimes_the_local_engine_cannot_run_are_refused_with_a_clear_message(local_aws, runtime):
    with pytest.raises(ClientError) as info:
        _create(local_aws, Runtime=runtime)
    code, message, _ = _error(info)
    assert code == "InvalidParameterValueException"
    assert f"Runtime {runtime} cannot run on the local engine" in message


def test_an_unknown_runtime_is_a_validation_error(local_aws):
    with pytest.raises(ClientError) as info:
        _create(local_aws, Runtime="python9.9")
    assert (
        _error(info)[0] == "ValidationException" and "Member must satisfy enum value set" in _error(info)[1]
    )


def test_cloudformation_functions_are_validated_too(local_aws):
    cfn = local_aws.client("cloudformation")
    name = f"valid-{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.12",
                    "Handler": "index.handler",
                    "Role": local_aws.lambda_role(),
                    "MemorySize": 20000,
                    "Code": {"ZipFile": HANDLER},
                },
            }
        }
    }
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    try:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
        reasons = [
            e.get("ResourceStatusReason", "")
            for e in cfn.describe_stack_events(StackName=name)["StackEvents"]
        ]
        assert any("memorySize" in r and "10240" in r for r in reasons), reasons
    finally:
        cfn.delete_stack(StackName=name)


def test_cloudformation_updates_are_validated_too(local_aws):
    cfn = local_aws.client("cloudformation")
    name = f"valid-{uuid.uuid4().hex[:8]}"

    def template(memory: int) -> str:
        properties = {
            "Runtime": "python3.12",
            "Handler": "index.handler",
            "Role": local_aws.lambda_role(),
            "MemorySize": memory,
            "Code": {"ZipFile": HANDLER},
        }
        return json.dumps({"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": properties}}})

    cfn.create_stack(StackName=name, TemplateBody=template(256))
    function = cfn.describe_stack_resource(StackName=name, LogicalResourceId="Fn")["StackResourceDetail"]
    lam = local_aws.client("lambda")

    def memory() -> int:
        return lam.get_function_configuration(FunctionName=function["PhysicalResourceId"])["MemorySize"]

    try:
        cfn.update_stack(StackName=name, TemplateBody=template(512))  # inline code: zipped as on create
        assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
        assert memory() == 512
        cfn.update_stack(StackName=name, TemplateBody=template(20000))
        assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
        assert memory() == 512
    finally:
        cfn.delete_stack(StackName=name)


# --- concurrency and account settings: a server of their own, so no other test's reservations count ---


@pytest.fixture(scope="module")
def account(tmp_path_factory):
    handle = start_local_aws(tmp_path_factory.mktemp("validation-account"))
    yield handle
    server.stop(handle.state_dir)


def test_reserved_concurrency_must_leave_100_unreserved_and_account_settings_tell(account):
    lam = account.client("lambda")
    settings = lam.get_account_settings()
    assert settings["AccountLimit"] == {
        "TotalCodeSize": 80530636800,
        "CodeSizeUnzipped": 262144000,
        "CodeSizeZipped": 52428800,
        "ConcurrentExecutions": 1000,
        "UnreservedConcurrentExecutions": 1000,
    }
    assert settings["AccountUsage"] == {"TotalCodeSize": 0, "FunctionCount": 0}
    first, second = _create(account), _create(account)
    with pytest.raises(ClientError) as info:
        lam.put_function_concurrency(FunctionName=first["FunctionName"], ReservedConcurrentExecutions=901)
    code, message, _ = _error(info)
    assert code == "InvalidParameterValueException" and "below its minimum value of [100]" in message
    lam.put_function_concurrency(FunctionName=first["FunctionName"], ReservedConcurrentExecutions=900)
    with pytest.raises(ClientError):
        lam.put_function_concurrency(FunctionName=second["FunctionName"], ReservedConcurrentExecutions=1)
    settings = lam.get_account_settings()
    assert settings["AccountLimit"]["UnreservedConcurrentExecutions"] == 100
    assert settings["AccountUsage"] == {
        "TotalCodeSize": first["CodeSize"] + second["CodeSize"],
        "FunctionCount": 2,
    }
    lam.put_function_concurrency(FunctionName=first["FunctionName"], ReservedConcurrentExecutions=899)
    lam.put_function_concurrency(FunctionName=second["FunctionName"], ReservedConcurrentExecutions=1)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 100
