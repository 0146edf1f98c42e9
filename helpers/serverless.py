"""SageMaker Serverless Inference beside Lambda (05): names, the image, deploys, and invocations recorded
as 04 records Lambda's.

The resources are made with the ``sagemaker`` SDK's v3 resource classes (``sagemaker.core.resources``:
``Model``, ``EndpointConfig``, ``Endpoint``) on the workshop's boto3 session, so the same code reaches AWS
or the embedded local AWS. One call goes through boto3: sagemaker 3.27.0's ``EndpointConfig.create``
serialises ``memory_size_in_mb`` as ``MemorySizeInMb``, which botocore refuses (the API's name is
``MemorySizeInMB``), so the endpoint configuration is created with ``create_endpoint_config`` and read
back with ``EndpointConfig.get``.

The benchmark's scenarios on these endpoints, and their records, are in :mod:`helpers.serverless_bench`.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from helpers import session
from helpers.config import Settings, load_settings

log = logging.getLogger(__name__)

MODEL_SUFFIX = "effnet"
STACK_SUFFIX = "sagemaker"
#: The PyTorch inference image 05 asks the SDK for (the newest the SDK names; CPU, as serverless has no GPU).
PYTORCH_IMAGE = {"framework": "pytorch", "version": "2.6.0", "py_version": "py312"}
CONTENT_TYPE = "image/jpeg"
CREATE_TIMEOUT_S = 1200  # AWS takes a few minutes per serverless endpoint
ROLE_PROPAGATION_S = 60.0
#: The account's serverless concurrency quota when Service Quotas does not say: AWS's default for new accounts
#: (https://docs.aws.amazon.com/general/latest/gr/sagemaker.html), which the embedded SageMaker enforces too.
DEFAULT_CONCURRENCY_QUOTA = 10


@dataclass(frozen=True)
class Names:
    """The names of 05's resources, all derived from the prefix (``cleanup`` matches them exactly)."""

    model: str
    config: str
    pc_config: str
    endpoint: str
    pc_endpoint: str
    stack: str

    def fresh(self, kind: str, index: int) -> str:
        """A throw-away endpoint for a forced cold start or a burst, e.g. ``lambda-efs-effnet-cold-0``."""
        return f"{self.endpoint}-{kind}-{index}"


def names(cfg: Settings | None = None) -> Names:
    cfg = cfg or load_settings()
    base = cfg.name(MODEL_SUFFIX)
    return Names(
        model=base,
        config=f"{base}-serverless",
        pc_config=f"{base}-serverless-pc",
        endpoint=base,
        pc_endpoint=f"{base}-pc",
        stack=cfg.name(STACK_SUFFIX),
    )


def endpoint_pattern(cfg: Settings | None = None) -> re.Pattern:
    """Exactly 05's endpoints: the two it keeps and the fresh ones (never a colleague's ``<prefix>-alice-...``)."""
    base = re.escape(names(cfg).endpoint)
    return re.compile(rf"^{base}(-pc|-(cold|burst|spill)-\d+)?$")


def config_pattern(cfg: Settings | None = None) -> re.Pattern:
    return re.compile(rf"^{re.escape(names(cfg).config)}(-pc)?$")


def log_group(endpoint: str) -> str:
    """Where SageMaker writes a serverless endpoint's container output."""
    return f"/aws/sagemaker/Endpoints/{endpoint}"


def image_uri(region: str) -> str:
    """The PyTorch inference image for serverless endpoints in ``region``, as the SDK names it (offline)."""
    from sagemaker.core import image_uris
    from sagemaker.core.serverless_inference_config import ServerlessInferenceConfig

    return image_uris.retrieve(
        region=region,
        image_scope="inference",
        serverless_inference_config=ServerlessInferenceConfig(),
        **PYTORCH_IMAGE,
    )


def use_local_framework(framework_dir: str | Path, cfg: Settings | None = None) -> str:
    """On the local backend the image's torch is the framework bundle 02 built: point the server at it.

    On AWS the image brings its own torch and nothing is done. Returns a sentence saying which.
    """
    cfg = cfg or load_settings()
    if not cfg.is_local:
        return "On AWS the PyTorch image brings its own torch."
    framework_dir = Path(framework_dir).resolve()
    if not (framework_dir / "torch" / "__init__.py").is_file():
        raise FileNotFoundError(
            f"{framework_dir} holds no torch: run 02_seed_model.ipynb (it builds the framework bundle)."
        )
    link = cfg.state_dir / "sagemaker" / "framework"
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if link.resolve() == framework_dir:
            return f"The local PyTorch image uses the framework bundle {framework_dir}."
        link.unlink()
    link.symlink_to(framework_dir, target_is_directory=True)
    return f"The local PyTorch image uses the framework bundle {framework_dir}."


def _sdk():
    from sagemaker.core import resources

    return resources


