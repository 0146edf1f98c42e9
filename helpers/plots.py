"""The benchmark's plots: latency by scenario, where the time goes, latency CDF, cost vs request rate.

Each function takes plain benchmark records (one dict per invocation, as the runner writes them:
``scenario``, ``client_ms``, ``duration_ms``, ``init_ms``, ``cold``, ``error``...) or cost parameters,
returns a matplotlib ``Figure`` and, given ``path``, also saves it as a PNG. Failed invocations
(``error`` set) are left out of the latency plots. The shared style lives in ``plot_style``, the time
breakdown (and the cold-cache comparison) in ``breakdown``; both are re-exported here for the notebooks.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator

from helpers.breakdown import PHASES, breakdown_groups, cold_cache_phases, invocation_parts, time_breakdown
from helpers.cost import (
    HOURS_PER_MONTH,
    ColdMix,
    break_even_requests_per_month,
    max_requests_per_month,
    monthly_cost_on_demand,
    monthly_cost_provisioned,
)
from helpers.plot_style import (
    DPI,
    MS_FORMAT,
    SCENARIO_COLOURS,
    STYLE,
    client_ms_by_scenario,
    finish,
    fmt_count,
    fmt_dollars,
    fmt_envs,
    fmt_ms,
    scenario_colour,
)
from helpers.stats import MIN_N_FOR_P99

logger = logging.getLogger(__name__)

MIN_BOX = 5  # fewer points than this get no box: its quartiles would be two or three dots

__all__ = [
    "DPI",
    "PHASES",
    "SCENARIO_COLOURS",
    "breakdown_groups",
    "cold_cache_phases",
    "cost_vs_rate",
    "invocation_parts",
    "latency_by_scenario",
    "latency_cdf",
    "predictions",
    "scenario_colour",
    "time_breakdown",
]


def _wrap(name: str) -> str:
    """A long scenario name on two lines (``burst-\\non-demand``), so neighbouring tick labels never meet."""
    if len(name) <= 11:
        return name
    cut = min((name.find(sep) for sep in "- " if sep in name), default=-1)
    return name if cut < 0 else f"{name[: cut + 1].rstrip()}\n{name[cut + 1 :]}"


def latency_by_scenario(records: Iterable[Mapping[str, Any]], path: str | Path | None = None) -> Figure:
    """Client round-trip latency per scenario: every invocation as a dot, with a box (quartiles, median)
    where there are at least ``MIN_BOX`` of them and a median tick where there are fewer.

    In the bursts, where some invocations started an environment and others did not, the cold ones are
    ringed: the spill-over cold starts of the provisioned burst show at a glance.
    """
    records = list(records)
    groups = client_ms_by_scenario(records)
    rings: list[tuple[float, float]] = []
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots()
        positions = range(1, len(groups) + 1)
        boxed = [(p, v) for p, v in zip(positions, groups.values(), strict=True) if len(v) >= MIN_BOX]
        boxes = ax.boxplot(
            [v for _, v in boxed],
            positions=[p for p, _ in boxed],
            widths=0.55,
            showfliers=False,
            patch_artist=True,
            medianprops={"color": "black", "linewidth": 1.5},
        ) if boxed else {"boxes": []}  # fmt: skip
        box_at = dict(zip([p for p, _ in boxed], boxes["boxes"], strict=True))
        jitter = random.Random(0)
        for position, (scenario, values) in zip(positions, groups.items(), strict=True):
            colour = scenario_colour(scenario, list(groups))
            if position in box_at:
                box_at[position].set(facecolor=colour, alpha=0.35, edgecolor=colour)
            else:  # a box of 2 or 3 points suggests quartiles that are not there: the median as a tick
                median = float(np.median(values))
                ax.plot([position - 0.25, position + 0.25], [median] * 2, color="black", linewidth=1.5)
            xs = [position + jitter.uniform(-0.18, 0.18) for _ in values]
            ax.scatter(xs, values, s=14, color=colour, alpha=0.8, edgecolors="none", zorder=3)
            if scenario.startswith("burst"):
                rows = [r for r in records if not r.get("error") and r["scenario"] == scenario]
                rings += [(x, v) for x, v, r in zip(xs, values, rows, strict=True) if r.get("cold")]
        if rings:
            ax.scatter(
                *zip(*rings, strict=True),
                s=70,
                facecolors="none",
                edgecolors="black",
                linewidths=1.0,
                zorder=4,
                label="in a burst: started an environment (cold)",
            )
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.34), fontsize=9)  # under the 4-line labels
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(MS_FORMAT)
        ax.set_xticks(  # the median under each box: a note beside it ran into the next box
            list(positions),
            [
                f"{_wrap(name)}\n(n={len(values)})\np50 {fmt_ms(float(np.median(values)))}"
                for name, values in groups.items()
            ],
        )
        ax.set_xlim(0.4, len(groups) + 0.6)
        ax.set_xlabel("scenario")
        ax.set_ylabel("client round trip (ms, log scale)")
        ax.set_title("Client latency by scenario")
        ax.grid(axis="x", visible=False)
        fig.tight_layout()
    return finish(fig, path)


def latency_cdf(records: Iterable[Mapping[str, Any]], path: str | Path | None = None) -> Figure:
    """Cumulative distribution of client latency per scenario (log x), with p50/p90/p99 guides."""
    groups = client_ms_by_scenario(records)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots()
        for scenario, values in groups.items():
            ordered = np.sort(values)
            percent = np.arange(0, len(ordered) + 1) / len(ordered) * 100  # starts at 0 below the fastest
            ax.step(
                np.concatenate([ordered[:1], ordered]),
                percent,
                where="post",
                linewidth=2,
                color=scenario_colour(scenario, list(groups)),
                label=f"{scenario} (n={len(values)})",
            )
        levels = (50, 90, 99) if max(len(v) for v in groups.values()) >= MIN_N_FOR_P99 else (50, 90)
        for level in levels:
            ax.axhline(level, color="#777777", linewidth=0.8, linestyle=":")
            ax.annotate(
                f"p{level}",
                (1.0, level),
                xycoords=("axes fraction", "data"),
                xytext=(3, -3),
                textcoords="offset points",
                fontsize=9,
                color="#555555",
            )
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(MS_FORMAT)
        ax.set_ylim(0, 101)
        ax.set_xlabel("client round trip (ms, log scale)")
        ax.set_ylabel("invocations at or below (%)")
        ax.set_title("Client latency, cumulative")
        ax.legend(loc="upper left", bbox_to_anchor=(1.06, 1.0))  # beside the axes, never over a curve
        fig.tight_layout()
    return finish(fig, path)


def _rate(per_second: float) -> str:
    return f"{per_second:.1f}" if per_second >= 0.1 else f"{per_second:.2g}"


def cost_vs_rate(
    billed_ms: float,
    memory_mb: int,
    arch: str = "x86_64",
    environments: int = 1,
    billed_ms_provisioned: float | None = None,
    path: str | Path | None = None,
    cold: ColdMix | None = None,
) -> Figure:
    """Monthly cost against requests per month, on-demand vs ``environments`` provisioned (log-log).

    With ``cold``, on-demand is priced with its share of cold starts (their init billed, their EFS reads
    priced) and the warm-only line is drawn dashed beside it. The break-even rate is marked with a vertical
    line; rates beyond what the provisioned environments can serve back to back are shaded (the model
    assumes no spill-over there).
    """
    provisioned_ms = billed_ms if billed_ms_provisioned is None else billed_ms_provisioned
    warm_ms = billed_ms
    efs_gb = 0.0
    if cold is not None:
        billed_ms, efs_gb = cold.billed_ms, cold.efs_read_gb
    break_even = break_even_requests_per_month(
        billed_ms, memory_mb, arch, environments, billed_ms_provisioned=provisioned_ms, efs_read_gb=efs_gb
    )
    capacity = max_requests_per_month(provisioned_ms, environments)
    centre = break_even if break_even is not None else 1e6
    low = 10 ** math.floor(math.log10(centre) - 3)
    high = max(centre, min(capacity, centre * 100)) * 3  # a little past what the environments can serve
    rates = np.logspace(math.log10(low), math.log10(high), 200)
    on_demand = [monthly_cost_on_demand(r, billed_ms, memory_mb, arch, efs_gb) for r in rates]
    warm_only = [monthly_cost_on_demand(r, warm_ms, memory_mb, arch) for r in rates]
    provisioned = [
        monthly_cost_provisioned(r, provisioned_ms, memory_mb, arch, environments)
        for r in rates
        if r <= capacity
    ]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots()
        label = f"on-demand ({fmt_ms(billed_ms)} billed)"
        if cold is not None:
            label = (
                f"on-demand, {cold.share:.0%} cold (init and {cold.read_bytes / 1e9:.2f} GB EFS read each)"
            )
            ax.plot(rates, warm_only, color=SCENARIO_COLOURS["warm"], linewidth=1.2, linestyle=":",
                    label=f"on-demand, never cold ({fmt_ms(warm_ms)} billed)")  # fmt: skip
        ax.plot(rates, on_demand, color=SCENARIO_COLOURS["warm"], linewidth=2.2, label=label)
        ax.plot(
            rates[: len(provisioned)],
            provisioned,
            color=SCENARIO_COLOURS["provisioned"],
            linewidth=2.2,
            label=f"provisioned, {fmt_envs(environments)} ({fmt_ms(provisioned_ms)} billed)",
        )
        if capacity < high:
            ax.axvspan(
                capacity,
                high,
                color="#DDDDDD",
                alpha=0.6,
                linewidth=0,
                label=f"beyond what {fmt_envs(environments)} can serve",
            )
        if break_even is not None:
            cost = monthly_cost_on_demand(break_even, billed_ms, memory_mb, arch, efs_gb)
            seconds = HOURS_PER_MONTH * 3600
            ax.axvline(break_even, color="#333333", linestyle="--", linewidth=1.2)
            ax.plot([break_even], [cost], "o", color="#333333")
            note = (
                f"break-even\n{fmt_count(break_even)} requests/month\n(~{_rate(break_even / seconds)} req/s), "
                f"${cost:,.2f}/month\n= provisioned busy {100 * break_even / capacity:.2g}% of the time"
            )
            if break_even > capacity:  # an environment cannot be busy more than all the time
                note = (
                    f"break-even at {fmt_count(break_even)} requests/month:\n"
                    f"more than {fmt_envs(environments)} can serve:\nprovisioned never costs less here"
                )
            ax.annotate(
                note,
                (break_even, cost),
                xytext=(0.97, 0.05),  # the lower right, under the on-demand line: clear of both curves
                textcoords="axes fraction",
                ha="right",
                va="bottom",
                fontsize=9,
                arrowprops={"arrowstyle": "->", "color": "#333333"},
                bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "#999999"},
            )
        else:
            ax.text(
                0.98,
                0.04,
                "no break-even: provisioned never costs less here",
                transform=ax.transAxes,
                fontsize=9,
                ha="right",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(low, high)
        ax.xaxis.set_major_locator(LogLocator(base=10))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: fmt_count(value)))
        shown = on_demand + provisioned + (warm_only if cold is not None else [])
        ax.set_ylim(min(shown) / 1.5, max(shown) * 1.5)  # the data, no more
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: fmt_dollars(value)))
        ax.set_xlabel("requests per month (log scale)")
        ax.set_ylabel("cost per month (USD, log scale)")
        ax.set_title(f"Monthly cost vs request rate ({arch}, {memory_mb} MB)")
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2
        )  # below the axes, clear of the lines
        fig.tight_layout()
    return finish(fig, path)


def predictions(image_bytes: bytes, result: Mapping[str, Any], path: str | Path | None = None) -> Figure:
    """The input image beside the function's top-k predictions (a horizontal bar per class).

    ``result`` is the inference function's response; the title names where its weights came from.
    """
    import io

    from PIL import Image

    preds = list(result["predictions"])[::-1]
    source = result.get("model", {}).get("weights_source", "")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [1, 1.4]})
    left.imshow(Image.open(io.BytesIO(image_bytes)))
    left.axis("off")
    right.barh([p["label"] for p in preds], [p["probability"] for p in preds], color="#0072B2")
    right.set_xlim(0, 1)
    right.set_xlabel("probability")
    for bar, pred in zip(right.patches, preds, strict=True):
        right.text(
            bar.get_width() + 0.01,
            bar.get_y() + bar.get_height() / 2,
            f"{pred['probability']:.1%}",
            va="center",
        )
    fig.suptitle(f"Top-{len(preds)} predictions (weights: {source or 'unknown'})")
    fig.tight_layout()
    return finish(fig, path)
