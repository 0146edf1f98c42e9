"""SageMaker Serverless Inference beside Lambda (05): names, the image, deploys, and invocations recorded
as 04 records Lambda's.

The resources are made with the ``sagemaker`` SDK's v3 resource classes (``sagemaker.core.resources``:
``Model``, ``EndpointConfig``, ``Endpoint``) on the workshop's boto3 session, so the same code reaches AWS
or the embedded local AWS. One call goes through boto3: sagemaker 3.27.0's ``EndpointConfig.create``
serialises ``memory_size_in_mb`` as ``MemorySizeInMb``, which botocore refuses (the API's name is
``MemorySizeInMB``), so the endpoint configuration is created with ``create_endpoint_config`` and read
back with ``EndpointConfig.get``.

Every invocation becomes a record with :data:`helpers.bench.FIELDS`, so the plots and tables of 04 read
it unchanged: ``client_ms`` is the caller's round trip, ``duration_ms`` the model's own work
(decode + preprocess + inference, as ``code/inference.py`` times it), ``billed_ms`` that duration rounded
up to the millisecond (serverless bills request processing by the millisecond, see ``prices.json``),
``version`` the endpoint. A record is ``cold`` when it is a container's first answer and the model had
been loaded for under :data:`COLD_READY_MS` when that request arrived (the request started the
container); its init phases are the container's (``import torch``, ``import PIL``, the weights, the
first forward). A container whose first request found the model loaded long before is a provisioned
one; every answer says which (``init_type``), so a re-run that meets containers already warm still
tells them apart.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from helpers import bench, session
from helpers.config import Settings, load_settings

log = logging.getLogger(__name__)

MODEL_SUFFIX = "resnet18"
STACK_SUFFIX = "sagemaker"
#: The PyTorch inference image 05 asks the SDK for (the newest the SDK names; CPU, as serverless has no GPU).
PYTORCH_IMAGE = {"framework": "pytorch", "version": "2.6.0", "py_version": "py312"}
CONTENT_TYPE = "image/jpeg"
#: Under this, the model was loaded for the request that reached it: a cold start.
COLD_READY_MS = 1000.0
CREATE_TIMEOUT_S = 1200  # AWS takes a few minutes per serverless endpoint
ROLE_PROPAGATION_S = 60.0


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
        """A throw-away endpoint for a forced cold start or a burst, e.g. ``lambda-efs-resnet18-cold-0``."""
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


@dataclass
class Answer:
    """One InvokeEndpoint: the round trip, the parsed body (or the error), the request id."""

    client_ms: float
    body: dict | None
    error: str | None
    request_id: str | None


def invoke(endpoint: str, image_bytes: bytes, runtime=None) -> Answer:
    runtime = runtime or session.client("sagemaker-runtime")
    started = time.perf_counter()
    try:
        answer = runtime.invoke_endpoint(EndpointName=endpoint, Body=image_bytes, ContentType=CONTENT_TYPE)
        body = json.loads(answer["Body"].read())
        error, request_id = None, answer["ResponseMetadata"].get("RequestId")
    except ClientError as exc:
        body, request_id = None, exc.response.get("ResponseMetadata", {}).get("RequestId")
        error = f"{exc.response['Error']['Code']}: {exc.response['Error'].get('Message', '')}"
    return Answer(round((time.perf_counter() - started) * 1000, 3), body, error, request_id)


def record(scenario: str, index: int, endpoint: str, answer: Answer, memory_mb: int) -> dict[str, Any]:
    """One of 04's records from an answer (see the module docstring for how a cold start is told)."""
    body = answer.body or {}
    container = body.get("container", {})
    timing = body.get("timing_ms", {})
    duration = round(sum(float(v) for v in timing.values()), 3) if timing else None
    init = container.get("init") or {}
    ready = container.get("ready_ms_before_first_request")
    started_by_its_request = ready is not None and float(ready) < COLD_READY_MS
    cold = bool(init) and started_by_its_request
    if ready is not None:
        kind = "on-demand" if started_by_its_request else "provisioned-concurrency"
    else:
        kind = None
    phases = init.get("phases_ms", {}) if cold else {}
    return {
        "scenario": scenario,
        "index": index,
        "client_ms": answer.client_ms,
        "duration_ms": duration,
        "billed_ms": math.ceil(duration) if duration is not None else None,
        "init_ms": init.get("total_ms") if cold else None,
        "max_memory_mb": None,
        "memory_size_mb": memory_mb,
        "version": endpoint,
        "init_type": kind,
        "cold": cold,
        "init_in_duration": False,
        "init_total_ms": init.get("total_ms") if cold else None,
        **{f"init_{phase}_ms": phases.get(phase) for phase in bench.INIT_PHASES},
        "status": "error" if answer.error else "ok",
        "error": answer.error,
        "request_id": answer.request_id,
        "container": container.get("id"),
    }


