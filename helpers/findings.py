"""What the measurements say, as short Markdown for the notebooks: the conclusion, tables, what to expect on AWS.

Everything here is built from the records (nothing pre-written about the outcome). Dollar amounts are
written ``\\\\$`` (see ``usd``) so that JupyterLab does not typeset the text between two amounts as maths. Tables are
small Markdown tables (shown with ``IPython.display.Markdown``), never nested dicts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from helpers import cost, session, stats
from helpers.bench import INIT_PHASES
from helpers.cold_cache import conclusion_line as cold_cache_line
from helpers.config import load_settings

log = logging.getLogger(__name__)

#: Series shorter than this give percentiles too coarse to compare: the conclusion asks for a rerun.
MIN_SERIES = 10
#: p90 / p50 above this means the machine was busy while measuring.
NOISY_SPREAD = 1.5


def usd(value: float) -> str:
    """A dollar amount for Markdown: ``\\\\$0.03``. JupyterLab typesets the text between two ``$`` of one
    paragraph as maths, even written ``\\$`` (its Markdown parser unescapes that before MathJax runs);
    ``\\\\$`` reaches MathJax as ``\\$``, which it shows as a dollar sign."""
    if value >= 100:
        text = f"{value:,.0f}"
    elif value >= 0.01:
        text = f"{value:,.2f}"
    else:
        text = f"{value:.2g}"
    return f"\\\\${text}"


def ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def _ok(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in records if not r.get("error")]


def summary(records: Iterable[Mapping[str, Any]], field: str = "client_ms") -> dict[str, dict[str, float]]:
    """Per scenario, n / p50 / p90 of ``field`` over successful invocations."""
    ok = _ok(records)
    out = {}
    for scenario in dict.fromkeys(r["scenario"] for r in ok):
        values = [r[field] for r in ok if r["scenario"] == scenario and r.get(field) is not None]
        if values:
            out[scenario] = {
                "n": len(values),
                "p50": stats.percentile(values, 50),
                "p90": stats.percentile(values, 90),
            }
    return out


def medians(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per scenario, the median client latency, duration, init and billed duration of successful calls."""
    ok = _ok(records)
    out: dict[str, dict[str, float | None]] = {}
    for scenario in dict.fromkeys(r["scenario"] for r in ok):
        rows = [r for r in ok if r["scenario"] == scenario]
        out[scenario] = {}
        for field in ("client_ms", "duration_ms", "init_ms", "billed_ms"):
            values = [r[field] for r in rows if r.get(field) is not None]
            out[scenario][field] = stats.percentile(values, 50) if values else None
    return out


def _spread(row: Mapping[str, float]) -> str:
    return f"{ms(row['p50'])} at the median, {ms(row['p90'])} at p90 (n={row['n']})"


