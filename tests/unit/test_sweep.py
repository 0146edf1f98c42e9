"""The memory sweep's summary, table, verdict and plot come from its records."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from helpers import cost, sweep  # noqa: E402
from tests.unit.test_markdown_maths import maths  # noqa: E402


def _records(durations: dict[int, float]) -> list[dict]:
    out = []
    for memory, duration in durations.items():
        out.append(
            {
                "scenario": "sweep-cold",
                "memory_mb": memory,
                "client_ms": 3000.0,
                "duration_ms": duration,
                "billed_ms": 2900 + duration,
                "init_ms": 2900.0,
                "error": None,
            }
        )
        for _ in range(3):
            out.append(
                {
                    "scenario": "sweep-warm",
                    "memory_mb": memory,
                    "client_ms": duration + 5,
                    "duration_ms": duration,
                    "billed_ms": duration,
                    "init_ms": None,
                    "error": None,
                }
            )
    return out


PARAMS = sweep.SweepParams((1024, 2048, 3008), 3, 10_000_000, 1)


def test_summary_prices_each_size_and_marks_the_fastest_and_the_cheapest():
    rows = sweep.summarise(_records({1024: 100.0, 2048: 45.0, 3008: 40.0}), PARAMS)
    assert [r["memory_mb"] for r in rows] == [1024, 2048, 3008]
    assert rows[0]["on_demand_warm_per_1m"] == pytest.approx(cost.cost_per_million(100.0, 1024))
    assert rows[1]["provisioned_per_1m"] == pytest.approx(
        cost.cost_per_million(45.0, 2048, "x86_64", 1, 10_000_000)
    )
    assert rows[2]["mark"] == "fastest"
    assert [r["mark"] for r in rows].count("cheapest") == 1
    cheapest = min(rows, key=lambda r: r["on_demand_warm_per_1m"])
    assert "cheapest" in cheapest["mark"]


def test_the_table_escapes_its_dollar_amounts():
    rows = sweep.summarise(_records({1024: 100.0, 2048: 45.0, 3008: 40.0}), PARAMS)
    text = sweep.table(rows, PARAMS)
    assert "\\\\$" in text and maths(text) == []


def test_the_verdict_follows_the_trend_and_says_where_cpu_scaling_is_not_enforced():
    falling = sweep.summarise(_records({1024: 100.0, 2048: 45.0, 3008: 40.0}), PARAMS)
    rising = sweep.summarise(_records({1024: 100.0, 2048: 300.0, 3008: 800.0}), PARAMS)
    assert "fell" in sweep.verdict(falling, True) and "PyTorch used it" in sweep.verdict(falling, True)
    assert "rose" in sweep.verdict(rising, True) and "OMP_WAIT_POLICY" in sweep.verdict(rising, True)
    assert "Where CPU scaling is not enforced" in sweep.verdict(falling, False)


def test_the_plot_marks_fastest_and_cheapest_on_one_figure(tmp_path):
    rows = sweep.summarise(_records({1024: 100.0, 2048: 45.0, 3008: 40.0}), PARAMS)
    fig = sweep.plot(rows, PARAMS, tmp_path / "sweep.png")
    top, bottom = fig.axes
    stars = {
        line.get_label(): (line.get_xdata()[0], line.get_ydata()[0])
        for ax in fig.axes
        for line in ax.get_lines()
        if line.get_marker() == "*"
    }
    assert stars["fastest warm"] == (3008, 40.0)
    cheapest = min(rows, key=lambda r: r["on_demand_warm_per_1m"])
    assert stars["cheapest on demand"] == (cheapest["memory_mb"], cheapest["on_demand_warm_per_1m"])
    assert (tmp_path / "sweep.png").stat().st_size > 10_000


def test_memory_sizes_outside_lambdas_range_are_refused():
    with pytest.raises(ValueError, match="128-10240"):
        sweep.SweepParams((64, 1024))
