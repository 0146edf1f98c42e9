"""What every workshop plot shares: the style, the scenario colours, number formats, and saving.

A scenario has the same colour in every plot (Okabe-Ito, safe for colour-blind readers). Figures are
closed in pyplot before they are returned, so a notebook cell that ends with one shows it exactly once
and nothing accumulates in pyplot's figure list; given a path, they are also saved as PNG at 120 dpi.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

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
OTHER_COLOURS = ("#0072B2", "#F0E442", "#999999", "#000000")
PART_COLOURS = {"init": "#B2182B", "handler": "#2166AC", "overhead": "#BABABA"}
STYLE = {
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
MS_FORMAT = FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}")


def scenario_colour(scenario: str, order: Sequence[str] = ()) -> str:
    """The colour of ``scenario``: fixed for the benchmark's scenarios, from a spare palette otherwise."""
    if scenario in SCENARIO_COLOURS:
        return SCENARIO_COLOURS[scenario]
    others = [name for name in order if name not in SCENARIO_COLOURS]
    index = others.index(scenario) if scenario in others else 0
    return OTHER_COLOURS[index % len(OTHER_COLOURS)]


def successful(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    ok = [r for r in records if not r.get("error")]
    if not ok:
        raise ValueError("No successful invocations to plot: every record is empty or has an 'error'.")
    return ok


def scenario_order(records: Sequence[Mapping[str, Any]]) -> list[str]:
    seen = list(dict.fromkeys(r["scenario"] for r in records))
    known = [name for name in SCENARIO_COLOURS if name in seen]
    return known + [name for name in seen if name not in SCENARIO_COLOURS]


def client_ms_by_scenario(records: Iterable[Mapping[str, Any]]) -> dict[str, list[float]]:
    ok = successful(records)
    return {name: [r["client_ms"] for r in ok if r["scenario"] == name] for name in scenario_order(ok)}


def fmt_ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def fmt_dollars(value: float) -> str:
    if value >= 1:
        return f"${value:,.0f}"
    return f"${value:.2f}" if value >= 0.01 else f"${value:.2g}"


def fmt_envs(count: int) -> str:
    return f"{count} env" if count == 1 else f"{count} envs"


def fmt_count(value: float) -> str:
    for divisor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= divisor:
            return f"{value / divisor:.3g}{suffix}"
    return f"{value:.3g}"


def finish(fig: Figure, path: str | Path | None) -> Figure:
    plt.close(fig)
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
        logger.info("Saved %s", path)
    return fig
