"""The benchmark's four plots: latency by scenario, where the time goes, latency CDF, cost vs request rate.

Each function takes plain benchmark records (one dict per invocation, as the runner writes them:
``scenario``, ``client_ms``, ``duration_ms``, ``init_ms``, ``error``...) or cost parameters, returns a
matplotlib ``Figure`` and, given ``path``, also saves it as a PNG at 120 dpi. A scenario has the same
colour in every plot. Failed invocations (``error`` set) are left out of the latency plots.

Figures are closed in pyplot before they are returned, so a notebook cell that ends with one shows it
exactly once and nothing accumulates in pyplot's figure list.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator

from helpers.cost import (
    HOURS_PER_MONTH,
    break_even_requests_per_month,
    max_requests_per_month,
    monthly_cost_on_demand,
    monthly_cost_provisioned,
)

logger = logging.getLogger(__name__)

DPI = 120
#: Scenario colours, in plotting order (Okabe-Ito, safe for colour-blind readers): on-demand warm tones,
#: provisioned cool ones.
SCENARIO_COLOURS = {
    "cold": "#D55E00",
    "warm": "#E69F00",
    "provisioned": "#009E73",
    "burst-on-demand": "#CC79A7",
    "burst-provisioned": "#56B4E9",
}
_OTHER_COLOURS = ("#0072B2", "#F0E442", "#999999", "#000000")
_PART_COLOURS = {"init": "#B2182B", "handler": "#2166AC", "overhead": "#BABABA"}
_STYLE = {
    "figure.figsize": (9, 5),
    "axes.titlesize": 14,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linestyle": "-",
}
_MS_FORMAT = FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}")


def scenario_colour(scenario: str, order: Sequence[str] = ()) -> str:
    """The colour of ``scenario``: fixed for the benchmark's scenarios, from a spare palette otherwise."""
    if scenario in SCENARIO_COLOURS:
        return SCENARIO_COLOURS[scenario]
    others = [name for name in order if name not in SCENARIO_COLOURS]
    index = others.index(scenario) if scenario in others else 0
    return _OTHER_COLOURS[index % len(_OTHER_COLOURS)]


def latency_by_scenario(records: Iterable[Mapping[str, Any]], path: str | Path | None = None) -> Figure:
    """Client round-trip latency per scenario: a box (quartiles, median) over every invocation as a dot."""
    groups = _client_ms_by_scenario(records)
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots()
        positions = range(1, len(groups) + 1)
        boxes = ax.boxplot(
            list(groups.values()),
            positions=list(positions),
            widths=0.55,
            showfliers=False,
            patch_artist=True,
            medianprops={"color": "black", "linewidth": 1.5},
        )
        jitter = random.Random(0)
        for position, (scenario, values), box in zip(positions, groups.items(), boxes["boxes"], strict=True):
            colour = scenario_colour(scenario, list(groups))
            box.set(facecolor=colour, alpha=0.35, edgecolor=colour)
            xs = [position + jitter.uniform(-0.18, 0.18) for _ in values]
            ax.scatter(xs, values, s=14, color=colour, alpha=0.8, edgecolors="none", zorder=3)
            median = float(np.median(values))
            ax.annotate(
                f"p50 {_ms(median)}",
                (position + 0.3, median),
                va="center",
                fontsize=9,
                color="#333333",
            )
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(_MS_FORMAT)
        ax.set_xticks(list(positions), [f"{name}\n(n={len(values)})" for name, values in groups.items()])
        ax.set_xlim(0.4, len(groups) + 0.9)
        ax.set_xlabel("scenario")
        ax.set_ylabel("client round trip (ms, log scale)")
        ax.set_title("Client latency by scenario")
        ax.grid(axis="x", visible=False)
        fig.tight_layout()
    return _finish(fig, path)


