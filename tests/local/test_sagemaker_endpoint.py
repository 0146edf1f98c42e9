"""SageMaker control plane on the local backend: endpoint states, ServerlessConfig checks, failures.

Each test fails on stock moto 5.2.5 (endpoints InService at once, no ServerlessConfig ranges, canned
InvokeEndpoint answers for any name): run with LOCALAWS_SAGEMAKER_DATA_PLANE=off to see them fail.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from localaws import server
from tests import sagemaker_support as sm

SETUP_S = 2.0  # AWS gives the container 3 minutes to answer /ping; shortened here


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    handle = sm.start_server(
        tmp_path_factory.mktemp("sm-endpoint-state"),
        LOCALAWS_SAGEMAKER_CREATE_SECONDS="0.5",
        LOCALAWS_SAGEMAKER_SETUP_SECONDS=str(SETUP_S),
    )
    yield handle
    server.stop(handle.state_dir)


@pytest.fixture(scope="module")
def tiny_url(local):
    return sm.upload(local, sm.tiny_archive(), "tiny/model.tar.gz")


def test_create_endpoint_answers_creating_then_the_waiter_sees_in_service(local, tiny_url):
    created = sm.create_endpoint(local, "ep-states", tiny_url, wait=False)
    assert created["EndpointStatus"] == "Creating"
    local.client("sagemaker").get_waiter("endpoint_in_service").wait(
        EndpointName="ep-states", WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    described = local.client("sagemaker").describe_endpoint(EndpointName="ep-states")
    assert described["EndpointStatus"] == "InService"
    assert "FailureReason" not in described


def test_a_missing_model_archive_fails_the_endpoint_with_a_reason(local):
    described = sm.create_endpoint(local, "ep-no-archive", "s3://sm-test-models/nothing/model.tar.gz")
    assert described["EndpointStatus"] == "Failed"
    assert "s3://sm-test-models/nothing/model.tar.gz" in described["FailureReason"]
    assert "no object" in described["FailureReason"]


def test_an_archive_that_is_not_a_tar_gz_fails_the_endpoint(local):
    url = sm.upload(local, b"not a tarball", "broken/model.tar.gz")
    described = sm.create_endpoint(local, "ep-broken-archive", url)
    assert described["EndpointStatus"] == "Failed"
    assert (
        "Please ensure that the object located at the URL is a valid tar.gz archive."
        in described["FailureReason"]
    )


def test_an_image_other_than_pytorch_inference_fails_the_endpoint(local, tiny_url):
    image = "763104330519.dkr.ecr.us-east-1.amazonaws.com/tensorflow-inference:2.16-cpu"
    described = sm.create_endpoint(local, "ep-tf", tiny_url, image=image)
    assert described["EndpointStatus"] == "Failed"
    assert "tensorflow-inference" in described["FailureReason"]


@pytest.mark.parametrize(
    ("serverless", "message"),
    [
        ({"MemorySizeInMB": 1500, "MaxConcurrency": 1}, "memorySizeInMB"),
        ({"MemorySizeInMB": 7168, "MaxConcurrency": 1}, "memorySizeInMB"),
        ({"MemorySizeInMB": 1024, "MaxConcurrency": 0}, "greater than or equal to 1"),
        ({"MemorySizeInMB": 1024, "MaxConcurrency": 201}, "less than or equal to 200"),
        ({"MemorySizeInMB": 1024, "MaxConcurrency": 2, "ProvisionedConcurrency": 3}, "less than or equal to its MaxConcurrency"),
    ],
)  # fmt: skip
def test_serverless_config_outside_aws_limits_is_refused(local, tiny_url, serverless, message):
    from botocore.config import Config

    # as CloudFormation or a client without parameter validation sends them
    sagemaker = local.client("sagemaker", config=Config(parameter_validation=False))
    name = f"cfg-{serverless['MemorySizeInMB']}-{serverless['MaxConcurrency']}"
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn=sm.role(local),
        PrimaryContainer={"Image": sm.IMAGE, "ModelDataUrl": tiny_url},
    )
    with pytest.raises(ClientError) as caught:
        sagemaker.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {"VariantName": "AllTraffic", "ModelName": name, "ServerlessConfig": serverless}
            ],
        )
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert message in caught.value.response["Error"]["Message"]


def test_an_endpoint_name_in_use_is_refused(local, tiny_url):
    sm.create_endpoint(local, "ep-twice", tiny_url)
    with pytest.raises(ClientError) as caught:
        local.client("sagemaker").create_endpoint(EndpointName="ep-twice", EndpointConfigName="ep-twice")
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "Cannot create already existing endpoint" in caught.value.response["Error"]["Message"]


def test_invoking_an_unknown_endpoint_is_a_validation_error(local):
    with pytest.raises(ClientError) as caught:
        sm.runtime(local).invoke_endpoint(EndpointName="nowhere", Body=b"{}", ContentType="application/json")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "Endpoint nowhere of account 123456789012 not found." in caught.value.response["Error"]["Message"]


def test_invoking_an_endpoint_still_creating_is_refused(local, tiny_url):
    sm.create_endpoint(local, "ep-early", tiny_url, wait=False)
    with pytest.raises(ClientError) as caught:
        sm.runtime(local).invoke_endpoint(EndpointName="ep-early", Body=b"{}", ContentType="application/json")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "Creating" in caught.value.response["Error"]["Message"]


def test_deleting_an_endpoint_stops_its_containers(local, tiny_url):
    others = _shim_processes(local)  # containers of endpoints that earlier tests left running
    sm.create_endpoint(local, "ep-delete", tiny_url, provisioned=1, max_concurrency=1)
    answer = sm.runtime(local).invoke_endpoint(
        EndpointName="ep-delete", Body=b"{}", ContentType="application/json"
    )
    assert json.loads(answer["Body"].read())["weights"] == "tiny-1"
    its_own = _shim_processes(local) - others
    assert its_own, "a provisioned container runs"
    local.client("sagemaker").delete_endpoint(EndpointName="ep-delete")
    with pytest.raises(ClientError):
        local.client("sagemaker").describe_endpoint(EndpointName="ep-delete")
    assert not (its_own & _shim_processes(local))


def _shim_processes(local) -> set[int]:
    """The serving shims this server started (its descendants), so that other servers' containers on a
    shared machine never count; the test compares sets taken around its own endpoint."""
    from pathlib import Path

    server = json.loads((local.state_dir / "server.json").read_text())["pid"]
    parents, shims = {}, set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if b"serving.py" in (proc / "cmdline").read_bytes():
                    shims.add(int(proc.name))
            except (OSError, IndexError, ValueError):
                continue

    def descends(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == server:
                return True
        return False

    return {pid for pid in shims if descends(pid)}


def test_a_provisioned_container_that_never_gets_healthy_fails_the_endpoint(local, tiny_url):
    slow = {"TINY_SETUP_SECONDS": str(SETUP_S + 3)}
    described = sm.create_endpoint(local, "ep-slow-pc", tiny_url, provisioned=1, environment=slow)
    assert described["EndpointStatus"] == "Failed"
    assert f"did not answer /ping with 200 within {SETUP_S:.0f} s" in described["FailureReason"]


def test_an_on_demand_container_that_never_gets_healthy_is_a_model_error(local, tiny_url):
    sm.create_endpoint(local, "ep-slow", tiny_url, environment={"TINY_SETUP_SECONDS": str(SETUP_S + 3)})
    with pytest.raises(ClientError) as caught:
        sm.runtime(local).invoke_endpoint(EndpointName="ep-slow", Body=b"{}", ContentType="application/json")
    assert caught.value.response["Error"]["Code"] == "ModelError"
    assert "did not answer /ping" in caught.value.response["OriginalMessage"]
