"""Shared by the SageMaker tests: a server of their own with short settings, model archives, deploys.

- :func:`framework_dir`: the real framework bundle (helpers.bundle's cached local build), precompiled
  once under ``build/sagemaker/framework`` (tests.efs_framework), for the emulated PyTorch image.
- :func:`model_archive`: the EfficientNet-Lite0 model archive (helpers.sagemaker_model) from 02's export
  (the package's ImageNet weights), built once and cached under ``build/sagemaker``.
- :func:`tiny_archive`: a model whose ``code/inference.py`` needs only the standard library (fast cold
  starts for the scaling, error and limit tests): it echoes, sleeps or fails as the request says.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from datetime import UTC
from pathlib import Path

from helpers import sagemaker_model, samples
from helpers.config import REPO_ROOT
from tests.conftest import LocalAWSHandle, start_local_aws

BUILD = REPO_ROOT / "build" / "sagemaker"
EXPORT = BUILD / "export"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312"  # as sagemaker.core.image_uris names it
SAMPLE_IMAGE = samples.path()

TINY_INFERENCE = """
import json, os, sys, time

def model_fn(model_dir):
    print("tiny model loading from", model_dir, flush=True)
    time.sleep(float(os.environ.get("TINY_SETUP_SECONDS", "0")))
    if os.environ.get("TINY_FAIL_SETUP"):
        raise RuntimeError(os.environ["TINY_FAIL_SETUP"])
    with open(os.path.join(model_dir, "weights.txt")) as fh:
        return {"weights": fh.read().strip(), "token": os.urandom(8).hex()}

def input_fn(body, content_type):
    return json.loads(body) if content_type == "application/json" else {"raw": len(body)}

def predict_fn(data, model):
    if data.get("print"):
        print(data["print"], flush=True)
    time.sleep(float(data.get("sleep", 0)))
    if data.get("allocate_mb"):
        hog = b"x" * (int(data["allocate_mb"]) * 1024 * 1024)
    if data.get("fail"):
        raise RuntimeError(data["fail"])
    written = {}
    for path in data.get("write", []):
        try:
            open(path, "w").write("x")
            written[path] = "ok"
        except OSError as exc:
            written[path] = exc.strerror
    exists = {path: os.path.exists(path) for path in data.get("exists", [])}
    return {"echo": data, "weights": model["weights"], "token": model["token"], "uid": os.getuid(),
            "written": written, "exists": exists, "model_files": sorted(os.listdir(os.path.join(os.environ.get("SAGEMAKER_BASE_PATH", "/opt/ml"), "model")))}

def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
"""


@functools.cache
def framework_dir() -> Path:
    from tests.efs_framework import install_framework

    return install_framework(BUILD / "efs")


@functools.cache
def model_archive() -> sagemaker_model.ModelArchive:
    from helpers import model

    export = EXPORT
    if not all((export / name).is_file() for name in sagemaker_model.MODEL_FILES):
        model.export(export)
    return sagemaker_model.build_model_archive(export)


@functools.cache
def tiny_archive() -> bytes:
    return sagemaker_model.pack({"weights.txt": b"tiny-1\n", "code/inference.py": TINY_INFERENCE.encode()})


@contextlib.contextmanager
def settings(**values: str | None):
    """Environment variables set while a server starts (it reads its settings then); None unsets one."""
    previous = {k: os.environ.get(k) for k in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = str(value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def start_server(state_dir: Path, **values: str | None) -> LocalAWSHandle:
    defaults = {
        "LOCALAWS_SAGEMAKER_CREATE_SECONDS": "0.3",
        "LOCALAWS_SAGEMAKER_FRAMEWORK": str(framework_dir()),
        # many endpoints per module, never deleted: the account quota has its own test (test_sagemaker_quota)
        "LOCALAWS_SAGEMAKER_SERVERLESS_CONCURRENCY": "1000",
    }
    with settings(**{**defaults, **values}):
        return start_local_aws(state_dir)


def role(handle: LocalAWSHandle) -> str:
    iam = handle.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"Service": "sagemaker.amazonaws.com"}}]}  # fmt: skip
    try:
        return iam.get_role(RoleName="sm-test-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName="sm-test-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"][
            "Arn"
        ]


def upload(handle: LocalAWSHandle, data: bytes, key: str, bucket: str = "sm-test-models") -> str:
    s3 = handle.client("s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def create_endpoint(
    handle: LocalAWSHandle,
    name: str,
    model_url: str,
    *,
    memory: int = 1024,
    max_concurrency: int = 2,
    provisioned: int | None = None,
    environment: dict | None = None,
    image: str = IMAGE,
    wait: bool = True,
) -> dict:
    sm = handle.client("sagemaker")
    container = {"Image": image, "ModelDataUrl": model_url, "Environment": environment or {}}
    sm.create_model(ModelName=name, ExecutionRoleArn=role(handle), PrimaryContainer=container)
    serverless = {"MemorySizeInMB": memory, "MaxConcurrency": max_concurrency}
    if provisioned:
        serverless["ProvisionedConcurrency"] = provisioned
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name, "ServerlessConfig": serverless}],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    if wait:
        return wait_settled(handle, name)
    return sm.describe_endpoint(EndpointName=name)


def wait_settled(handle: LocalAWSHandle, name: str, timeout: float = 120) -> dict:
    sm = handle.client("sagemaker")
    deadline = time.monotonic() + timeout
    while True:
        described = sm.describe_endpoint(EndpointName=name)
        if described["EndpointStatus"] not in ("Creating", "Updating") or time.monotonic() > deadline:
            return described
        time.sleep(0.1)


def runtime(handle: LocalAWSHandle, retries: int = 1):
    from botocore.config import Config

    return handle.client(
        "sagemaker-runtime",
        config=Config(retries={"max_attempts": retries, "mode": "standard"}, read_timeout=120),
    )


def metric_values(handle: LocalAWSHandle, endpoint: str, metric: str) -> list[float]:
    from datetime import datetime, timedelta

    now = datetime.now(UTC)
    stats = handle.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName=metric, StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=5),
        Period=3600, Statistics=["SampleCount", "Maximum", "Minimum"],
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}],
    )  # fmt: skip
    return stats["Datapoints"]