def time_breakdown(records: Iterable[Mapping[str, Any]], path: str | Path | None = None) -> Figure:
    """Median time per scenario split into init, handler duration and overhead, stacked.

    Per invocation, init is ``init_ms`` (0 when absent), handler is ``duration_ms`` and overhead is
    ``client_ms - duration_ms - init_ms`` (network, Lambda's front end, environment placement; clipped
    at 0). Each part is the median over the scenario's invocations, so a stack need not equal the
    median client latency, which is printed above it.
    """
    ok = _successful(records)
    scenarios = _scenario_order(ok)
    parts: dict[str, list[float]] = {"init": [], "handler": [], "overhead": []}
    client_medians = []
    for scenario in scenarios:
        rows = [r for r in ok if r["scenario"] == scenario]
        inits = [r.get("init_ms") or 0.0 for r in rows]
        handlers = [r["duration_ms"] for r in rows]
        overheads = [max(r["client_ms"] - d - i, 0.0) for r, d, i in zip(rows, handlers, inits, strict=True)]
        parts["init"].append(float(np.median(inits)))
        parts["handler"].append(float(np.median(handlers)))
        parts["overhead"].append(float(np.median(overheads)))
        client_medians.append(float(np.median([r["client_ms"] for r in rows])))
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots()
        bottom = np.zeros(len(scenarios))
        labels = {
            "init": "init (Init Duration)",
            "handler": "handler (Duration)",
            "overhead": "overhead (client - both)",
        }
        for part, values in parts.items():
            ax.bar(scenarios, values, bottom=bottom, width=0.6, color=_PART_COLOURS[part], label=labels[part])
            bottom += np.array(values)
        top = max(max(bottom), max(client_medians))
        for x, (stack, client) in enumerate(zip(bottom, client_medians, strict=True)):
            ax.annotate(
                f"p50 client\n{_ms(client)}",
                (x, stack + top * 0.015),
                ha="center",
                va="bottom",
                fontsize=9,
            )
        for tick, scenario in zip(ax.get_xticklabels(), scenarios, strict=True):
            tick.set_color(scenario_colour(scenario, scenarios))
            tick.set_fontweight("bold")
        ax.set_ylim(0, top * 1.45)  # headroom: bar labels and the legend never overlap
        ax.yaxis.set_major_formatter(_MS_FORMAT)
        ax.set_xlabel("scenario")
        ax.set_ylabel("median time per invocation (ms)")
        ax.set_title("Where the time goes")
        ax.grid(axis="x", visible=False)
        ax.legend(loc="upper left", ncols=3)
        fig.tight_layout()
    return _finish(fig, path)


def latency_cdf(records: Iterable[Mapping[str, Any]], path: str | Path | None = None) -> Figure:
    """Cumulative distribution of client latency per scenario (log x), with p50/p90/p99 guides."""
    groups = _client_ms_by_scenario(records)
    with plt.rc_context(_STYLE):
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
        for level in (50, 90, 99):
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
        ax.xaxis.set_major_formatter(_MS_FORMAT)
        ax.set_ylim(0, 101)
        ax.set_xlabel("client round trip (ms, log scale)")
        ax.set_ylabel("invocations at or below (%)")
        ax.set_title("Client latency, cumulative")
        ax.legend(loc="best")
        fig.tight_layout()
    return _finish(fig, path)


