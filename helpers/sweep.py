"""The memory sweep: duration and cost per memory size, cold and warm, on-demand and provisioned.

The question AWS Lambda Power Tuning answers: for each MemorySize, publish a fresh version with that
memory (so its first invocation is a real cold start), invoke it once cold and a few times warm, and
price both options per million requests. Lambda gives CPU in proportion to memory (one vCPU per
1,769 MB, https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html), so more memory can
be faster *and* cheaper until the code cannot use more CPU. A provisioned environment runs a request
as fast as a warm on-demand one (the benchmark shows it), so provisioned prices use the warm durations.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from helpers import bench, cost, stats
from helpers.findings import ms, usd
from helpers.invoke import invoke
from helpers.plot_style import MS_FORMAT, SCENARIO_COLOURS, STYLE, finish

log = logging.getLogger(__name__)


@dataclass
class SweepParams:
    """Memory sizes to try, warm invocations per size, and the traffic provisioned prices assume."""

    memory_sizes: Sequence[int] = field(default_factory=lambda: (1024, 1769, 3008))
    warm: int = 5
    requests_per_month: float = 10_000_000
    environments: int = 1

    def __post_init__(self) -> None:
        bad = [m for m in self.memory_sizes if not 128 <= int(m) <= 10240]
        if bad or not self.memory_sizes:
            raise ValueError(
                f"Memory sizes must be 128-10240 MB (Lambda's range), got {list(self.memory_sizes)}."
            )

    @property
    def total(self) -> int:
        return len(self.memory_sizes) * (1 + self.warm)


def run(function_name: str, payload: Any, params: SweepParams, *, show_progress: bool = True) -> list[dict]:
    """One cold and ``params.warm`` warm invocations per memory size, each size on a fresh version."""
    progress = bench.Progress(params.total, show_progress)
    records: list[dict] = []
    try:
        with bench.FreshVersions(function_name) as versions:
            for memory in params.memory_sizes:
                version = versions.publish(f"memory sweep {memory} MB", MemorySize=int(memory))
                inv = invoke(function_name, payload, version, client=versions.lam)
                records.append({**bench.record("sweep-cold", 0, inv), "memory_mb": int(memory)})
                progress.step(f"{memory} MB cold")
                for index in range(params.warm):
                    inv = invoke(function_name, payload, version, client=versions.lam)
                    records.append({**bench.record("sweep-warm", index, inv), "memory_mb": int(memory)})
                    progress.step(f"{memory} MB warm")
    finally:
        progress.close()
    return records


def summarise(records: Iterable[Mapping[str, Any]], params: SweepParams, arch: str = "x86_64") -> list[dict]:
    """One row per memory size: cold client time, warm duration, billed, and cost per 1M requests."""
    ok = [r for r in records if not r.get("error")]
    rows = []
    for memory in params.memory_sizes:
        cold = [r for r in ok if r["memory_mb"] == memory and r["scenario"] == "sweep-cold"]
        warm = [r for r in ok if r["memory_mb"] == memory and r["scenario"] == "sweep-warm"]
        if not warm:
            continue
        warm_billed = stats.percentile([r["billed_ms"] for r in warm], 50)
        cold_billed = stats.percentile([r["billed_ms"] for r in cold], 50) if cold else None
        rows.append(
            {
                "memory_mb": int(memory),
                "cold_client_ms": stats.percentile([r["client_ms"] for r in cold], 50) if cold else None,
                "warm_duration_ms": stats.percentile([r["duration_ms"] for r in warm], 50),
                "warm_billed_ms": warm_billed,
                "on_demand_warm_per_1m": cost.cost_per_million(warm_billed, memory, arch),
                "on_demand_cold_per_1m": cost.cost_per_million(cold_billed, memory, arch)
                if cold_billed
                else None,
                "provisioned_per_1m": cost.cost_per_million(
                    warm_billed, memory, arch, params.environments, params.requests_per_month
                ),
            }
        )
    if not rows:
        raise ValueError("The sweep recorded no successful warm invocation: read the records' 'error' field.")
    fastest = min(rows, key=lambda r: r["warm_duration_ms"])
    cheapest = min(rows, key=lambda r: r["on_demand_warm_per_1m"])
    for row in rows:
        row["mark"] = " ".join(
            word for word, best in (("fastest", row is fastest), ("cheapest", row is cheapest)) if best
        )
    return rows


def table(rows: Sequence[Mapping[str, Any]], params: SweepParams) -> str:
    """The sweep as a Markdown table (costs escaped for Markdown)."""
    shown = [
        {
            "memory": f"{r['memory_mb']} MB",
            "cold (client)": ms(r["cold_client_ms"]),
            "warm (Duration)": ms(r["warm_duration_ms"]),
            "on-demand warm, per 1M": usd(r["on_demand_warm_per_1m"]),
            "on-demand all cold, per 1M": usd(r["on_demand_cold_per_1m"])
            if r["on_demand_cold_per_1m"]
            else "–",
            f"provisioned at {params.requests_per_month / 1e6:g}M/month, per 1M": usd(
                r["provisioned_per_1m"]
            ),
            "": r["mark"],
        }
        for r in rows
    ]
    return stats.to_markdown(shown)


def verdict(rows: Sequence[Mapping[str, Any]], cpu_scaled: bool | None) -> str:
    """What the sweep says, in sentences built from it (Markdown)."""
    fastest = next(r for r in rows if "fastest" in r["mark"])
    cheapest = next(r for r in rows if "cheapest" in r["mark"])
    smallest, largest = rows[0], rows[-1]
    trend = largest["warm_duration_ms"] / smallest["warm_duration_ms"]
    moved = "fell" if trend < 0.8 else "rose" if trend > 1.25 else "hardly changed"
    text = (
        f"Fastest warm: **{fastest['memory_mb']} MB** ({ms(fastest['warm_duration_ms'])}). Cheapest on demand: "
        f"**{cheapest['memory_mb']} MB** ({usd(cheapest['on_demand_warm_per_1m'])} per million requests). "
        f"From {smallest['memory_mb']} to {largest['memory_mb']} MB the warm Duration {moved} "
        f"(x{trend:.2f})."
    )
    if not cpu_scaled:
        text += (
            " Where CPU scaling is not enforced (as here), every size gets the same cores, so durations should "
            "hardly change and the smallest size that fits the model is cheapest; on Lambda, CPU grows with "
            "memory."
        )
    elif moved == "rose":
        text += (
            " More memory made it slower: a handler that runs more threads than it has whole vCPUs (2 threads "
            "on 1.16 vCPU at 2048 MB) spends its CPU quota spinning in OpenMP's thread barriers. One thread per "
            "whole vCPU, or `OMP_WAIT_POLICY=PASSIVE`, avoids it; rerun on a quiet machine before trusting "
            "small differences."
        )
    elif moved == "fell":
        text += " More memory bought more CPU, and PyTorch used it."
    return text


def plot(rows: Sequence[Mapping[str, Any]], params: SweepParams, path: str | Path | None = None) -> Figure:
    """Duration (top) and cost per 1M requests (bottom) against memory; fastest and cheapest marked."""
    memory = [r["memory_mb"] for r in rows]
    fastest = next(r for r in rows if "fastest" in r["mark"])
    cheapest = next(r for r in rows if "cheapest" in r["mark"])
    with plt.rc_context(STYLE):
        fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 7))
        cold = [(r["memory_mb"], r["cold_client_ms"]) for r in rows if r["cold_client_ms"]]
        if cold:
            top.plot(
                *zip(*cold, strict=True), "o-", color=SCENARIO_COLOURS["cold"], label="cold start (client)"
            )
        top.plot(
            memory,
            [r["warm_duration_ms"] for r in rows],
            "o-",
            color=SCENARIO_COLOURS["warm"],
            label="warm (Duration)",
        )
        top.plot(
            [fastest["memory_mb"]],
            [fastest["warm_duration_ms"]],
            "*",
            ms=18,
            color="black",
            label="fastest warm",
        )
        top.set_yscale("log")
        top.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        top.yaxis.set_major_formatter(MS_FORMAT)
        top.yaxis.set_minor_formatter(NullFormatter())
        top.set_ylabel("ms (log scale)")
        top.set_title("Memory sweep: duration and cost per memory size")
        top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        bottom.plot(
            memory,
            [r["on_demand_warm_per_1m"] for r in rows],
            "o-",
            color=SCENARIO_COLOURS["warm"],
            label="on-demand, warm",
        )
        bottom.plot(
            memory,
            [r["provisioned_per_1m"] for r in rows],
            "s--",
            color=SCENARIO_COLOURS["provisioned"],
            label=f"provisioned ({params.environments} env) at {params.requests_per_month / 1e6:g}M req/month",
        )
        bottom.plot(
            [cheapest["memory_mb"]],
            [cheapest["on_demand_warm_per_1m"]],
            "*",
            ms=18,
            color="black",
            label="cheapest on demand",
        )
        costs = [r["on_demand_warm_per_1m"] for r in rows] + [r["provisioned_per_1m"] for r in rows]
        bottom.set_ylim(0, max(costs) * 1.15)
        bottom.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"${value:,.2f}"))
        bottom.set_ylabel("USD per 1M requests")
        bottom.set_xlabel("memory (MB)")
        bottom.set_xticks(memory, [str(m) for m in memory])
        bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
    return finish(fig, path)