def conclusion(
    records: Iterable[Mapping[str, Any]],
    memory_mb: int,
    arch: str,
    environments: int,
    mix: cost.ColdMix | None = None,
) -> str:
    """The measured story as Markdown bullets, with spread (p90) and whether a rerun is needed;
    with ``mix``, the break-even also with its share of cold starts (their init billed, their EFS reads priced)."""
    records = list(records)
    ok = _ok(records)
    s = summary(records)
    m = medians(records)
    lines: list[str] = []
    cold, warm, prov = s.get("cold"), s.get("warm"), s.get("provisioned")
    long_inits = [r for r in ok if r.get("init_in_duration")]
    if cold and prov:
        ratio = cold["p50"] / prov["p50"]
        init = m["cold"]["init_ms"]
        part = f", of which {ms(init)} was init (importing PyTorch and loading the weights)" if init else ""
        verdict = (
            f"{ratio:.0f}x faster"
            if ratio >= 1
            else f"{1 / ratio:.1f}x **slower** (unexpected: read the records)"
        )
        lines.append(
            f"- **Cold start vs provisioned:** a cold start took {_spread(cold)}{part}; a provisioned "
            f"invocation took {_spread(prov)}: provisioned was {verdict}."
        )
    cold_cache = cold_cache_line(records)
    if cold_cache:
        lines.append(cold_cache)
    if long_inits:
        lines.append(
            f"- **{len(long_inits)} cold start(s) ran init past 10 s.** Lambda caps an on-demand init at 10 s, then "
            "re-runs it inside the invocation: their REPORT has no Init Duration and their Duration includes "
            "the init. They are counted as cold starts here, with their init inside Duration."
        )
    if warm and prov:
        gap = warm["p50"] - prov["p50"]
        if abs(gap) <= 0.2 * prov["p50"]:
            lines.append(
                f"- **Warm vs provisioned:** alike ({ms(warm['p50'])} and {ms(prov['p50'])} at the median): "
                "Provisioned Concurrency removes cold starts, it does not make a warm environment faster."
            )
        else:
            lines.append(
                f"- **Warm vs provisioned:** {ms(warm['p50'])} and {ms(prov['p50'])} at the median, "
                f"{ms(abs(gap))} apart. Provisioned Concurrency does not make a warm environment faster, so the "
                "gap comes from elsewhere (other load on the machine, or too few invocations)."
            )
    lines += _burst_lines(ok, environments)
    lines += _cost_lines(m, memory_mb, arch, environments)
    if mix is not None and m.get("provisioned"):
        rate = cost.break_even_requests_per_month(
            mix.billed_ms, memory_mb, arch, max(environments, 1),
            billed_ms_provisioned=m["provisioned"]["billed_ms"], efs_read_gb=mix.efs_read_gb,
        )  # fmt: skip
        where = f"falls to {rate:,.0f} requests a month" if rate else "never comes"
        lines.append(
            f"- **With {mix.share:.0%} of requests starting cold** (each billing its init and reading "
            f"{mix.read_bytes / 1e6:,.0f} MB from EFS), the break-even {where}: cold starts, and their EFS reads "
            "above all, are what Provisioned Concurrency saves."
        )
    lines += _noise_lines(s)
    failed = len(records) - len(ok)
    if failed:
        lines.append(
            f"- {failed} invocation(s) failed and are left out of these numbers: read their `error` field."
        )
    return "\n".join(lines)


def _burst_lines(ok: Sequence[Mapping[str, Any]], environments: int) -> list[str]:
    lines = []
    on_demand = [r for r in ok if r["scenario"] == "burst-on-demand"]
    if on_demand:
        started = sum(1 for r in on_demand if r.get("cold"))
        text = (
            f"- **On-demand burst:** {len(on_demand)} requests at once on a fresh version: {started} started "
            "a new environment (cold)"
        )
        if started < len(on_demand):
            text += f", {len(on_demand) - started} found one that an earlier request of the burst had freed"
        lines.append(
            text + ". Without Provisioned Concurrency a burst pays one cold start per new environment."
        )
    bursts = [r for r in ok if r["scenario"] == "burst-provisioned"]
    if not bursts:
        return lines
    spill = [r for r in bursts if r.get("init_type") == "on-demand"]
    spill_cold = sum(1 for r in spill if r.get("cold"))
    text = (
        f"- **Provisioned burst:** {len(bursts)} requests at once on a fresh version with {environments} "
        f"provisioned environment(s): provisioned served {len(bursts) - len(spill)}, {len(spill)} spilled "
        f"over to on-demand and {spill_cold} of those paid a cold start"
    )
    if len(bursts) > environments and not spill_cold:
        text += " (unexpected: a fresh version has no idle on-demand environment; read the records)"
    lines.append(text + ".")
    served = [r["client_ms"] for r in bursts if r.get("init_type") == "provisioned-concurrency"]
    series = [r["client_ms"] for r in ok if r["scenario"] == "provisioned"]
    if served and series and spill_cold:
        lines.append(
            f"- The provisioned requests of that burst took {ms(stats.percentile(served, 50))} against "
            f"{ms(stats.percentile(series, 50))} in the sequential series: here they ran beside "
            f"{spill_cold} cold start(s) importing PyTorch on the same shared cores. On AWS every environment "
            "has CPU of its own, so a provisioned request is not slowed by its neighbours' cold starts."
        )
    return lines


