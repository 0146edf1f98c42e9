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
from matplotlib.ticker import FuncFormatter

from helpers import bench, cost, stats
from helpers.findings import ms, usd
from helpers.invoke import invoke
from helpers.plot_style import MS_FORMAT, SCENARIO_COLOURS, STYLE, finish

log = logging.getLogger(__name__)

VCPU_MB = 1769  # Lambda: one vCPU per 1,769 MB


@dataclass
class SweepParams:
    """Memory sizes to try, cold starts and warm invocations per size, and the traffic provisioned prices assume."""

    memory_sizes: Sequence[int] = field(default_factory=lambda: (1024, 1769, 3008))
    warm: int = 5
    requests_per_month: float = 10_000_000
    environments: int = 1
    cold: int = 2  # cold starts per size, each on a fresh version: one is no spread

    def __post_init__(self) -> None:
        bad = [m for m in self.memory_sizes if not 128 <= int(m) <= 10240]
        if bad or not self.memory_sizes:
            raise ValueError(
                f"Memory sizes must be 128-10240 MB (Lambda's range), got {list(self.memory_sizes)}."
            )

    @property
    def total(self) -> int:
        return len(self.memory_sizes) * (self.cold + self.warm)


def vcpus(memory_mb: int) -> float:
    """The vCPUs Lambda gives ``memory_mb``: one per 1,769 MB."""
    return memory_mb / VCPU_MB


def threads(memory_mb: int) -> int:
    """The handler's thread count at ``memory_mb`` (``app._threads``: the vCPUs, rounded, at least 1)."""
    return max(1, round(vcpus(memory_mb)))


def run(function_name: str, payload: Any, params: SweepParams, *, show_progress: bool = True) -> list[dict]:
    """Per memory size: ``params.cold`` cold starts, each on a fresh version, then ``params.warm`` warm
    invocations of the last one."""
    progress = bench.Progress(params.total, show_progress)
    records: list[dict] = []
    try:
        with bench.FreshVersions(function_name) as versions:
            for memory in params.memory_sizes:
                for index in range(params.cold):
                    version = versions.publish(f"memory sweep {memory} MB", MemorySize=int(memory))
                    inv = invoke(function_name, payload, version, client=versions.lam)
                    records.append({**bench.record("sweep-cold", index, inv), "memory_mb": int(memory)})
                    progress.step(f"{memory} MB cold")
                for index in range(params.warm):
                    inv = invoke(function_name, payload, version, client=versions.lam)
                    records.append({**bench.record("sweep-warm", index, inv), "memory_mb": int(memory)})
                    progress.step(f"{memory} MB warm")
    finally:
        progress.close()
    return records


def _spread(values: Sequence[float]) -> tuple[float, float, float]:
    return stats.percentile(values, 10), stats.percentile(values, 50), stats.percentile(values, 90)


