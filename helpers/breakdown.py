"""Where the time goes: each kind of invocation's median taken apart into init phases, handler and overhead;
and a cold start's init phases with the page cache warm and cold (``cold_cache_phases``).

Per invocation, init is its Init Duration, split into the phases the inference function reports in its
first response (``init_<phase>_ms``) plus what the function's own clock did not see; handler is its
Duration; overhead is what the client waited beyond both (network, Lambda's front end, placement). An
init that ran past Lambda's 10 s cap has no Init Duration: Lambda re-ran it inside the invocation, so
it is taken out of Duration (by the function's init total) instead of being added.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from helpers.plot_style import (
    MS_FORMAT,
    PART_COLOURS,
    STYLE,
    finish,
    fmt_ms,
    scenario_colour,
    scenario_order,
    successful,
)

log = logging.getLogger(__name__)


def breakdown_groups(records: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, list[Mapping[str, Any]]]]:
    """(scenario, label, rows) per kind of invocation: a scenario whose invocations differ (a burst
    with cold and warm ones, a provisioned burst with spill-overs) is split by kind."""
    ok = successful(records)
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for scenario in scenario_order(ok):
        for r in (r for r in ok if r["scenario"] == scenario):
            kind = ""
            if scenario == "burst-provisioned":
                spilled = r.get("init_type") == "on-demand"
                kind = (
                    ("spill-over, cold" if _is_cold(r) else "spill-over, warm") if spilled else "provisioned"
                )
            elif scenario.startswith("burst"):
                kind = "cold" if _is_cold(r) else "warm"
            groups.setdefault((scenario, kind), []).append(r)
    return [
        (scenario, f"{scenario}\n{kind}" if kind else scenario, rows)
        for (scenario, kind), rows in groups.items()
    ]


def invocation_parts(r: Mapping[str, Any]) -> dict[str, float]:
    """One invocation's client round trip taken apart: init (by phase where the function reported them),
    handler and overhead. The parts add up to ``client_ms`` (overhead is clipped at 0).

    An init that ran past 10 s has no Init Duration: Lambda re-ran it inside the invocation, so it is
    taken out of Duration (by the function's own init total) rather than added to it.
    """
    init_ms = r.get("init_ms") or 0.0
    inside = float(r.get("init_total_ms") or 0.0) if r.get("init_in_duration") else 0.0
    init = init_ms or inside
    parts: dict[str, float] = {}
    phases = {p: float(r.get(f"init_{p}_ms") or 0.0) for p in PHASES}
    if init and any(phases.values()):
        for phase, value in phases.items():
            parts[f"init: {PHASES[phase]}"] = value
        parts["init: other"] = max(init - sum(phases.values()), 0.0)
    elif init:
        parts["init"] = init
    parts["handler"] = max(r["duration_ms"] - inside, 0.0)
    parts["overhead"] = max(r["client_ms"] - r["duration_ms"] - init_ms, 0.0)
    return parts


def time_breakdown(records: Iterable[Mapping[str, Any]], path: str | Path | None = None) -> Figure:
    """The median invocation of each kind taken apart: init (split into its phases where the function
    reported them), handler duration and overhead, stacked horizontally; the label is the p50 of the client
    round trip that the tables show (and the stack's own sum where an even count puts the p50 between two).

    Invocations that started an environment, those served one at a time and those served in a burst are
    in panels with their own scales, so warm and provisioned bars (tens of ms) read as well as cold ones
    (seconds). An invocation whose init ran past 10 s shows its init inside its Duration.
    """
    groups = breakdown_groups(records)
    medians = {label: _median_row(rows) for _, label, rows in groups}
    rows_of = {label: rows for _, label, rows in groups}
    cold = [(s, label) for s, label, rows in groups if _is_cold(medians[label])]
    warm = [
        (s, label) for s, label, rows in groups if not _is_cold(medians[label]) and not s.startswith("burst")
    ]
    burst = [
        (s, label) for s, label, rows in groups if not _is_cold(medians[label]) and s.startswith("burst")
    ]
    panels = [
        (title, items)
        for title, items in (
            ("started an environment (cold)", cold),
            ("served by a ready environment, one request at a time", warm),
            ("served by a ready environment, in a burst", burst),
        )
        if items
    ]
    with plt.rc_context(STYLE):
        heights = [max(len(items), 1) + 1.2 for _, items in panels]
        fig_height = 1.6 + 0.5 * sum(heights)
        fig, axes = plt.subplots(
            len(panels),
            1,
            figsize=(9, fig_height),
            gridspec_kw={"height_ratios": heights},
            squeeze=False,
        )
        handles: dict[str, Any] = {}
        for ax, (title, items) in zip(axes[:, 0], panels, strict=True):
            labels = [label for _, label in items][::-1]
            widest = 0.0
            for y, label in enumerate(labels):
                parts = invocation_parts(medians[label])
                left = 0.0
                for part, value in parts.items():
                    if value <= 0:
                        continue
                    bar = ax.barh(
                        y, value, left=left, height=0.6, color=_part_colour(part), label=_part_label(part)
                    )
                    handles.setdefault(_part_label(part), bar)
                    left += value
                widest = max(widest, left)
                p50 = _p50_client(rows_of[label])
                said = (
                    f"p50 {fmt_ms(p50)}" if abs(p50 - left) < 0.5 else f"{fmt_ms(left)} (p50 {fmt_ms(p50)})"
                )
                ax.annotate(
                    said,
                    (left, y),
                    xytext=(4, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=9,
                )
            ax.set_yticks(range(len(labels)), labels)
            scenarios = {label: s for s, label in items}
            for tick, label in zip(ax.get_yticklabels(), labels, strict=True):
                tick.set_color(scenario_colour(scenarios[label]))
                tick.set_fontweight("bold")
            ax.set_xlim(0, widest * 1.3)
            ax.xaxis.set_major_formatter(MS_FORMAT)
            ax.set_title(
                f"{title}: scale 0 to {fmt_ms(widest * 1.3)}", fontsize=11, loc="left", fontweight="normal"
            )
            ax.grid(axis="y", visible=False)
        axes[-1, 0].set_xlabel("the median invocation's client round trip, taken apart (ms)")
        fig.suptitle("Where the time goes", fontsize=14, fontweight="bold")
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="upper center",
            ncols=4,
            bbox_to_anchor=(0.5, 1 - 0.5 / fig_height),
            fontsize=9,
        )
        legend_in = 0.45 + 0.2 * math.ceil(len(handles) / 4)  # the title and the legend rows (inches)
        fig.tight_layout(rect=(0, 0, 1, 1 - legend_in / fig_height))
    return finish(fig, path)


def cold_cache_phases(records: Iterable[Mapping[str, Any]], path: str | Path | None = None) -> Figure:
    """The median init of a cold start, whole and phase by phase, with the bundle in the page cache
    (scenario ``cold``) and with it dropped from it first (``cold (cold cache)``): two bars per row."""
    from helpers.cold_cache import COLD_CACHE, WARM_CACHE, compare

    both = compare(records)
    if len(both) < 2:
        raise ValueError(
            f"Nothing to compare: the records need successful {WARM_CACHE!r} and {COLD_CACHE!r} cold starts."
        )
    rows = [("init", "whole init")] + [(phase, name) for phase, name in PHASES.items()]
    rows = [(key, name) for key, name in rows if any(both[s].get(key) is not None for s in both)]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(9, 1.6 + 0.75 * len(rows)))
        order = list(both)
        for offset, (scenario, label) in zip(
            (-0.2, 0.2), ((WARM_CACHE, "page cache warm"), (COLD_CACHE, "page cache cold")), strict=True
        ):
            values = [both[scenario].get(key) or 0.0 for key, _ in rows]
            ys = [y + offset for y in range(len(rows))]
            ax.barh(
                ys,
                values,
                height=0.38,
                color=scenario_colour(scenario, order),
                label=f"{label} ({scenario}, n={both[scenario]['n']})",
            )
            for y, value in zip(ys, values, strict=True):
                ax.annotate(fmt_ms(value), (value, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)  # fmt: skip
        ax.set_yticks(range(len(rows)), [name for _, name in rows])
        ax.invert_yaxis()
        widest = max((both[s].get(key) or 0.0) for s in both for key, _ in rows)
        ax.set_xlim(0, widest * 1.18)
        ax.xaxis.set_major_formatter(MS_FORMAT)
        ax.set_xlabel("median over the cold starts (ms)")
        ax.set_title("A cold start's init, with the bundle cached and not")
        ax.grid(axis="y", visible=False)
        ax.legend(loc="lower right", fontsize=9)
        cached = both[COLD_CACHE]["cached_after_evict_bytes"]
        if cached:
            fig.text(
                0.01,
                0.01,
                f"{cached / 1e6:,.0f} MB stayed cached in the cold-cache runs: pages that live environments map.",
                fontsize=9,
                color="#555555",
            )
        fig.tight_layout(rect=(0, 0.04 if cached else 0, 1, 1))
    return finish(fig, path)


#: Init phases as the inference function reports them, and how the plot names them.
PHASES = {
    "runtime_start": "runtime start",
    "import_torch": "import torch",
    "import_pil": "import PIL",
    "load_weights": "load weights",
    "first_forward": "first forward",
}
_INIT_SHADES = ("#67001F", "#B2182B", "#D6604D", "#F4A582", "#FDDBC7", "#E7D4E8")


def _part_colour(part: str) -> str:
    if part.startswith("init: "):
        names = [f"init: {name}" for name in PHASES.values()] + ["init: other"]
        return _INIT_SHADES[names.index(part)]
    return PART_COLOURS[part]


def _part_label(part: str) -> str:
    return {
        "init": "init (Init Duration)",
        "handler": "handler (Duration)",
        "overhead": "overhead (client - both)",
    }.get(part, part)


def _is_cold(r: Mapping[str, Any]) -> bool:
    return bool(r.get("cold")) if "cold" in r else r.get("init_ms") is not None


def _p50_client(rows: Sequence[Mapping[str, Any]]) -> float:
    """The p50 of the client round trip, as the tables compute it."""
    from helpers.stats import percentile

    return percentile([float(r["client_ms"]) for r in rows], 50)


def _median_row(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    ordered = sorted(rows, key=lambda r: r["client_ms"])
    return ordered[(len(ordered) - 1) // 2]