def cost_vs_rate(
    billed_ms: float,
    memory_mb: int,
    arch: str = "x86_64",
    environments: int = 1,
    billed_ms_provisioned: float | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Monthly cost against requests per month, on-demand vs ``environments`` provisioned (log-log).

    The break-even rate is marked with a vertical line; rates beyond what the provisioned
    environments can serve back to back are shaded (the model assumes no spill-over there).
    """
    provisioned_ms = billed_ms if billed_ms_provisioned is None else billed_ms_provisioned
    break_even = break_even_requests_per_month(
        billed_ms, memory_mb, arch, environments, billed_ms_provisioned=provisioned_ms
    )
    capacity = max_requests_per_month(provisioned_ms, environments)
    centre = break_even if break_even is not None else 1e6
    low = 10 ** math.floor(math.log10(centre) - 3)
    high = 10 ** math.ceil(math.log10(centre) + 2)
    rates = np.logspace(math.log10(low), math.log10(high), 200)
    on_demand = [monthly_cost_on_demand(r, billed_ms, memory_mb, arch) for r in rates]
    provisioned = [
        monthly_cost_provisioned(r, provisioned_ms, memory_mb, arch, environments)
        for r in rates
        if r <= capacity
    ]
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots()
        ax.plot(
            rates,
            on_demand,
            color=SCENARIO_COLOURS["warm"],
            linewidth=2.2,
            label=f"on-demand ({_ms(billed_ms)} billed)",
        )
        ax.plot(
            rates[: len(provisioned)],
            provisioned,
            color=SCENARIO_COLOURS["provisioned"],
            linewidth=2.2,
            label=f"provisioned, {_envs(environments)} ({_ms(provisioned_ms)} billed)",
        )
        if capacity < high:
            ax.axvspan(
                capacity,
                high,
                color="#DDDDDD",
                alpha=0.6,
                linewidth=0,
                label=f"beyond what {_envs(environments)} can serve",
            )
        if break_even is not None:
            cost = monthly_cost_on_demand(break_even, billed_ms, memory_mb, arch)
            seconds = HOURS_PER_MONTH * 3600
            ax.axvline(break_even, color="#333333", linestyle="--", linewidth=1.2)
            ax.plot([break_even], [cost], "o", color="#333333")
            note = f"break-even\n{_count(break_even)} requests/month\n(~{break_even / seconds:.1f} req/s), ${cost:,.2f}/month"
            if break_even > capacity:
                note += f"\nbeyond what {_envs(environments)} can serve"
            ax.annotate(
                note,
                (break_even, cost),
                xytext=(-12, 24),
                textcoords="offset points",
                ha="right",
                fontsize=9,
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
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _count(value)))
        ax.set_ylim(min(on_demand) / 2, max(on_demand + provisioned) * 30)  # headroom for the legend
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _dollars(value)))
        ax.set_xlabel("requests per month (log scale)")
        ax.set_ylabel("cost per month (USD, log scale)")
        ax.set_title(f"Monthly cost vs request rate ({arch}, {memory_mb} MB)")
        ax.legend(loc="upper left")
        fig.tight_layout()
    return _finish(fig, path)


def predictions(image_bytes: bytes, result: Mapping[str, Any], path: str | Path | None = None) -> Figure:
    """The input image beside the function's top-k predictions (a horizontal bar per class).

    ``result`` is the inference function's response. Predictions from offline (seeded, untrained)
    weights are labelled as not meaningful in the title.
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
    warning = "" if "seeded" not in source else "\noffline seeded weights: predictions are NOT meaningful"
    fig.suptitle(f"Top-{len(preds)} predictions (weights: {source or 'unknown'}){warning}")
    fig.tight_layout()
    return _finish(fig, path)


def _successful(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    ok = [r for r in records if not r.get("error")]
    if not ok:
        raise ValueError("No successful invocations to plot: every record is empty or has an 'error'.")
    return ok


def _scenario_order(records: Sequence[Mapping[str, Any]]) -> list[str]:
    seen = list(dict.fromkeys(r["scenario"] for r in records))
    known = [name for name in SCENARIO_COLOURS if name in seen]
    return known + [name for name in seen if name not in SCENARIO_COLOURS]


def _client_ms_by_scenario(records: Iterable[Mapping[str, Any]]) -> dict[str, list[float]]:
    ok = _successful(records)
    return {name: [r["client_ms"] for r in ok if r["scenario"] == name] for name in _scenario_order(ok)}


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def _dollars(value: float) -> str:
    if value >= 1:
        return f"${value:,.0f}"
    return f"${value:.2f}" if value >= 0.01 else f"${value:.2g}"


def _envs(count: int) -> str:
    return f"{count} env" if count == 1 else f"{count} envs"


def _count(value: float) -> str:
    for divisor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= divisor:
            return f"{value / divisor:.3g}{suffix}"
    return f"{value:.3g}"


def _finish(fig: Figure, path: str | Path | None) -> Figure:
    plt.close(fig)
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI)
        logger.info("Saved %s", path)
    return fig