def _cost_lines(
    m: Mapping[str, Mapping[str, Any]], memory_mb: int, arch: str, environments: int
) -> list[str]:
    warm, prov = m.get("warm"), m.get("provisioned")
    if not (warm and prov and warm["billed_ms"] and prov["billed_ms"]):
        return []
    rate = cost.break_even_requests_per_month(
        warm["billed_ms"], memory_mb, arch, environments, billed_ms_provisioned=prov["billed_ms"]
    )
    capacity = cost.max_requests_per_month(prov["billed_ms"], environments)
    if rate is None or rate > capacity:  # never cheaper, or only past what the environments can serve
        same = (cost.break_even_requests_per_month(warm["billed_ms"], memory_mb, arch, environments) or 0) / (
            cost.max_requests_per_month(warm["billed_ms"], environments)
        )
        where = (
            "it never costs less than on-demand"
            if rate is None
            else f"its break-even ({rate:,.0f} requests a month) is more than {environments} provisioned "
            f"environment(s) can serve ({rate / capacity:.0%} busy)"
        )
        return [
            f"- **Cost:** with {environments} x {memory_mb} MB ({arch}) and provisioned requests billed "
            f"{ms(prov['billed_ms'])} against {ms(warm['billed_ms'])} on demand, {where}: here Provisioned "
            "Concurrency never pays for itself on price, it buys freedom from cold starts. Billed the same on "
            f"both sides, it breaks even at {same:.0%} utilisation of a provisioned environment, at any memory size."
        ]
    monthly = cost.monthly_cost_on_demand(rate, warm["billed_ms"], memory_mb, arch)
    return [
        f"- **Cost:** with {environments} x {memory_mb} MB ({arch}), Provisioned Concurrency costs less than "
        f"on-demand above {rate:,.0f} requests a month ({rate / (cost.HOURS_PER_MONTH * 3600):.1f} per second, "
        f"{usd(monthly)} a month either way). That is a provisioned environment busy {rate / capacity:.0%} of "
        "the time: below that utilisation you pay extra for never waiting for a cold start."
    ]


def _noise_lines(s: Mapping[str, Mapping[str, float]]) -> list[str]:
    short = [name for name in ("warm", "provisioned") if name in s and s[name]["n"] < MIN_SERIES]
    noisy = [
        name
        for name in ("warm", "provisioned")
        if name in s and s[name]["p90"] > NOISY_SPREAD * s[name]["p50"]
    ]
    if short or noisy:
        reasons = []
        if short:
            reasons.append(f"{' and '.join(short)} had fewer than {MIN_SERIES} invocations")
        if noisy:
            reasons.append(
                f"{' and '.join(noisy)} had a p90 over {NOISY_SPREAD:g}x the median (the machine was busy)"
            )
        return [f"- **Rerun needed** before trusting small differences: {'; '.join(reasons)}."]
    return ["- **Noise:** p90 within 1.5x the median in the warm and provisioned series: one run is enough."]


def records_table(records: Iterable[Mapping[str, Any]], columns: Sequence[str], digits: int = 1) -> str:
    """A Markdown table of ``columns`` of ``records`` (request ids shortened, None as a dash)."""
    rows = []
    for r in records:
        row = {}
        for column in columns:
            value = r.get(column)
            if column == "request_id" and value:
                value = f"{value[:8]}…"
            row[column] = value if value is not None else "–"
        rows.append(row)
    return stats.to_markdown(rows, digits=digits)


