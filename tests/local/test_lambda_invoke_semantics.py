"""Invoke as AWS answers it: the context of each invocation, faults that end an environment, long inits,
and Provisioned Concurrency that follows its alias."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.local.test_lambda_engine import create_function, invoke, tail_text, unique
from tests.local.test_lambda_engine_provisioned import wait_status

CONTEXT = """
import os

def handler(event, context):
    custom = context.client_context.custom if context.client_context else None
    return {"arn": context.invoked_function_arn, "custom": custom, "env_id": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]}
"""


def test_invoked_function_arn_is_this_invocations_qualifier(local_aws):
    lam = local_aws.client("lambda")
    name = create_function(local_aws, CONTEXT)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.get_waiter("published_version_active").wait(FunctionName=name, Qualifier=version)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    _, by_alias, _ = invoke(local_aws, name, Qualifier="live")
    _, by_version, report = invoke(local_aws, name, Qualifier=version)
    assert by_version["env_id"] == by_alias["env_id"] and report.init_duration_ms is None  # one environment
    assert by_alias["arn"].endswith(f":function:{name}:live")
    assert by_version["arn"].endswith(f":function:{name}:{version}")


def test_client_context_reaches_the_handler(local_aws):
    name = create_function(local_aws, CONTEXT)
    context = base64.b64encode(json.dumps({"custom": {"tenant": "blue"}}).encode()).decode()
    _, payload, _ = invoke(local_aws, name, ClientContext=context)
    assert payload["custom"] == {"tenant": "blue"}


SLOW = """
import os, time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
"""


def test_after_a_timeout_the_next_invocation_gets_a_new_environment(local_aws):
    name = create_function(local_aws, SLOW, Timeout=1)
    for _ in range(3):
        first = invoke(local_aws, name)[1]
        response, payload, _ = invoke(local_aws, name, {"sleep": 5})
        assert json.loads(json.dumps(payload))["errorType"] == "Sandbox.Timedout"
        response, after, report = invoke(local_aws, name)  # at once: never the environment just killed
        assert "FunctionError" not in response, after
        assert after != first and report.init_duration_ms is not None


LONG_INIT = """
import time
time.sleep(10.5)

def handler(event, context):
    return "ready"
"""


def test_an_init_past_10_s_is_reported_and_run_again_inside_the_invocation(local_aws):
    name = create_function(local_aws, LONG_INIT, Timeout=30)
    response, payload, report = invoke(local_aws, name)
    assert payload == "ready" and "FunctionError" not in response
    lines = tail_text(response).splitlines()
    init_report = next(line for line in lines if line.startswith("INIT_REPORT"))
    assert "Phase: init" in init_report and "Status: timeout" in init_report
    assert report.init_duration_ms is None  # no Init Duration: the init ran again inside Duration
    assert report.duration_ms >= 10_000


def test_provisioned_concurrency_follows_its_alias_to_a_new_version(local_aws):
    lam = local_aws.client("lambda")
    name = create_function(
        local_aws,
        "import os\n\ndef handler(event, context):\n    return os.environ['AWS_LAMBDA_INITIALIZATION_TYPE']\n",
    )
    v1 = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=v1)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1
    )
    assert wait_status(lam, name, "live")["Status"] == "READY"
    lam.update_function_configuration(FunctionName=name, Description=unique("v2"))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    v2 = lam.publish_version(FunctionName=name)["Version"]
    lam.get_waiter("published_version_active").wait(FunctionName=name, Qualifier=v2)
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion=v2)
    assert wait_status(lam, name, "live")["Status"] == "READY"
    response, payload, report = invoke(local_aws, name, Qualifier="live")
    assert response["ExecutedVersion"] == v2
    assert payload == "provisioned-concurrency" and report.init_duration_ms is None


def test_a_weighted_alias_routes_invocations_and_says_which_version_ran(local_aws):
    lam = local_aws.client("lambda")
    name = create_function(
        local_aws,
        "import os\n\ndef handler(event, context):\n    return os.environ['AWS_LAMBDA_FUNCTION_VERSION']\n",
    )
    versions = []
    for description in ("one", "two"):
        lam.update_function_configuration(FunctionName=name, Description=description)
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        versions.append(lam.publish_version(FunctionName=name)["Version"])
        lam.get_waiter("published_version_active").wait(FunctionName=name, Qualifier=versions[-1])
    lam.create_alias(
        FunctionName=name,
        Name="canary",
        FunctionVersion=versions[0],
        RoutingConfig={"AdditionalVersionWeights": {versions[1]: 0.5}},
    )
    executed = []
    for _ in range(24):
        response = lam.invoke(FunctionName=name, Qualifier="canary", Payload=b"{}")
        assert json.loads(response["Payload"].read()) == response["ExecutedVersion"]
        executed.append(response["ExecutedVersion"])
    assert set(executed) == set(versions)  # 24 draws at 50 %: both versions run (p of failing < 1e-6)


def test_provisioned_concurrency_that_cannot_be_allocated_fails_with_a_reason(own_local_aws):
    """A full disk: the code cannot be extracted, so provisioning ends FAILED, never IN_PROGRESS forever."""
    import os
    import subprocess

    import pytest

    from tests.conftest import lambda_zip

    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tiny file system as the code cache")
    code_dir = Path(own_local_aws.state_dir).resolve() / "lambda" / "code"
    code_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(code_dir)], check=True)
    try:
        lam = own_local_aws.client("lambda")
        files = {
            "app.py": "def handler(event, context):\n    return 1\n",
            "blob.txt": os.urandom(200_000).hex(),
        }
        name = unique("full")
        lam.create_function(
            FunctionName=name, Runtime="python3.12", Role=own_local_aws.lambda_role(), Handler="app.handler",
            Code={"ZipFile": lambda_zip(files)},
        )  # fmt: skip
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
        version = lam.publish_version(FunctionName=name)["Version"]
        lam.get_waiter("published_version_active").wait(FunctionName=name, Qualifier=version)
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
        )
        config = wait_status(lam, name, version)
        assert config["Status"] == "FAILED", config
        assert "No space left on device" in config["StatusReason"]
    finally:
        subprocess.run(["umount", "-l", str(code_dir)], check=False)
