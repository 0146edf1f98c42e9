"""Lambda + EFS against SageMaker Serverless Inference, from one run's records (04's and 05's).

Four options: Lambda on-demand, Lambda with Provisioned Concurrency, SageMaker serverless, and SageMaker
serverless with Provisioned Concurrency. Latencies come from the records (the same fields for both);
monthly costs from ``prices.json`` (SageMaker's ``sagemaker_serverless`` block, dated and sourced there)
at the measured billed durations, Lambda on-demand with a share of cold starts that bill their init and read
the measured bytes from EFS (SageMaker does not bill a serverless container's setup). The conclusion says
first what this machine cannot show, then which differences are within the spread of the measurements (p50s
closer than either option's p90 - p50 are not ranked), and the cheapest option at each request rate.

What AWS adds to a serverless endpoint's cold start: SageMaker launches compute for the endpoint, downloads
the model archive and starts the container image (several GB for the PyTorch image), and reports that as
``ModelSetupTime`` (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html, "Minimizing cold
starts"; https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html). Locally the container
starts as a process on this machine, so its cold start is its imports only.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from helpers import cost, stats
from helpers.findings import ms, usd
from helpers.plot_style import STYLE, finish, fmt_count, fmt_dollars

log = logging.getLogger(__name__)

HOURS_PER_MONTH = cost.HOURS_PER_MONTH
RATES = (1e4, 1e5, 1e6, 1e7)  # requests per month the conclusion prices
#: (option, platform, scenario whose records give its warm latency, scenario that shows its cold start)
OPTIONS = (
    ("Lambda on-demand", "lambda", "warm", "cold"),
    ("Lambda provisioned", "lambda", "provisioned", None),
    ("SageMaker serverless", "sagemaker", "warm", "cold"),
    ("SageMaker serverless + PC", "sagemaker", "provisioned", None),
)
COLOURS = {
    "Lambda on-demand": "#E69F00",
    "Lambda provisioned": "#009E73",
    "SageMaker serverless": "#0072B2",
    "SageMaker serverless + PC": "#56B4E9",
}


sagemaker_monthly = cost.sagemaker_monthly  # the cost model lives with Lambda's, in helpers.cost


@dataclass(frozen=True)
class Measured:
    """What the costs and the verdict need from both runs."""

    lambda_memory_mb: int
    lambda_arch: str
    lambda_environments: int
    sagemaker_memory_mb: int
    sagemaker_provisioned: int
    bytes_per_request: float  # request body + response body, what SageMaker bills as data processed
    cold_share: float = 0.0  # of Lambda on-demand requests that start an environment
    lambda_cold_billed_ms: float | None = None  # a cold start's billed duration (init included)
    cold_read_bytes: float = 0.0  # what one Lambda cold start reads from EFS


def _ok(records: Iterable[Mapping[str, Any]], scenario: str) -> list[Mapping[str, Any]]:
    return [r for r in records if r["scenario"] == scenario and not r.get("error")]


def _p50(rows: Sequence[Mapping[str, Any]], field: str) -> float | None:
    values = [float(r[field]) for r in rows if r.get(field) not in (None, "")]
    return stats.percentile(values, 50) if values else None


def latencies(
    lambda_records: Sequence[Mapping], sagemaker_records: Sequence[Mapping]
) -> list[dict[str, Any]]:
    """One row per option: p50 and p90 of a warm request and of a cold start (where the option has one)."""
    rows = []
    for option, platform, warm, cold in OPTIONS:
        records = lambda_records if platform == "lambda" else sagemaker_records
        warm_rows = _ok(records, warm)
        cold_rows = [r for r in _ok(records, cold) if r.get("cold") in (True, "True")] if cold else []
        row = {"option": option, "n warm": len(warm_rows)}
        for label, rows_ in (("warm", warm_rows), ("cold", cold_rows)):
            values = [float(r["client_ms"]) for r in rows_]
            row[f"{label} p50 ms"] = stats.percentile(values, 50) if values else None
            row[f"{label} p90 ms"] = stats.percentile(values, 90) if values else None
        row["billed ms"] = _p50(warm_rows, "billed_ms")
        rows.append(row)
    return rows


def capacity(option: str, billed_ms: float, m: Measured) -> float:
    """Requests per month an option serves without spilling over (its provisioned capacity back to back)."""
    if option == "Lambda provisioned":
        return cost.max_requests_per_month(billed_ms, max(m.lambda_environments, 1))
    if option == "SageMaker serverless + PC":
        return cost.max_requests_per_month(billed_ms, max(m.sagemaker_provisioned, 1))
    return math.inf


def monthly_costs(rows: Sequence[Mapping[str, Any]], m: Measured, rate: float) -> dict[str, float]:
    """USD per month of each option at ``rate`` requests per month, at its measured warm billed duration.

    An option with Provisioned Concurrency is left out at rates beyond what its provisioned capacity
    serves back to back: the excess would spill over to on-demand, which this model does not price."""
    billed = {row["option"]: row["billed ms"] for row in rows}
    costs = {}
    for option, *_ in OPTIONS:
        if billed.get(option) is None or rate > capacity(option, billed[option], m):
            continue
        if option == "Lambda on-demand":
            mix = cost.ColdMix(
                m.cold_share, billed[option], m.lambda_cold_billed_ms or billed[option], m.cold_read_bytes
            )
            costs[option] = cost.monthly_cost_on_demand(
                rate, mix.billed_ms, m.lambda_memory_mb, m.lambda_arch, efs_read_gb=mix.efs_read_gb
            )
        elif option == "Lambda provisioned":
            environments = max(m.lambda_environments, 1)
            costs[option] = cost.monthly_cost_provisioned(
                rate, billed[option], m.lambda_memory_mb, m.lambda_arch, environments
            )
        else:
            provisioned = max(m.sagemaker_provisioned, 1) if option.endswith("PC") else 0
            costs[option] = sagemaker_monthly(
                rate, billed[option], m.sagemaker_memory_mb, m.bytes_per_request, provisioned
            )
    return costs


def latency_plot(rows: Sequence[Mapping[str, Any]], path: str | Path | None = None) -> Figure:
    """p50 (bar) and p90 (whisker) of a warm request and of a cold start, per option, each panel on a linear
    axis of its own (a log axis made 55 and 70 ms look 2-3x apart); the p50 is written inside its bar."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2)
        for ax, kind, title in (
            (axes[0], "warm", "a warm request"),
            (axes[1], "cold", "the first request after idle"),
        ):
            shown = [row for row in rows if row[f"{kind} p50 ms"] is not None]
            positions = range(len(shown))
            p50 = [row[f"{kind} p50 ms"] for row in shown]
            p90 = [row[f"{kind} p90 ms"] for row in shown]
            ax.bar(positions, p50, color=[COLOURS[row["option"]] for row in shown], width=0.6)
            ax.errorbar(positions, p50, yerr=[[0] * len(p50), [b - a for a, b in zip(p50, p90, strict=True)]],
                        fmt="none", ecolor="#333333", capsize=4)  # fmt: skip
            for x, value in zip(positions, p50, strict=True):
                ax.text(x, value / 2, ms(value), ha="center", va="center", fontsize=9, color="white",
                        fontweight="bold", rotation=90 if len(shown) > 3 else 0)  # fmt: skip
            ax.set_xticks(list(positions), [row["option"].replace(" ", "\n", 1) for row in shown], fontsize=9)
            ax.set_title(title)
            ax.set_ylim(0, max(p90 or [1]) * 1.1)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
            ax.grid(axis="x", visible=False)
        axes[0].set_ylabel("client round trip (ms): p50 bar, p90 whisker")
        fig.suptitle("Lambda + EFS against SageMaker Serverless Inference", fontweight="bold")
        fig.tight_layout()
    return finish(fig, path)