def first_of_each(records: Iterable[Mapping[str, Any]]) -> str:
    """The first invocation of each scenario, as a short table."""
    first: dict[str, Mapping[str, Any]] = {}
    for r in records:
        first.setdefault(r["scenario"], r)
    columns = (
        "scenario",
        "client_ms",
        "init_ms",
        "duration_ms",
        "billed_ms",
        "init_type",
        "cold",
        "request_id",
    )
    return records_table(first.values(), columns)


def init_table(init: Mapping[str, Any] | None, init_duration_ms: float | None = None) -> str:
    """The phases of one environment's init (the function's ``init`` block) as a Markdown table."""
    phases = dict((init or {}).get("phases_ms") or {})
    if not phases:
        return (
            "_This function's responses carry no `init` block yet, so its init cannot be taken apart; "
            "the REPORT's Init Duration is the whole of it._"
        )
    total = float((init or {}).get("total_ms") or sum(phases.values()))
    ordered = [p for p in INIT_PHASES if p in phases] + [p for p in phases if p not in INIT_PHASES]
    rows = [
        {"phase": p, "ms": float(phases[p]), "share": f"{phases[p] / total:.0%}" if total else "–"}
        for p in ordered
    ]
    rows.append({"phase": "total (function's own clock)", "ms": total, "share": "100%"})
    if init_duration_ms is not None:
        rows.append({"phase": "Init Duration (REPORT)", "ms": float(init_duration_ms), "share": "–"})
    torch = (init or {}).get("torch") or {}
    text = stats.to_markdown(rows, digits=1)
    if torch:
        text += f"\n\ntorch {torch.get('version', '?')} ({torch.get('build', '?')} build) imported from `{torch.get('from', '?')}`"
    return text


