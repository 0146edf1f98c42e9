"""The benchmark: forced cold starts, warm and provisioned series, and bursts, recorded per invocation.

Every invocation becomes one record: the scenario, the client round trip, every REPORT field, the
executed version, the initialisation type the function reports, whether it started its environment
(``cold``) and, for those, the phases of its init as the function reports them. ``save`` writes the
records as CSV and JSON with the parameters, the backend, the date and the machine.

A forced cold start changes an environment variable on ``$LATEST`` and publishes a new version, then
invokes that version once: a version that has never run has no environment yet, on AWS and on the
local backend alike. Both bursts run on such fresh versions too (the provisioned one with its own
alias and Provisioned Concurrency), so that no idle environment left by earlier traffic absorbs them:
every on-demand request, and every request beyond the provisioned environments, starts one, as a
burst does in production after a quiet spell. Those versions are deleted and the configuration restored afterwards.

A cold-cache start (scenario ``cold (cold cache)``) is a forced cold start right after the seeder dropped
the framework's and the model's pages from the page cache: what the first cold start after seeding pays
to read them from the file system. The kernel cannot drop pages that a live environment maps, so each
record also says how many bytes stayed cached.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import platform
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helpers import session
from helpers.config import REPO_ROOT, load_settings
from helpers.invoke import Invocation, fields, invoke
from helpers.progress import LiveLine
from helpers.reports import init_phases

log = logging.getLogger(__name__)

SCENARIOS = ("cold", "warm", "provisioned", "burst-on-demand", "burst-provisioned")
#: Forced cold starts right after the seeder dropped the bundle's pages from the page cache (``helpers.cold_cache``).
COLD_CACHE = "cold (cold cache)"
#: The phases of a cold start the inference function reports in its first response (``init.phases_ms``).
INIT_PHASES = ("runtime_start", "import_torch", "import_pil", "load_weights", "first_forward")
PHASE_FIELDS = [f"init_{phase}_ms" for phase in INIT_PHASES]
FIELDS = [
    "scenario",
    "index",
    "client_ms",
    "duration_ms",
    "billed_ms",
    "init_ms",
    "max_memory_mb",
    "memory_size_mb",
    "version",
    "init_type",
    "cold",
    "init_in_duration",
    "init_total_ms",
    *PHASE_FIELDS,
    "status",
    "error",
    "request_id",
]
BURST_ALIAS = "bench-burst"


@dataclass
class BenchParams:
    """How many invocations of each scenario (the notebook's parameters cell sets these)."""

    cold_starts: int = 5
    warm: int = 30
    provisioned: int = 30
    burst: int = 3
    on_demand_alias: str = "on-demand"
    provisioned_alias: str = "provisioned"
    burst_environments: int = 1  # Provisioned Concurrency of the fresh version the provisioned burst hits
    cold_cache: int = 0  # cold starts after the page cache was emptied of the bundle (needs ``seeder``)
    seeder: str | None = None  # the seeder function's name, which empties it

    @property
    def total(self) -> int:
        return self.cold_cache + self.cold_starts + 1 + self.warm + self.provisioned + 2 * self.burst


def record(scenario: str, index: int, inv: Invocation) -> dict[str, Any]:
    """One benchmark record from an invocation.

    ``cold`` is True when this invocation waited for its environment's init: its REPORT has an Init
    Duration, or init ran past Lambda's 10 s cap (an ``INIT_REPORT ... Status: timeout``, or an on-demand
    first response without Init Duration) and was re-run inside the invocation, which ``init_in_duration``
    marks: its Duration then includes the init. An init that failed inside the invocation (an
    ``INIT_REPORT ... Status: error``) was a cold start too, and the record has its error. A provisioned environment's first response also carries
    the init phases, but its init ran before the request arrived, so it is not cold.
    """
    payload = inv.payload if isinstance(inv.payload, dict) else {}
    error = None
    if not inv.ok:
        error = f"{payload.get('errorType', inv.function_error)}: {payload.get('errorMessage', '')}".strip()
    elif "error" in payload:
        error = f"{payload['error'].get('type')}: {payload['error'].get('message')}"
    report = fields(inv.report)
    init_type = payload.get("init_type")
    first_response = inv.init is not None and init_type != "provisioned-concurrency"
    init_in_request = inv.init_report is not None  # an init that timed out (re-run here) or failed here
    cold = report["init_ms"] is not None or init_in_request or first_response
    if (
        init_type is None and cold
    ):  # a failed init says nothing; only on-demand environments init in a request
        init_type = "on-demand"
    phases = init_phases(inv.init) if cold else {}
    total = (inv.init or {}).get("total_ms") if cold else None
    return {
        "scenario": scenario,
        "index": index,
        "client_ms": round(inv.client_ms, 3),
        **report,
        "version": inv.executed_version,
        "init_type": init_type,
        "cold": cold,
        "init_in_duration": cold and report["init_ms"] is None,
        "init_total_ms": float(total) if isinstance(total, int | float) else None,
        **{f"init_{phase}_ms": phases.get(phase) for phase in INIT_PHASES},
        "error": error,
        "request_id": inv.request_id,
    }


class Progress(LiveLine):
    """A progress line over the benchmark's invocations: ``12/40 invocations in 9 s (warm)``, with an HTML
    progress bar in a notebook; ``done`` at the end."""

    def __init__(self, total: int, enabled: bool = True, unit: str = "invocation"):
        self.unit, self.count, self.label = unit, 0, ""
        super().__init__(total, enabled=enabled, unit=unit)

    def _text(self) -> str:
        elapsed = time.monotonic() - self.started
        done = self.count >= self.total
        label = "done" if done else self.label
        return f"{self.count}/{self.total} {self.unit}s in {elapsed:.0f} s" + (f" ({label})" if label else "")

    def bundle(self) -> dict[str, str]:
        text = self._text()
        return {
            "text/plain": text,
            "text/html": f"<progress value='{self.count}' max='{self.total}'></progress> {text}",
        }

    def step(self, label: str) -> None:
        with self.lock:
            self.count += 1
            self.label = label
            self.advance(1, description=label, at_end=self.count >= self.total)

    def close(self) -> None:
        self.total = self.count  # the summary says what ran, even after a failure
        super().close()


class FreshVersions:
    """Publish versions that no environment has run yet, then delete them and restore ``$LATEST``.

    ``$LATEST`` is restored to what the ``reference`` alias runs (what CloudFormation deployed), so a run
    whose kernel died mid-way (its memory size or variables left on ``$LATEST``) is undone. Each ``publish`` sets ``BENCH_COLD_START`` to a new value (and any configuration given, such as
    ``MemorySize``) on ``$LATEST`` and publishes it: Lambda publishes a version only when something
    changed, and a new version starts without environments.
    """

    def __init__(self, function_name: str, lam=None, reference: str = "on-demand"):
        self.name, self.reference = function_name, reference
        self.lam = lam or session.client("lambda")
        self.published: list[str] = []

    def __enter__(self) -> FreshVersions:
        # A new function is Pending until Active, and no update or publish is accepted meanwhile
        # (https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html).
        self.lam.get_waiter("function_active_v2").wait(
            FunctionName=self.name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 600}
        )
        self.original = self.lam.get_function_configuration(FunctionName=self.name)
        self.changed: set[str] = set()
        try:  # what was deployed: a run whose kernel died left $LATEST changed (memory, variables)
            deployed = self.lam.get_function_configuration(FunctionName=self.name, Qualifier=self.reference)
            self.changed |= {"MemorySize"} if deployed["MemorySize"] != self.original["MemorySize"] else set()
            self.original |= {
                "MemorySize": deployed["MemorySize"],
                "Environment": deployed.get("Environment", {}),
            }
        except self.lam.exceptions.ResourceNotFoundException:
            pass
        self.variables = dict(self.original.get("Environment", {}).get("Variables", {}))
        return self

    def publish(self, purpose: str, variables: dict[str, str] | None = None, **configuration: Any) -> str:
        """A new version with ``BENCH_COLD_START`` changed, ``variables`` added to the environment and
        ``configuration`` applied; ``$LATEST`` gets its own back on exit."""
        stamp = f"{time.time_ns()}-{len(self.published)}"
        self.lam.update_function_configuration(
            FunctionName=self.name,
            Environment={"Variables": {**self.variables, **(variables or {}), "BENCH_COLD_START": stamp}},
            **configuration,
        )
        self.changed |= set(configuration)
        _wait_updated(self.lam, self.name)
        version = self.lam.publish_version(FunctionName=self.name, Description=f"benchmark {purpose} {stamp}")
        self.published.append(version["Version"])
        self.lam.get_waiter("published_version_active").wait(
            FunctionName=self.name,
            Qualifier=version["Version"],
            WaiterConfig={"Delay": 0.5, "MaxAttempts": 600},
        )
        return version["Version"]

    def retire(self, version: str) -> None:
        """Delete ``version`` now (its environments end with it) rather than on exit."""
        self.lam.delete_function(FunctionName=self.name, Qualifier=version)
        self.published.remove(version)

    def __exit__(self, *exc: object) -> None:
        for version in self.published:
            self.lam.delete_function(FunctionName=self.name, Qualifier=version)
        restore = {key: self.original[key] for key in self.changed if key in self.original}
        self.lam.update_function_configuration(
            FunctionName=self.name, Environment={"Variables": self.variables}, **restore
        )
        _wait_updated(self.lam, self.name)