def create_model(n: Names, image: str, model_url: str, role_arn: str):
    """The SageMaker model (the image, the archive and the role), with the SDK; reused when it exists."""
    resources = _sdk()
    from sagemaker.core.shapes import ContainerDefinition

    sess, region = session.session(), load_settings().region
    try:
        existing = resources.Model.get(model_name=n.model, session=sess, region=region)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ValidationException":
            raise
    else:
        held = (existing.primary_container.model_data_url, existing.primary_container.image)
        if held != (model_url, image):
            # A SageMaker model cannot be updated, and endpoints keep serving the model they were made from.
            raise RuntimeError(
                f"Model {n.model} exists with another archive or image ({held[0]}, {held[1]}): delete 05's "
                "resources with helpers.cleanup.delete_sagemaker() (or run 99_cleanup.ipynb), then run this "
                "notebook again."
            )
        return existing
    container = ContainerDefinition(
        image=image,
        model_data_url=model_url,
        environment={"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"},
    )
    deadline = time.monotonic() + ROLE_PROPAGATION_S
    while True:
        try:
            return resources.Model.create(
                model_name=n.model,
                primary_container=container,
                execution_role_arn=role_arn,
                session=sess,
                region=region,
            )
        except ClientError as exc:
            # A role CloudFormation has just made can take seconds to be assumable by SageMaker (IAM is
            # eventually consistent: https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
            if "Could not assume role" not in str(exc) or time.monotonic() > deadline:
                raise
            log.info("SageMaker cannot assume %s yet (IAM is still propagating it): retrying", role_arn)
            time.sleep(5)


def serverless_config(memory_mb: int, max_concurrency: int, provisioned: int = 0) -> dict[str, int]:
    """A variant's ``ServerlessConfig``, as the API names its members."""
    config = {"MemorySizeInMB": memory_mb, "MaxConcurrency": max_concurrency}
    if provisioned:
        config["ProvisionedConcurrency"] = provisioned
    return config


def create_endpoint_config(name: str, model_name: str, config: dict[str, int]):
    """An endpoint configuration with one serverless variant (boto3, see the module docstring)."""
    sess, region = session.session(), load_settings().region
    resources = _sdk()
    try:
        return resources.EndpointConfig.get(endpoint_config_name=name, session=sess, region=region)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ValidationException":
            raise
    session.client("sagemaker").create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": model_name, "ServerlessConfig": config}
        ],
    )
    return resources.EndpointConfig.get(endpoint_config_name=name, session=sess, region=region)


def concurrency_quota() -> tuple[int, str]:
    """The account's total serverless concurrency (the MaxConcurrency of every serverless endpoint of the
    Region counts against it), and where the figure comes from: Service Quotas, else AWS's default."""
    try:
        pages = (
            session.client("service-quotas")
            .get_paginator("list_service_quotas")
            .paginate(ServiceCode="sagemaker")
        )
        for page in pages:
            for quota in page["Quotas"]:
                name = quota["QuotaName"].lower()
                if "serverless" in name and "concurrency" in name and "all" in name:
                    return int(quota["Value"]), f"Service Quotas: {quota['QuotaName']}"
    except (ClientError, BotoCoreError) as exc:
        log.info("Service Quotas did not list SageMaker's quotas: %s", exc)
    return DEFAULT_CONCURRENCY_QUOTA, "AWS's default for new accounts (Service Quotas did not list it)"


def create_endpoint(name: str, config_name: str, wait: bool = True, timeout: float = CREATE_TIMEOUT_S):
    """An endpoint from ``config_name`` (reused when it exists), waited on until ``InService``."""
    sess, region = session.session(), load_settings().region
    resources = _sdk()
    try:
        endpoint = resources.Endpoint.get(endpoint_name=name, session=sess, region=region)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ValidationException":
            raise
        endpoint = resources.Endpoint.create(
            endpoint_name=name, endpoint_config_name=config_name, session=sess, region=region
        )
    if wait:
        wait_in_service(name, timeout)
    return endpoint


def wait_in_service(name: str, timeout: float = CREATE_TIMEOUT_S) -> dict:
    """Poll DescribeEndpoint until ``InService``; a ``Failed`` endpoint raises with SageMaker's reason."""
    sm = session.client("sagemaker")
    deadline = time.monotonic() + timeout
    poll = 0.2 if load_settings().is_local else 15.0
    while True:
        described = sm.describe_endpoint(EndpointName=name)
        status = described["EndpointStatus"]
        if status == "InService":
            return described
        if status == "Failed":
            raise RuntimeError(f"Endpoint {name} failed: {described.get('FailureReason', 'no reason given')}")
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"Endpoint {name} is still {status} after {timeout:.0f} s: run the cell again."
            )
        time.sleep(poll)


def delete_endpoint(name: str, wait: bool = True) -> bool:
    """Delete an endpoint (its containers stop, its billing ends); False if it did not exist."""
    sm = session.client("sagemaker")
    try:
        sm.delete_endpoint(EndpointName=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ValidationException":
            return False
        raise
    if wait:
        sm.get_waiter("endpoint_deleted").wait(
            EndpointName=name,
            WaiterConfig={"Delay": 1 if load_settings().is_local else 15, "MaxAttempts": 120},
        )
    return True