def cost_plot(rows: Sequence[Mapping[str, Any]], m: Measured, path: str | Path | None = None) -> Figure:
    """Monthly cost of the four options against requests per month (log-log)."""
    rates = np.logspace(3, 8, 120)
    series: dict[str, tuple[list[float], list[float]]] = {option: ([], []) for option, *_ in OPTIONS}
    for rate in rates:
        for option, value in monthly_costs(rows, m, float(rate)).items():
            series[option][0].append(float(rate))
            series[option][1].append(value)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots()
        for option, (xs, values) in series.items():
            if values:
                capped = " (to its capacity)" if xs[-1] < rates[-1] else ""
                ax.plot(xs, values, color=COLOURS[option], linewidth=2.2, label=option + capped)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: fmt_count(value)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: fmt_dollars(value)))
        ax.set_xlabel("requests per month (log scale)")
        ax.set_ylabel("cost per month (USD, log scale)")
        ax.set_title("Monthly cost vs request rate, at the measured durations")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2)
        fig.tight_layout()
    return finish(fig, path)


def table(rows: Sequence[Mapping[str, Any]], m: Measured) -> str:
    """Markdown: latencies and the monthly cost at each of :data:`RATES`."""
    head = ["option", "warm p50", "warm p90", "cold p50", *[f"{fmt_count(rate)}/month" for rate in RATES]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    by_rate = [monthly_costs(rows, m, rate) for rate in RATES]
    for row in rows:
        cells = [row["option"], ms(row["warm p50 ms"]), ms(row["warm p90 ms"]),
                 ms(row["cold p50 ms"]) if row["cold p50 ms"] is not None else "never (kept warm)"]  # fmt: skip
        cells += [usd(costs[row["option"]]) if row["option"] in costs else "n/a" for costs in by_rate]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


CAVEAT = (
    "- **First, what this comparison cannot show:** here both platforms run the same way, as processes on "
    "this machine's shared cores, with the same torch; on AWS a serverless endpoint's cold start also "
    "launches compute, downloads the model and starts a multi-GB container image (its `ModelSetupTime`), "
    "and a Lambda cold start reads the framework from EFS over the network. Read the latencies below as "
    "this machine's, and only differences beyond the spread as differences."
)


def _ranked(rows: Sequence[Mapping[str, Any]], kind: str) -> str:
    """The options by p50 of ``kind``; those within the spread of the fastest (its p50 plus the larger of
    the two p90 - p50) are said to be alike, not ranked."""
    shown = sorted((r for r in rows if r[f"{kind} p50 ms"] is not None), key=lambda r: r[f"{kind} p50 ms"])
    best = shown[0]

    def spread(r):
        return (r[f"{kind} p90 ms"] or r[f"{kind} p50 ms"]) - r[f"{kind} p50 ms"]

    alike = [
        r for r in shown[1:] if r[f"{kind} p50 ms"] - best[f"{kind} p50 ms"] <= max(spread(best), spread(r))
    ]
    apart = [r for r in shown[1:] if r not in alike]
    text = ", ".join(f"{r['option']} {ms(r[f'{kind} p50 ms'])}" for r in [best, *alike])
    if alike:
        text = f"within the spread of each other: {text}"
    else:
        text = f"{best['option']}, p50 {ms(best[f'{kind} p50 ms'])}"
    if apart:
        text += "; then " + ", ".join(f"{r['option']} {ms(r[f'{kind} p50 ms'])}" for r in apart)
    return text


def conclusion(rows: Sequence[Mapping[str, Any]], m: Measured) -> str:
    """Markdown: the caveat first; then the options warm and after idle, ranked only beyond the spread;
    then the cheapest at each rate, with Lambda's cold share and EFS reads in its on-demand price."""
    warm = [row for row in rows if row["warm p50 ms"] is not None]
    cold = [row for row in rows if row["cold p50 ms"] is not None]
    if not warm:
        raise ValueError("No successful warm invocation in either run: read the records' errors first.")
    lines = [CAVEAT, f"- **Warm request:** {_ranked(rows, 'warm')}."]
    if cold:
        lines.append(
            f"- **First request after idle:** {_ranked(rows, 'cold')}; the options with Provisioned "
            "Concurrency never paid one in the sequential series."
        )
    if m.cold_share:
        lines.append(
            f"- **Costs** price Lambda on-demand with {m.cold_share:.0%} of requests starting cold, each billing "
            f"its init and reading {m.cold_read_bytes / 1e9:.2f} GB from EFS; SageMaker does not bill setup."
        )
    for rate in RATES:
        costs = monthly_costs(rows, m, rate)
        cheapest = min(costs, key=costs.get)
        lines.append(
            f"- **Cheapest at {fmt_count(rate)} requests/month:** {cheapest}, {usd(costs[cheapest])} "
            f"(dearest: {max(costs, key=costs.get)}, {usd(max(costs.values()))})."
        )
    return "\n".join(lines)


def data_per_request(image_bytes: bytes) -> float:
    """Bytes SageMaker bills as data processed per request: the image in and about 1 KB of JSON out."""
    return float(len(image_bytes) + 1024)


def latest_run(results_dir: str | Path, name: str = "benchmark") -> dict[str, Any]:
    """The newest ``<name>-<stamp>.json`` that ``bench.save`` wrote (04's run), with its records."""
    runs = sorted(Path(results_dir).glob(f"{name}-*.json"))
    if not runs:
        raise FileNotFoundError(
            f"No {name}-*.json in {results_dir}: run 04_benchmark.ipynb first, which measures the Lambda side."
        )
    return json.loads(runs[-1].read_text())