def forced_cold_starts(
    function_name: str, rounds: int, payload: Any, progress: Progress | None = None
) -> list[dict]:
    """``rounds`` guaranteed cold starts, each on a freshly published version."""
    records = []
    with FreshVersions(function_name) as versions:
        for index in range(rounds):
            version = versions.publish("cold start")
            records.append(
                record("cold", index, invoke(function_name, payload, version, client=versions.lam))
            )
            if progress:
                progress.step("cold starts")
    return records


def _wait_updated(lam, function_name: str) -> None:
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=function_name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 600}
    )


def series(
    function_name: str,
    qualifier: str,
    count: int,
    scenario: str,
    payload: Any,
    *,
    warmup: int = 0,
    progress: Progress | None = None,
) -> list[dict]:
    """``count`` sequential invocations of ``qualifier`` after ``warmup`` unrecorded ones."""
    lam = session.client("lambda")
    for _ in range(warmup):
        invoke(function_name, payload, qualifier, client=lam).raise_for_error()
        if progress:
            progress.step(f"{scenario} (warm-up)")
    records = []
    for index in range(count):
        records.append(record(scenario, index, invoke(function_name, payload, qualifier, client=lam)))
        if progress:
            progress.step(scenario)
    return records


def burst(
    function_name: str,
    qualifier: str,
    concurrency: int,
    scenario: str,
    payload: Any,
    progress: Progress | None = None,
) -> list[dict]:
    """``concurrency`` invocations released at the same moment: beyond the environments that exist,
    Lambda starts new ones (cold), which is what Provisioned Concurrency spills over into."""
    start = threading.Barrier(concurrency)

    def one(index: int) -> dict:
        lam = session.client("lambda")
        start.wait()
        result = record(scenario, index, invoke(function_name, payload, qualifier, client=lam))
        if progress:
            progress.step(scenario)
        return result

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, range(concurrency)))


