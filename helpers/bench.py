"""The benchmark: forced cold starts, warm and provisioned series, and bursts, recorded per invocation.

Every invocation becomes one record: the scenario, the client round trip, every REPORT field, the
executed version and the initialisation type the function reports. ``save`` writes the records as
CSV and JSON with the parameters, the backend, the date and the machine.

A forced cold start changes an environment variable on ``$LATEST`` and publishes a new version, then
invokes that version once: a version that has never run has no environment yet, on AWS and on the
local backend alike. Those versions are deleted and the configuration restored afterwards.
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

from helpers import cost, session, stats
from helpers.config import REPO_ROOT, load_settings
from helpers.invoke import Invocation, fields, invoke

log = logging.getLogger(__name__)

SCENARIOS = ("cold", "warm", "provisioned", "burst-on-demand", "burst-provisioned")
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
    "status",
    "error",
    "request_id",
]


@dataclass
class BenchParams:
    """How many invocations of each scenario (the notebook's parameters cell sets these)."""

    cold_starts: int = 5
    warm: int = 30
    provisioned: int = 30
    burst: int = 4
    on_demand_alias: str = "on-demand"
    provisioned_alias: str = "provisioned"

    @property
    def total(self) -> int:
        return self.cold_starts + 1 + self.warm + self.provisioned + 2 * self.burst


def record(scenario: str, index: int, inv: Invocation) -> dict[str, Any]:
    """One benchmark record from an invocation."""
    payload = inv.payload if isinstance(inv.payload, dict) else {}
    error = None
    if not inv.ok:
        error = f"{payload.get('errorType', inv.function_error)}: {payload.get('errorMessage', '')}".strip()
    elif "error" in payload:
        error = f"{payload['error'].get('type')}: {payload['error'].get('message')}"
    return {
        "scenario": scenario,
        "index": index,
        "client_ms": round(inv.client_ms, 3),
        **fields(inv.report),
        "version": inv.executed_version,
        "init_type": payload.get("init_type"),
        "error": error,
        "request_id": inv.request_id,
    }


class _Progress:
    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="invocation")
        self.lock = threading.Lock()

    def step(self, label: str) -> None:
        if self.bar is not None:
            with self.lock:
                self.bar.set_description(label)
                self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def forced_cold_starts(
    function_name: str, rounds: int, payload: Any, progress: _Progress | None = None
) -> list[dict]:
    """``rounds`` guaranteed cold starts, each on a freshly published version."""
    lam = session.client("lambda")
    original = lam.get_function_configuration(FunctionName=function_name)
    variables = dict(original.get("Environment", {}).get("Variables", {}))
    published: list[str] = []
    records = []
    try:
        for index in range(rounds):
            stamp = f"{time.time_ns()}-{index}"
            lam.update_function_configuration(
                FunctionName=function_name,
                Environment={"Variables": {**variables, "BENCH_COLD_START": stamp}},
            )
            _wait_updated(lam, function_name)
            version = lam.publish_version(
                FunctionName=function_name, Description=f"benchmark cold start {stamp}"
            )["Version"]
            published.append(version)
            records.append(record("cold", index, invoke(function_name, payload, version, client=lam)))
            if progress:
                progress.step("cold starts")
    finally:
        for version in published:
            lam.delete_function(FunctionName=function_name, Qualifier=version)
        lam.update_function_configuration(FunctionName=function_name, Environment={"Variables": variables})
        _wait_updated(lam, function_name)
    return records


def _wait_updated(lam, function_name: str) -> None:
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=function_name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )


def series(
    function_name: str,
    qualifier: str,
    count: int,
    scenario: str,
    payload: Any,
    *,
    warmup: int = 0,
    progress: _Progress | None = None,
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
    progress: _Progress | None = None,
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


def run(
    function_name: str, payload: Any, params: BenchParams | None = None, *, show_progress: bool = True
) -> list[dict]:
    """Every scenario in turn; returns all records."""
    params = params or BenchParams()
    progress = _Progress(params.total, show_progress)
    try:
        records = forced_cold_starts(function_name, params.cold_starts, payload, progress)
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
        records += burst(
            function_name, params.on_demand_alias, params.burst, "burst-on-demand", payload, progress
        )
        records += burst(
            function_name, params.provisioned_alias, params.burst, "burst-provisioned", payload, progress
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
    records: Iterable[dict], params: BenchParams, function: dict | None = None, out_dir: Path | None = None
) -> dict:
    """Write ``benchmark-<stamp>.csv`` and ``.json`` (records plus metadata); return their paths."""
    records = list(records)
    out_dir = out_dir or results_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    csv_path, json_path = out_dir / f"benchmark-{stamp}.csv", out_dir / f"benchmark-{stamp}.json"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows({key: rec.get(key) for key in FIELDS} for rec in records)
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": asdict(params),
        "machine": machine(),
        "function": function or {},
        "records": records,
    }
    json_path.write_text(json.dumps(meta, indent=2, default=str))
    return {"csv": csv_path, "json": json_path}


