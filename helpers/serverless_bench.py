"""04's scenarios on SageMaker serverless endpoints (05), and their records.

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
import math
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from helpers import bench, session
from helpers.serverless import (
    CONTENT_TYPE,
    Names,
    create_endpoint,
    delete_endpoint,
    endpoint_pattern,
    wait_in_service,
)

#: Under this, the model was loaded for the request that reached it: a cold start.
COLD_READY_MS = 1000.0


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
    """How many invocations of each scenario, the endpoints' sizes, and the account's serverless concurrency
    quota that the kept endpoints and the fresh ones share (05's parameters cell)."""

    cold_starts: int = 3
    warm: int = 30
    provisioned: int = 30
    burst: int = 2
    memory_mb: int = 2048
    provisioned_concurrency: int = 1
    max_concurrency: int = 2
    quota: int = 10

    @property
    def fresh_at_once(self) -> int:
        """How many fresh endpoints fit beside the two 05 keeps (each holds ``max_concurrency``)."""
        room = self.quota - 2 * self.max_concurrency
        if room < self.max_concurrency:
            raise ValueError(
                f"The account's serverless concurrency quota is {self.quota}: the two endpoints 05 keeps hold "
                f"{2 * self.max_concurrency}, leaving no room for a fresh endpoint of MaxConcurrency "
                f"{self.max_concurrency}. Lower MAX_CONCURRENCY or request an increase in Service Quotas."
            )
        return room // self.max_concurrency

    @property
    def total(self) -> int:
        return self.cold_starts + 1 + self.warm + self.provisioned + 2 * self.burst


def _burst(endpoint: str, count: int, image_bytes: bytes) -> list[Answer]:
    runtime = session.client("sagemaker-runtime")
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: invoke(endpoint, image_bytes, runtime), range(count)))


def _fresh_endpoints(n: Names, names: list[str]) -> None:
    """Create these fresh endpoints together (AWS takes minutes each) and wait until they serve."""
    for name in names:
        create_endpoint(name, n.pc_config if "-spill-" in name else n.config, wait=False)
    for name in names:
        wait_in_service(name)


def _gone(names: Iterable[str]) -> None:
    """Delete these endpoints and wait until they are gone, so their concurrency is free again."""
    for name in names:
        delete_endpoint(name, wait=False)
    for name in names:
        delete_endpoint(name, wait=True)


def leftovers(n: Names) -> list[str]:
    """Fresh endpoints an interrupted run left (they hold quota, and a reused one is not cold)."""
    listed = session.client("sagemaker").get_paginator("list_endpoints").paginate(NameContains=n.endpoint)
    keep = {n.endpoint, n.pc_endpoint}
    pattern = endpoint_pattern()
    return [
        e["EndpointName"]
        for page in listed
        for e in page["Endpoints"]
        if pattern.match(e["EndpointName"]) and e["EndpointName"] not in keep
    ]


def run(n: Names, image_bytes: bytes, params: ServerlessParams) -> list[dict[str, Any]]:
    """04's scenarios on serverless endpoints; returns the records.

    Fresh endpoints are made in waves of :attr:`ServerlessParams.fresh_at_once` (created together, since AWS
    takes minutes each), so that with the two kept endpoints they stay within the account's serverless
    concurrency quota; each wave is deleted, and waited on, before the next. Fresh endpoints an interrupted
    run left are deleted first.

    - **cold**: ``cold_starts`` fresh endpoints of the on-demand configuration, each invoked once: an
      endpoint that never served has no container;
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
    at_once = params.fresh_at_once
    _gone(leftovers(n))
    progress = bench.Progress(params.total)
    cold = [n.fresh("cold", i) for i in range(params.cold_starts)]
    burst, spill = n.fresh("burst", 0), n.fresh("spill", 0)
    wave: list[str] = []
    runtime = session.client("sagemaker-runtime")
    try:
        for start in range(0, len(cold), at_once):
            wave = cold[start : start + at_once]
            _fresh_endpoints(n, wave)
            for i, name in enumerate(wave, start=start):
                records.append(record("cold", i, name, invoke(name, image_bytes, runtime), params.memory_mb))
                progress.step("cold")
            _gone(wave)
        invoke(n.endpoint, image_bytes, runtime)  # the warm-up: may be a cold start, not recorded
        progress.step("warm (warm-up)")
        for scenario, endpoint, count in (("warm", n.endpoint, params.warm), ("provisioned", n.pc_endpoint, params.provisioned)):  # fmt: skip
            for i in range(count):
                records.append(
                    record(scenario, i, endpoint, invoke(endpoint, image_bytes, runtime), params.memory_mb)
                )
                progress.step(scenario)
        for pair in ([burst, spill],) if at_once >= 2 else ([burst], [spill]):
            wave = pair
            _fresh_endpoints(n, wave)
            for scenario, endpoint in (("burst-on-demand", burst), ("burst-provisioned", spill)):
                if endpoint in wave:
                    for i, answer in enumerate(_burst(endpoint, params.burst, image_bytes)):
                        records.append(record(scenario, i, endpoint, answer, params.memory_mb))
                        progress.step(scenario)
            _gone(wave)
        wave = []
    finally:
        for name in wave:
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
