"""Provisioned Concurrency in the local engine, and no environment process outliving what started it."""

from __future__ import annotations

import threading
import time

import pytest

from localaws import server
from tests.conftest import start_local_aws
from tests.local.test_lambda_engine import ECHO, create_function, environment_pids, invoke, wait_for


def wait_status(lam, name: str, qualifier: str, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        config = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        if config["Status"] != "IN_PROGRESS" or time.monotonic() > deadline:
            return config
        time.sleep(0.1)


@pytest.fixture(scope="module")
def provisioned(local_aws) -> str:
    """A function whose alias ``live`` has 2 provisioned environments."""
    lam = local_aws.client("lambda")
    name = create_function(local_aws, ECHO)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    put = lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=2
    )
    assert put["Status"] == "IN_PROGRESS" and put["RequestedProvisionedConcurrentExecutions"] == 2
    return name


def test_provisioned_alias_becomes_ready(local_aws, provisioned):
    config = wait_status(local_aws.client("lambda"), provisioned, "live")
    assert config["Status"] == "READY"
    assert (
        config["AvailableProvisionedConcurrentExecutions"]
        == config["AllocatedProvisionedConcurrentExecutions"]
        == 2
    )
    listed = local_aws.client("lambda").list_provisioned_concurrency_configs(FunctionName=provisioned)
    assert [c["FunctionArn"].rsplit(":", 1)[-1] for c in listed["ProvisionedConcurrencyConfigs"]] == ["live"]


def test_provisioned_alias_invocations_have_no_init_duration(local_aws, provisioned):
    wait_status(local_aws.client("lambda"), provisioned, "live")
    response, payload, report = invoke(local_aws, provisioned, Qualifier="live")
    assert payload["initialization_type"] == "provisioned-concurrency"
    assert report.init_duration_ms is None
    assert response["ExecutedVersion"] == "1"
    assert payload["env"]["AWS_LAMBDA_FUNCTION_VERSION"] == "1"


def test_invocations_beyond_provisioned_spill_over_to_on_demand(local_aws, provisioned):
    wait_status(local_aws.client("lambda"), provisioned, "live")
    results = []

    def call():
        _, payload, report = invoke(local_aws, provisioned, {"sleep": 0.8}, Qualifier="live")
        results.append((payload["initialization_type"], report.init_duration_ms is None))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [
        ("on-demand", False),
        ("provisioned-concurrency", True),
        ("provisioned-concurrency", True),
    ]


def test_provisioned_concurrency_on_latest_is_invalid(local_aws, provisioned):
    lam = local_aws.client("lambda")
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.put_provisioned_concurrency_config(
            FunctionName=provisioned, Qualifier="$LATEST", ProvisionedConcurrentExecutions=1
        )


def test_missing_config_and_missing_function_raise_modelled_errors(local_aws, provisioned):
    lam = local_aws.client("lambda")
    with pytest.raises(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        lam.get_provisioned_concurrency_config(FunctionName=provisioned, Qualifier="1")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_provisioned_concurrency_config(FunctionName="no-such-function", Qualifier="1")


def test_failed_init_makes_provisioning_failed_with_a_reason(local_aws):
    lam = local_aws.client("lambda")
    name = create_function(local_aws, "import not_a_module_anywhere\n")
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    config = wait_status(lam, name, version)
    assert config["Status"] == "FAILED"
    assert "Runtime.ImportModuleError" in config["StatusReason"]


def test_removing_provisioned_concurrency_then_deleting_the_function_ends_its_processes(own_local_aws):
    lam = own_local_aws.client("lambda")
    name = create_function(own_local_aws, ECHO)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=2
    )
    assert wait_status(lam, name, version)["Status"] == "READY"
    invoke(own_local_aws, name)  # plus one on-demand environment on $LATEST
    assert len(environment_pids(own_local_aws.state_dir)) == 3
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    assert wait_for(lambda: len(environment_pids(own_local_aws.state_dir)) == 1, 30)
    lam.delete_function(FunctionName=name)
    assert wait_for(lambda: environment_pids(own_local_aws.state_dir) == [], 30)


def test_server_shutdown_ends_every_environment(tmp_path):
    handle = start_local_aws(tmp_path / "state")
    try:
        for _ in range(2):
            invoke(handle, create_function(handle, ECHO))
        assert len(environment_pids(handle.state_dir)) == 2
    finally:
        server.stop(handle.state_dir)
    assert wait_for(lambda: environment_pids(handle.state_dir) == [], 30)
