"""EfficientNet-Lite0 on a serverless endpoint of the local backend, end to end through the AWS CLI.

The endpoint is made with boto3 and, separately, by deploying ``cloudformation/sagemaker.yaml``; the
prediction is the real model's (the package's ImageNet weights), computed in the sandbox with the framework
bundle's torch, and equal to the same model run here; the first request after idle is a measured cold
start (``ModelSetupTime``). Fails on stock moto (canned ``b"body"`` answers, no CloudFormation names).
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from helpers import model
from helpers.config import REPO_ROOT
from localaws import server
from tests import sagemaker_support as sm

AWS = str(REPO_ROOT / ".venv" / "bin" / "aws")


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    handle = sm.start_server(tmp_path_factory.mktemp("sm-model-state"))
    yield handle
    server.stop(handle.state_dir)


@pytest.fixture(scope="module")
def archive_url(local):
    archive = sm.model_archive()
    return sm.upload(local, archive.path.read_bytes(), archive.key, bucket="sm-model-archives")


def _cli_invoke(local, endpoint: str, out) -> tuple[dict, float]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    command = [
        AWS, "sagemaker-runtime", "invoke-endpoint", "--endpoint-url", local.url, "--endpoint-name", endpoint,
        "--body", f"fileb://{sm.SAMPLE_IMAGE}", "--content-type", "image/jpeg", str(out),
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["InvokedProductionVariant"] == "AllTraffic"
    return json.loads(out.read_text()), elapsed


def _reference_top5() -> list[int]:
    """The same weights and image through functions/inference/efficientnet.py, in this process."""
    import torch
    from PIL import Image

    network = model.network()
    net = network.EfficientNetLite0().eval()
    net.load_state_dict(torch.load(sm.EXPORT / model.WEIGHTS_FILE, weights_only=True))
    with torch.inference_mode():
        logits = net(network.preprocess(Image.open(sm.SAMPLE_IMAGE)))
    return torch.softmax(logits, dim=1)[0].topk(5).indices.tolist()


def test_aws_cli_gets_a_right_prediction_from_a_boto3_endpoint_and_the_first_is_a_cold_start(
    local, archive_url, tmp_path
):
    described = sm.create_endpoint(local, "model-boto3", archive_url, memory=2048, max_concurrency=2)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    cold, cold_s = _cli_invoke(local, "model-boto3", tmp_path / "cold.json")
    warm, warm_s = _cli_invoke(local, "model-boto3", tmp_path / "warm.json")
    assert [p["class_id"] for p in cold["predictions"]] == _reference_top5()
    assert cold["predictions"] == warm["predictions"]
    assert cold["model"]["weights_source"] == model.PACKAGE_SOURCE
    assert cold["predictions"][0]["label"] == "palace"  # the Summer Palace, by a model trained on ImageNet
    setup = sm.metric_values(local, "model-boto3", "ModelSetupTime")
    assert setup and setup[0]["SampleCount"] == 1  # the first request only
    print(f"cold start: CLI {cold_s:.2f} s, ModelSetupTime {setup[0]['Maximum'] / 1e6:.2f} s; warm: CLI {warm_s:.2f} s, "
          f"model {warm['timing_ms']}")  # fmt: skip
    events = local.client("logs").filter_log_events(logGroupName="/aws/sagemaker/Endpoints/model-boto3")[
        "events"
    ]
    assert any(
        '"model_fn_ms"' in e["message"] for e in events
    )  # inference.py's load line, from the container


def test_cloudformation_template_deploys_a_provisioned_serverless_endpoint_that_serves(
    local, archive_url, tmp_path
):
    bucket, key = archive_url.removeprefix("s3://").split("/", 1)
    cfn = local.client("cloudformation")
    cfn.create_stack(
        StackName="sm-cfn",
        TemplateBody=(REPO_ROOT / "cloudformation" / "sagemaker.yaml").read_text(),
        Parameters=[
            {"ParameterKey": "Prefix", "ParameterValue": "sm-cfn"},
            {"ParameterKey": "ModelBucket", "ParameterValue": bucket},
            {"ParameterKey": "ModelKey", "ParameterValue": key},
            {"ParameterKey": "MemorySizeInMB", "ParameterValue": "2048"},
            {"ParameterKey": "MaxConcurrency", "ParameterValue": "2"},
            {"ParameterKey": "ProvisionedConcurrency", "ParameterValue": "1"},
            {"ParameterKey": "ImageUri", "ParameterValue": sm.IMAGE},
        ],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    cfn.get_waiter("stack_create_complete").wait(
        StackName="sm-cfn", WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cfn.describe_stacks(StackName="sm-cfn")["Stacks"][0]["Outputs"]
    }
    assert outputs["EndpointName"] == "sm-cfn-effnet"
    sagemaker = local.client("sagemaker")
    assert sagemaker.describe_endpoint(EndpointName="sm-cfn-effnet")["EndpointStatus"] == "InService"
    config = sagemaker.describe_endpoint_config(EndpointConfigName=outputs["EndpointConfigName"])
    assert config["ProductionVariants"][0]["ServerlessConfig"] == {
        "MemorySizeInMB": 2048, "MaxConcurrency": 2, "ProvisionedConcurrency": 1,
    }  # fmt: skip
    model = sagemaker.describe_model(ModelName=outputs["ModelName"])
    assert model["PrimaryContainer"]["ModelDataUrl"] == archive_url
    body, _ = _cli_invoke(local, "sm-cfn-effnet", tmp_path / "out.json")
    assert [p["class_id"] for p in body["predictions"]] == _reference_top5()
    assert (
        sm.metric_values(local, "sm-cfn-effnet", "ModelSetupTime") == []
    )  # served warm by provisioned concurrency