LOCAL_CAVEATS = (
    "Measured on the embedded local AWS, which differs from Lambda in ways that matter here:",
    "- CPU does not scale with the memory setting: every environment gets this machine's cores, so "
    "durations do not shrink or grow with MemorySize as they do on Lambda.",
    "- 'EFS' is a local folder on this disk (warm page cache): no NFS latency, so a real cold start that "
    "imports PyTorch from EFS is slower than measured here.",
    "- No VPC, no network interfaces and no network isolation; no cost is incurred.",
    "Timings, init vs handler split and the pipeline are real; absolute numbers are this machine's.",
)


def medians(records: Iterable[dict]) -> dict[str, dict[str, float | None]]:
    """Per scenario, the median client latency, duration, init and billed duration of successful calls."""
    out: dict[str, dict[str, float | None]] = {}
    ok = [r for r in records if not r.get("error")]
    for scenario in dict.fromkeys(r["scenario"] for r in ok):
        rows = [r for r in ok if r["scenario"] == scenario]
        out[scenario] = {
            field: (
                stats.percentile(vals, 50)
                if (vals := [r[field] for r in rows if r.get(field) is not None])
                else None
            )
            for field in ("client_ms", "duration_ms", "init_ms", "billed_ms")
        }
    return out


def conclusion(records: Iterable[dict], memory_mb: int, arch: str, environments: int) -> str:
    """What the measured numbers say, in sentences built from them (nothing here is pre-written)."""
    records = list(records)
    m = medians(records)
    failed = sum(1 for r in records if r.get("error"))
    lines = []
    cold, warm, prov = m.get("cold"), m.get("warm"), m.get("provisioned")
    if cold and prov:
        ratio = cold["client_ms"] / prov["client_ms"]
        init = (
            f" of which {cold['init_ms']:.0f} ms was init (importing the framework and loading the model)"
            if cold["init_ms"]
            else ""
        )
        verdict = (
            f"{ratio:.1f}x faster"
            if ratio >= 1
            else f"{1 / ratio:.1f}x SLOWER (unexpected: look at the records)"
        )
        lines.append(
            f"A cold start took {cold['client_ms']:.0f} ms at the median, seen from the client,{init}; "
            f"a provisioned invocation took {prov['client_ms']:.0f} ms: provisioned was {verdict}."
        )
    if warm and prov:
        gap = warm["client_ms"] - prov["client_ms"]
        if abs(gap) <= 0.2 * prov["client_ms"]:
            lines.append(
                f"Warm on-demand ({warm['client_ms']:.0f} ms) and provisioned ({prov['client_ms']:.0f} ms) invocations "
                "are alike: Provisioned Concurrency removes cold starts, it does not make a warm environment faster."
            )
        else:
            lines.append(
                f"Warm on-demand ({warm['client_ms']:.0f} ms) and provisioned ({prov['client_ms']:.0f} ms) invocations "
                f"differ by {abs(gap):.0f} ms at the median. Provisioned Concurrency does not make a warm environment "
                "faster, so this gap comes from elsewhere (other load on the machine, or too few invocations): "
                "compare the p90s in the table, or run the benchmark again."
            )
    spill = [r for r in records if r["scenario"] == "burst-provisioned" and r.get("init_type") == "on-demand"]
    bursts = [r for r in records if r["scenario"] == "burst-provisioned"]
    if bursts:
        cold_spill = sum(1 for r in spill if r.get("init_ms") is not None)
        text = (
            f"In a burst of {len(bursts)} concurrent requests on the provisioned alias with {environments} "
            f"environment(s), {len(spill)} spilled over to on-demand environments"
        )
        if spill:
            text += (
                f": {cold_spill} had to start one (a cold start), {len(spill) - cold_spill} found an idle on-demand "
                "environment of the same version left by earlier traffic."
            )
        lines.append(text + ("" if spill else "."))
    if warm and prov and warm["billed_ms"] and prov["billed_ms"]:
        rate = cost.break_even_requests_per_month(
            warm["billed_ms"], memory_mb, arch, environments, billed_ms_provisioned=prov["billed_ms"]
        )
        capacity = cost.max_requests_per_month(prov["billed_ms"], environments)
        if rate is None:
            lines.append("At these billed durations Provisioned Concurrency never costs less than on-demand.")
        else:
            lines.append(
                f"With {environments} x {memory_mb} MB ({arch}), Provisioned Concurrency costs less than on-demand above "
                f"{rate:,.0f} requests a month ({rate / (730 * 3600):.1f} per second on average), "
                f"{rate / capacity:.0%} of what those environments can serve; below that, you pay for "
                "the absence of cold starts."
            )
    if failed:
        lines.append(
            f"{failed} invocation(s) failed and are left out of these numbers: read their 'error' field."
        )
    return "\n".join(lines)