def on_demand_burst(
    function_name: str,
    concurrency: int,
    payload: Any,
    versions: FreshVersions,
    progress: Progress | None = None,
) -> list[dict]:
    """A burst on a fresh version without Provisioned Concurrency: no environment exists, so each of
    the ``concurrency`` requests starts one (what a quiet function meets when traffic jumps)."""
    version = versions.publish("on-demand burst")
    return burst(function_name, version, concurrency, "burst-on-demand", payload, progress)


def provisioned_burst(
    function_name: str,
    concurrency: int,
    environments: int,
    payload: Any,
    versions: FreshVersions,
    progress: Progress | None = None,
) -> list[dict]:
    """A burst on an alias of a fresh version with ``environments`` provisioned: the first
    ``environments`` requests land on them, the others spill over to on-demand and, with no idle
    environment of that version anywhere, each starts one (a spill-over cold start)."""
    from helpers.functions import wait_provisioned_ready

    lam = versions.lam
    version = versions.publish("provisioned burst")
    drop_burst_alias(function_name, lam)  # left by a run whose kernel died mid-burst (it may bill PC)
    lam.create_alias(FunctionName=function_name, Name=BURST_ALIAS, FunctionVersion=version)
    try:
        if environments > 0:  # 0 (no room for Provisioned Concurrency in the account): every request spills
            lam.put_provisioned_concurrency_config(
                FunctionName=function_name,
                Qualifier=BURST_ALIAS,
                ProvisionedConcurrentExecutions=environments,
            )
            wait_provisioned_ready(function_name, BURST_ALIAS, timeout=900, progress=False)
        return burst(function_name, BURST_ALIAS, concurrency, "burst-provisioned", payload, progress)
    finally:
        drop_burst_alias(function_name, lam)