@dataclass
class ServerlessParams:
    """How many invocations of each scenario, and the endpoints' sizes (05's parameters cell)."""

    cold_starts: int = 3
    warm: int = 30
    provisioned: int = 30
    burst: int = 2
    memory_mb: int = 2048
    provisioned_concurrency: int = 1

    @property
    def total(self) -> int:
        return self.cold_starts + 1 + self.warm + self.provisioned + 2 * self.burst


def _burst(endpoint: str, count: int, image_bytes: bytes) -> list[Answer]:
    runtime = session.client("sagemaker-runtime")
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: invoke(endpoint, image_bytes, runtime), range(count)))


def run(n: Names, image_bytes: bytes, params: ServerlessParams) -> list[dict[str, Any]]:
    """04's scenarios on serverless endpoints; returns the records.

    - **cold**: ``cold_starts`` fresh endpoints of the on-demand configuration (created together, since
      AWS takes minutes each), each invoked once: an endpoint that never served has no container;
    - **warm**: the on-demand endpoint after one warm-up request, one request at a time;
    - **provisioned**: the endpoint with Provisioned Concurrency, one request at a time;
    - **burst-on-demand**: ``burst`` requests at once on a fresh on-demand endpoint;
    - **burst-provisioned**: ``burst`` requests at once on a fresh endpoint of the provisioned
      configuration: beyond its provisioned containers they spill over to on-demand ones, started for
      them (cold). A fresh endpoint, because on-demand containers left by earlier traffic (a previous
      run) would take the spill-over warm.

    The fresh endpoints are deleted at the end, whatever happened.
    """
    records: list[dict[str, Any]] = []
    progress = bench.Progress(params.total)
    cold = [n.fresh("cold", i) for i in range(params.cold_starts)]
    burst, spill = n.fresh("burst", 0), n.fresh("spill", 0)
    fresh = [*cold, burst, spill]
    try:
        for name in fresh:
            create_endpoint(name, n.pc_config if name == spill else n.config, wait=False)
        for name in fresh:
            wait_in_service(name)
        runtime = session.client("sagemaker-runtime")
        for i, name in enumerate(cold):
            records.append(record("cold", i, name, invoke(name, image_bytes, runtime), params.memory_mb))
            progress.step("cold")
        invoke(n.endpoint, image_bytes, runtime)  # the warm-up: may be a cold start, not recorded
        progress.step("warm (warm-up)")
        for scenario, endpoint, count in (("warm", n.endpoint, params.warm), ("provisioned", n.pc_endpoint, params.provisioned)):  # fmt: skip
            for i in range(count):
                records.append(
                    record(scenario, i, endpoint, invoke(endpoint, image_bytes, runtime), params.memory_mb)
                )
                progress.step(scenario)
        for scenario, endpoint in (("burst-on-demand", burst), ("burst-provisioned", spill)):
            for i, answer in enumerate(_burst(endpoint, params.burst, image_bytes)):
                records.append(record(scenario, i, endpoint, answer, params.memory_mb))
                progress.step(scenario)
    finally:
        for name in fresh:
            delete_endpoint(name, wait=False)
        progress.close()
    return records


def model_setup_ms(endpoints: Iterable[str], hours: float = 3.0) -> dict[str, float | None]:
    """Each endpoint's longest ``ModelSetupTime`` (CloudWatch, ``AWS/SageMaker``) in ms, or None when
    none is published yet (AWS publishes a minute or two late)."""
    cw = session.client("cloudwatch")
    now = datetime.now(UTC)
    found = {}
    for name in endpoints:
        points = cw.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName="ModelSetupTime",
            Dimensions=[
                {"Name": "EndpointName", "Value": name},
                {"Name": "VariantName", "Value": "AllTraffic"},
            ],
            StartTime=now - timedelta(hours=hours),
            EndTime=now + timedelta(minutes=5),
            Period=3600,
            Statistics=["Maximum"],
        )["Datapoints"]
        found[name] = max(p["Maximum"] for p in points) / 1000 if points else None  # microseconds -> ms
    return found


def init_summary(answer: Mapping[str, Any]) -> str:
    """Markdown: the container's init phases from its first answer, or why this answer has none."""
    container = answer.get("container", {})
    init = container.get("init")
    if not init:
        return (
            f"_Container {container.get('id')} had already served {container.get('request', 0) - 1} request(s) "
            "(this notebook ran before), so its init was reported then: section 6 forces fresh cold starts._"
        )
    rows = {**init["phases_ms"], "total": init["total_ms"]}
    ready = container.get("ready_ms_before_first_request")
    lines = [
        "| init phase | ms |",
        "|---|---:|",
        *(f"| {name} | {value:,.1f} |" for name, value in rows.items()),
    ]
    if ready is not None:
        kind = (
            "started by this request: a cold start" if ready < COLD_READY_MS else "loaded before: provisioned"
        )
        lines.append(f"\nThe model had been loaded {ready:,.0f} ms before the request reached it ({kind}).")
    return "\n".join(lines)