def key_values(data: Mapping[str, Any], skip: Sequence[str] = ("ResponseMetadata",)) -> str:
    """A nested dict as a two-column Markdown table (``a.b`` keys), long values shortened."""
    rows: list[dict[str, Any]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key not in skip:
                    walk(f"{prefix}.{key}" if prefix else str(key), item)
            return
        text = value if isinstance(value, int | float) and not isinstance(value, bool) else str(value)
        if isinstance(text, str) and len(text) > 70:
            text = f"{text[:32]}…{text[-32:]}"
        rows.append({"key": prefix, "value": text})

    walk("", data)
    return stats.to_markdown(rows, digits=1)


def check_prediction(prediction: Any, measured: Any, why: str) -> str:
    """An exercise's answer, folded: what was predicted, what the run measured, and why, inside a
    ``<details>`` block, so the executed copy an instructor projects shows "Answer" until someone opens it."""
    if prediction is None:
        verdict = "You made no prediction (set it in the cell above and run both cells again)."
    elif prediction == measured:
        verdict = f"You predicted **{prediction}**: right."
    else:
        verdict = f"You predicted **{prediction}**; the run says otherwise."
    return f"<details><summary>Answer (click to open)</summary>\n\n{verdict} Measured: **{measured}**. {why}\n\n</details>"


def cold_share_table(rows: Sequence[Mapping[str, Any]], read_mb: float) -> str:
    """``cost.break_even_by_cold_share``'s rows as a Markdown table: per share of cold starts, the on-demand
    price of a million requests and the rate from which Provisioned Concurrency costs less."""
    shown = [
        {
            "cold share": f"{row['cold share']:.0%}",
            "on-demand, per 1M requests": usd(row["on-demand per 1M"]),
            "break-even (requests/month)": f"{row['break-even requests/month']:,.0f}"
            if row["break-even requests/month"]
            else "never",
            "provisioned busy": f"{row['utilisation']:.1%}" if row["utilisation"] else "–",
        }
        for row in rows
    ]
    return stats.to_markdown(shown) + (
        f"\n\nEach cold start bills its init and reads {read_mb:,.0f} MB from EFS (measured); a provisioned "
        "environment read it once, when it was initialised."
    )


def provisioned_cost_markdown(memory_mb: int, arch: str, environments: int) -> str:
    """What the provisioned environments cost while configured, used or not (a Markdown table)."""
    prices = cost.load_prices()
    per_hour = (
        environments * memory_mb / 1024 * 3600 * prices.for_arch(arch).provisioned_concurrency_gb_second
    )
    rows = [
        {"while configured": "per hour", "cost (USD)": usd(per_hour)},
        {
            "while configured": f"per month ({cost.HOURS_PER_MONTH} h)",
            "cost (USD)": usd(per_hour * cost.HOURS_PER_MONTH),
        },
    ]
    return (
        stats.to_markdown(rows)
        + f"\n\n{environments} x {memory_mb} MB ({arch}), {prices.region} prices as of {prices.as_of}."
    )


# The local engine's INIT_START line names each guarantee of its sandbox; when CPU is scaled it says
# "cpu: 1.16 vCPU (scaled with MemorySize)", and otherwise lists cpu among the guarantees not enforced.
_CPU_SCALED = re.compile(r"\bcpu: [\d.]+ vCPU \(scaled with MemorySize\)")


def cpu_scaling_enforced(init_start_lines: Iterable[str], backend: str | None = None) -> bool:
    """Whether CPU scales with MemorySize where the function ran: always on AWS; locally, when the
    engine's INIT_START lines say so (a line without the note means it was not enforced)."""
    if (backend or load_settings().backend) == "aws":
        return True
    lines = list(init_start_lines)
    return bool(lines) and all(_CPU_SCALED.search(line) for line in lines)


def init_start_lines(function_name: str, limit: int = 20) -> list[str]:
    """The function's most recent INIT_START lines from CloudWatch Logs."""
    logs = session.client("logs")
    events = logs.filter_log_events(
        logGroupName=f"/aws/lambda/{function_name}", filterPattern="INIT_START", limit=limit
    )["events"]
    return [event["message"] for event in events]


def sandbox_summary(init_start_lines: Iterable[str]) -> str | None:
    """What the local engine's ``INIT_START`` lines say of its Lambda sandbox (``Local Sandbox: ...``)."""
    for line in init_start_lines:
        for field in line.split("\t"):
            if field.startswith("Local Sandbox: "):
                return field.removeprefix("Local Sandbox: ")
    return None


def caveats(cpu_scaled: bool | None, backend: str | None = None, sandbox: str | None = None) -> list[str]:
    """What the local numbers cannot show, as Markdown bullets (empty on AWS); ``sandbox`` is what
    :func:`sandbox_summary` read, said first when some of its guarantees are off."""
    if (backend or load_settings().backend) == "aws":
        return []
    lines = []
    if sandbox and not sandbox.startswith("on: every guarantee"):
        lines.append(
            f"- **The Lambda sandbox is {sandbox}**: code that runs here may still fail on AWS there."
        )
    cpu = (
        "- CPU scales with the memory setting here as on Lambda (one vCPU per 1,769 MB), but every "
        "environment shares this machine's cores: a burst of cold starts competes for them."
        if cpu_scaled
        else "- Where CPU scaling is not enforced (as here), every environment gets this machine's cores: "
        "durations do not shrink or grow with MemorySize as they do on Lambda."
    )
    return [
        "Measured on the embedded local AWS, which differs from Lambda in ways that matter here:",
        *lines,
        cpu,
        "- 'EFS' is a folder on this disk with a warm page cache: no NFS round trips, so a real cold start "
        "that imports PyTorch from EFS is slower than measured here; the cold-cache starts read it from this "
        "disk, which is still faster than EFS over the network.",
        "- No VPC, no network interfaces and no network isolation; no cost is incurred.",
        "Timings, the init vs handler split and the pipeline are real; absolute numbers are this machine's.",
    ]