def summarise(records: Iterable[Mapping[str, Any]], params: SweepParams, arch: str = "x86_64") -> list[dict]:
    """One row per memory size: vCPUs and threads, cold init and warm duration (p10, p50, p90), billed, and
    cost per 1M requests. ``mark`` names the fastest and the cheapest size only where the difference is
    beyond the spread (its p90 below every other size's p10); otherwise no size is marked."""
    ok = [r for r in records if not r.get("error")]
    rows = []
    for memory in params.memory_sizes:
        cold = [r for r in ok if r["memory_mb"] == memory and r["scenario"] == "sweep-cold"]
        warm = [r for r in ok if r["memory_mb"] == memory and r["scenario"] == "sweep-warm"]
        if not warm:
            continue
        low, mid, high = _spread([r["duration_ms"] for r in warm])
        warm_billed = stats.percentile([r["billed_ms"] for r in warm], 50)
        inits = [float(r["init_ms"] or r.get("init_total_ms") or 0) for r in cold if r.get("cold")]
        cold_billed = stats.percentile([r["billed_ms"] for r in cold], 50) if cold else None
        rows.append(
            {
                "memory_mb": int(memory),
                "vcpus": vcpus(memory),
                "threads": threads(memory),
                "cold_init_ms": stats.percentile(inits, 50) if inits else None,
                "cold_init_range": (min(inits), max(inits)) if inits else None,
                "cold_client_ms": stats.percentile([r["client_ms"] for r in cold], 50) if cold else None,
                "warm_duration_ms": mid,
                "warm_p10_ms": low,
                "warm_p90_ms": high,
                "warm_billed_ms": warm_billed,
                "cold_billed_ms": cold_billed,
                "on_demand_warm_per_1m": cost.cost_per_million(warm_billed, memory, arch),
                "provisioned_per_1m": cost.cost_per_million(
                    warm_billed, memory, arch, params.environments, params.requests_per_month
                ),
            }
        )
    if not rows:
        raise ValueError("The sweep recorded no successful warm invocation: read the records' 'error' field.")
    for row in rows:
        row["mark"] = ""
    fastest = min(rows, key=lambda r: r["warm_duration_ms"])
    if all(fastest["warm_p90_ms"] < r["warm_p10_ms"] for r in rows if r is not fastest):
        fastest["mark"] = "fastest"
    cheapest = min(rows, key=lambda r: r["on_demand_warm_per_1m"])
    if all(
        _cost_at(cheapest, "warm_p90_ms", arch) < _cost_at(r, "warm_p10_ms", arch)
        for r in rows
        if r is not cheapest
    ):
        cheapest["mark"] = (cheapest["mark"] + " cheapest").strip()
    return rows


def _cost_at(row: Mapping[str, Any], field: str, arch: str) -> float:
    return cost.cost_per_million(row[field], row["memory_mb"], arch)


def table(rows: Sequence[Mapping[str, Any]], params: SweepParams) -> str:
    """The sweep as a Markdown table: vCPUs and threads, cold init, warm spread, and costs."""
    shown = [
        {
            "memory": f"{r['memory_mb']} MB",
            "vCPUs (threads)": f"{r['vcpus']:.2f} ({r['threads']})",
            "cold init (p50)": ms(r["cold_init_ms"]),
            "warm Duration p10 / p50 / p90": f"{ms(r['warm_p10_ms'])} / {ms(r['warm_duration_ms'])} / {ms(r['warm_p90_ms'])}",
            "on-demand warm, per 1M": usd(r["on_demand_warm_per_1m"]),
            f"provisioned at {params.requests_per_month / 1e6:g}M/month, per 1M": usd(
                r["provisioned_per_1m"]
            ),
            "": r["mark"],
        }
        for r in rows
    ]
    return stats.to_markdown(shown)


