"""Summary statistics for benchmark timings: percentiles, means, and per-scenario tables.

Percentiles use linear interpolation between closest ranks (numpy's default ``"linear"`` method,
Hyndman and Fan type 7): for sorted values ``x[0..n-1]`` and a fraction ``q``, the rank is
``h = (n - 1) * q`` and the percentile is ``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])``.
So p50 of an even count is the mean of the two middle values, and p99 of fewer than 101 values lies
between the two largest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real
from typing import Any

#: Fraction dropped from each end for the trimmed mean.
TRIM_FRACTION = 0.05
#: Fewer values than this give a p99 that is just the maximum, interpolated: tables show none.
MIN_N_FOR_P99 = 20
#: The columns of a summary, in display order.
SUMMARY_KEYS = ("n", "min", "p50", "p90", "p99", "max", "mean", "trimmed_mean")


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0 <= q <= 100) by linear interpolation between closest ranks."""
    ordered = _sorted_finite(values)
    if not 0 <= q <= 100:
        raise ValueError(f"Percentile must be between 0 and 100, got {q}.")
    return _interpolate(ordered, q / 100)


def trimmed_mean(values: Iterable[float], fraction: float = TRIM_FRACTION) -> float:
    """The mean after dropping ``floor(fraction * n)`` values from each end of the sorted values.

    With the default 5%, fewer than 20 values drop nothing (the trimmed mean is then the mean), 20-39
    values drop the single smallest and largest, and so on: the same rule as ``scipy.stats.trim_mean``.
    """
    ordered = _sorted_finite(values)
    if not 0 <= fraction < 0.5:
        raise ValueError(f"Trim fraction must be in [0, 0.5), got {fraction}.")
    cut = math.floor(fraction * len(ordered))
    kept = ordered[cut : len(ordered) - cut]
    return math.fsum(kept) / len(kept)


def summarise(values: Iterable[float]) -> dict[str, float | int]:
    """n, min, max, mean, p50, p90, p99 and the 5% trimmed mean of ``values`` (keys in ``SUMMARY_KEYS``).

    The trimmed mean drops the top and bottom 5% (``floor(0.05 * n)`` values from each end), which
    keeps one stray cold start or network hiccup from moving the typical value. Raises ``ValueError``
    for no values or a value that is not a finite number.
    """
    ordered = _sorted_finite(values)
    summary = {
        "n": len(ordered),
        "min": ordered[0],
        "p50": _interpolate(ordered, 0.50),
        "p90": _interpolate(ordered, 0.90),
        "p99": _interpolate(ordered, 0.99),
        "max": ordered[-1],
        "mean": math.fsum(ordered) / len(ordered),
        "trimmed_mean": trimmed_mean(ordered),
    }
    return {key: summary[key] for key in SUMMARY_KEYS}


def table(
    records: Iterable[Mapping[str, Any]],
    by: str = "scenario",
    fields: Sequence[str] = ("client_ms", "duration_ms", "billed_ms", "init_ms"),
) -> list[dict[str, Any]]:
    """One row per (group, field): ``{by: group, "field": field, **summarise(values)}``.

    Groups keep the order in which they first appear in ``records``, fields the order given. ``None``
    values are skipped (a warm invocation has no ``init_ms``), and a (group, field) with no values at
    all gets no row. ``p99`` is None below ``MIN_N_FOR_P99`` values (it would be the maximum, renamed). Records are summarised as given: filter out failed invocations first if they
    should not count.
    """
    groups: dict[Any, list[Mapping[str, Any]]] = {}
    for record in records:
        if by not in record:
            raise KeyError(f"Record has no {by!r} key to group by (keys: {sorted(record)}).")
        groups.setdefault(record[by], []).append(record)
    rows = []
    for group, members in groups.items():
        for field in fields:
            values = [member[field] for member in members if member.get(field) is not None]
            if values:
                summary = summarise(values)
                if summary["n"] < MIN_N_FOR_P99:
                    summary["p99"] = None
                rows.append({by: group, "field": field, **summary})
    return rows


def to_markdown(rows: Sequence[Mapping[str, Any]], digits: int = 1) -> str:
    """A Markdown table of ``rows`` (as ``table`` returns them), floats rounded to ``digits`` decimals,
    None shown as a dash and ``$`` escaped as ``\\\\$`` (so JupyterLab does not typeset it as maths).

    Show it in a notebook with ``IPython.display.Markdown(to_markdown(rows))``.
    """
    if not rows:
        raise ValueError("No rows to show: the records were empty or every value was None.")
    columns = list(rows[0])
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---:" if _numeric(rows, c) else "---" for c in columns) + "|",
    ]
    for row in rows:
        cells = [_cell(row.get(c), digits) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _numeric(rows: Sequence[Mapping[str, Any]], column: str) -> bool:
    values = [row.get(column) for row in rows if row.get(column) is not None]
    return all(isinstance(v, Real) and not isinstance(v, bool) for v in values)


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    text = str(value)
    # A dollar reaches MathJax escaped only when written \\$ (see findings.usd); normalise to that.
    bare = text.replace("\\\\$", "$").replace("\\$", "$")
    return bare.replace("|", "\\|").replace("$", "\\\\$")


def _sorted_finite(values: Iterable[float]) -> list[float]:
    listed = list(values)
    if not listed:
        raise ValueError("Cannot summarise an empty list of values: check that the benchmark recorded any.")
    bad = [v for v in listed if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v)]
    if bad:
        raise ValueError(f"Values must be finite numbers; got {bad[:3]!r}: drop failed invocations first.")
    return sorted(float(v) for v in listed)


def _interpolate(ordered: Sequence[float], fraction: float) -> float:
    rank = (len(ordered) - 1) * fraction
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])