def drop_burst_alias(function_name: str, lam=None) -> None:
    """Delete the burst's alias and its Provisioned Concurrency if they exist.

    A kernel restarted (or interrupted twice) during a provisioned burst never reaches the ``finally`` that
    deletes them: the alias then keeps billing its Provisioned Concurrency, and the next run's
    ``create_alias`` would fail with ``ResourceConflictException``.
    """
    lam = lam or session.client("lambda")
    try:
        lam.delete_provisioned_concurrency_config(FunctionName=function_name, Qualifier=BURST_ALIAS)
    except (
        lam.exceptions.ProvisionedConcurrencyConfigNotFoundException,
        lam.exceptions.ResourceNotFoundException,
    ):
        pass
    try:
        lam.delete_alias(FunctionName=function_name, Name=BURST_ALIAS)
    except lam.exceptions.ResourceNotFoundException:
        pass


def run(
    function_name: str, payload: Any, params: BenchParams | None = None, *, show_progress: bool = True
) -> list[dict]:
    """Every scenario in turn (the cold-cache starts first, when ``params.cold_cache`` asks for them);
    returns all records."""
    params = params or BenchParams()
    if params.cold_cache and not params.seeder:
        raise ValueError(
            "BenchParams(cold_cache=...) needs seeder=, the seeder function's name "
            "(settings.name('seeder')): it empties the page cache before each of those cold starts."
        )
    progress = Progress(params.total, show_progress)
    try:
        records = []
        if (
            params.cold_cache
        ):  # first: each reads the bundle in again, so the cold starts after find it cached
            from helpers.cold_cache import cold_cache_starts

            records += cold_cache_starts(function_name, params.seeder, params.cold_cache, payload, progress)
        records += forced_cold_starts(function_name, params.cold_starts, payload, progress)
        records += series(
            function_name, params.on_demand_alias, params.warm, "warm", payload, warmup=1, progress=progress
        )
        records += series(
            function_name,
            params.provisioned_alias,
            params.provisioned,
            "provisioned",
            payload,
            progress=progress,
        )
        with FreshVersions(function_name) as versions:
            if not params.burst:
                return records
            records += on_demand_burst(function_name, params.burst, payload, versions, progress)
            records += provisioned_burst(
                function_name, params.burst, params.burst_environments, payload, versions, progress
            )
    finally:
        progress.close()
    return records


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cfg = load_settings()
    return {
        "backend": cfg.backend,
        "region": cfg.region,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "endpoint": session.endpoint_url(cfg) or "AWS",
    }


def results_dir() -> Path:
    return Path(os.environ.get("WORKSHOP_RESULTS_DIR") or REPO_ROOT / "results")


def save(
    records: Iterable[dict],
    params: Any,
    function: dict | None = None,
    out_dir: Path | None = None,
    name: str = "benchmark",
) -> dict:
    """Write ``<name>-<stamp>.csv`` and ``.json`` (records plus metadata); return their paths."""
    records = list(records)
    out_dir = out_dir or results_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    csv_path, json_path = out_dir / f"{name}-{stamp}.csv", out_dir / f"{name}-{stamp}.json"
    columns = FIELDS + [key for key in dict.fromkeys(k for r in records for k in r) if key not in FIELDS]
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows({key: rec.get(key) for key in columns} for rec in records)
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": asdict(params),
        "machine": machine(),
        "function": function or {},
        "records": records,
    }
    json_path.write_text(json.dumps(meta, indent=2, default=str))
    return {"csv": csv_path, "json": json_path}