def verdict(rows: Sequence[Mapping[str, Any]], cpu_scaled: bool | None, deployed_mb: int = 2048) -> str:
    """What the sweep says, in sentences built from it (Markdown): where more vCPUs bought speed, where the
    differences stay within the spread, and why the function runs at ``deployed_mb``."""
    lines = []
    by_threads: dict[int, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_threads.setdefault(row["threads"], []).append(row)
    for count, group in sorted(by_threads.items()):
        if len(group) < 2:
            continue
        first, last = group[0], group[-1]
        overlap = first["warm_p10_ms"] <= last["warm_p90_ms"] and last["warm_p10_ms"] <= first["warm_p90_ms"]
        lines.append(
            f"- From {first['memory_mb']} to {last['memory_mb']} MB the handler runs {count} thread(s) "
            f"({first['vcpus']:.2f} to {last['vcpus']:.2f} vCPUs): warm Duration {ms(first['warm_duration_ms'])} "
            f"to {ms(last['warm_duration_ms'])}, "
            + (
                "within each other's spread: extra vCPU fractions buy nothing to a single thread."
                if overlap
                else "apart beyond the spread."
            )
        )
    one = [r for r in rows if r["threads"] == 1]
    more = [r for r in rows if r["threads"] > 1]
    if one and more:
        a, b = one[-1], more[0]
        faster = b["warm_p90_ms"] < a["warm_p10_ms"]
        lines.append(
            f"- With {b['threads']} threads at {b['memory_mb']} MB: {ms(b['warm_duration_ms'])} against "
            f"{ms(a['warm_duration_ms'])} at {a['memory_mb']} MB with 1: "
            + (
                "more memory bought more CPU, and PyTorch used it."
                if faster
                else "no gain beyond the spread."
            )
        )
    marked = [r for r in rows if r["mark"]]
    lines.append(
        "- " + "; ".join(f"{r['mark']}: {r['memory_mb']} MB" for r in marked) + "."
        if marked
        else "- No size is fastest or cheapest beyond the spread of these few invocations: rerun with more."
    )
    if not cpu_scaled:
        lines.append(
            "- Where CPU scaling is not enforced (as here), every size gets the same cores, so these durations "
            "say little about Lambda, where CPU grows with memory."
        )
    deployed = next((r for r in rows if r["memory_mb"] == deployed_mb), None)
    if deployed:
        lines.append(
            f"- The function runs at {deployed_mb} MB ({deployed['vcpus']:.2f} vCPUs, {deployed['threads']} thread): "
            "one whole vCPU for its thread, plus headroom over the Max Memory Used of a cold start (import "
            "and weights); its cold start's import is what more vCPUs would shorten most."
        )
    return "\n".join(lines)


def plot(rows: Sequence[Mapping[str, Any]], params: SweepParams, path: str | Path | None = None) -> Figure:
    """Warm Duration (p10 to p90 bars, p50 dots) and cold init (top) and cost per 1M requests (bottom) against
    memory; a star only where a size is fastest or cheapest beyond the spread."""
    memory = [r["memory_mb"] for r in rows]
    with plt.rc_context(STYLE):
        fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 7))
        mid = [r["warm_duration_ms"] for r in rows]
        top.errorbar(
            memory, mid,
            yerr=[[m - r["warm_p10_ms"] for m, r in zip(mid, rows, strict=True)], [r["warm_p90_ms"] - m for m, r in zip(mid, rows, strict=True)]],
            fmt="o-", color=SCENARIO_COLOURS["warm"], capsize=4, label="warm Duration (p10-p90)",
        )  # fmt: skip
        for r in rows:
            top.annotate(f"{r['threads']} thr", (r["memory_mb"], r["warm_p90_ms"]), xytext=(0, 6),
                         textcoords="offset points", ha="center", fontsize=8)  # fmt: skip
        fastest = [r for r in rows if "fastest" in r["mark"]]
        if fastest:
            top.plot([fastest[0]["memory_mb"]], [fastest[0]["warm_duration_ms"]], "*", ms=18, color="black",
                     label="fastest beyond the spread")  # fmt: skip
        top.set_ylim(0, max(r["warm_p90_ms"] for r in rows) * 1.3)
        top.yaxis.set_major_formatter(MS_FORMAT)
        top.set_ylabel("warm Duration (ms)")
        top.set_title("Memory sweep: warm duration and cost per memory size")
        top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        bottom.plot(memory, [r["on_demand_warm_per_1m"] for r in rows], "o-", color=SCENARIO_COLOURS["warm"],
                    label="on-demand, warm")  # fmt: skip
        bottom.plot(memory, [r["provisioned_per_1m"] for r in rows], "s--", color=SCENARIO_COLOURS["provisioned"],
                    label=f"provisioned ({params.environments} env) at {params.requests_per_month / 1e6:g}M req/month")  # fmt: skip
        cheapest = [r for r in rows if "cheapest" in r["mark"]]
        if cheapest:
            bottom.plot([cheapest[0]["memory_mb"]], [cheapest[0]["on_demand_warm_per_1m"]], "*", ms=18,
                        color="black", label="cheapest beyond the spread")  # fmt: skip
        costs = [r["on_demand_warm_per_1m"] for r in rows] + [r["provisioned_per_1m"] for r in rows]
        bottom.set_ylim(0, max(costs) * 1.15)
        bottom.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"${value:,.2f}"))
        bottom.set_ylabel("USD per 1M requests")
        bottom.set_xlabel("memory (MB)")
        bottom.set_xticks(memory, [str(m) for m in memory])
        bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
    return finish(fig, path)
