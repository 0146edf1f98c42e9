"""Percentiles, means and per-scenario tables, pinned against values worked out by hand."""

import math
import random

import numpy as np
import pytest

from helpers.stats import SUMMARY_KEYS, percentile, summarise, table, to_markdown, trimmed_mean


def test_summary_of_one_to_ten():
    # Rank h = (n - 1) * q over x = 1..10:  p50: h = 4.5 -> 5 + 0.5 * (6 - 5) = 5.5
    # p90: h = 8.1 -> 9 + 0.1 * (10 - 9) = 9.1;  p99: h = 8.91 -> 9 + 0.91 * 1 = 9.91
    # mean = 55 / 10 = 5.5;  trimmed: floor(0.05 * 10) = 0 values dropped per end -> 5.5
    summary = summarise(range(1, 11))
    assert summary == pytest.approx(
        {"n": 10, "min": 1, "p50": 5.5, "p90": 9.1, "p99": 9.91, "max": 10, "mean": 5.5, "trimmed_mean": 5.5}
    )


def test_summary_of_a_skewed_set_with_one_slow_outlier():
    # Sorted 10, 11, 12, 13, 100:  p50: h = 2 -> 12;  p90: h = 3.6 -> 13 + 0.6 * 87 = 65.2
    # p99: h = 3.96 -> 13 + 0.96 * 87 = 96.52;  mean = 146 / 5 = 29.2
    summary = summarise([100, 12, 10, 13, 11])
    assert summary["p50"] == 12
    assert summary["p90"] == pytest.approx(65.2)
    assert summary["p99"] == pytest.approx(96.52)
    assert summary["mean"] == pytest.approx(29.2)
    assert (summary["min"], summary["max"]) == (10, 100)


def test_trimmed_mean_drops_five_percent_from_each_end():
    # 20 values: 1..19 and a 1000 ms cold start. floor(0.05 * 20) = 1 dropped per end -> mean of 2..19
    # = (2 + 19) / 2 = 10.5, while the plain mean is (190 + 1000) / 20 = 59.5.
    # p99: h = 18.81 -> 19 + 0.81 * (1000 - 19) = 813.61
    values = [*range(1, 20), 1000]
    summary = summarise(values)
    assert summary["trimmed_mean"] == pytest.approx(10.5)
    assert summary["mean"] == pytest.approx(59.5)
    assert summary["p50"] == pytest.approx(10.5)
    assert summary["p90"] == pytest.approx(18.1)
    assert summary["p99"] == pytest.approx(813.61)


def test_trimmed_mean_of_fewer_than_twenty_values_is_the_mean():
    assert trimmed_mean([1, 2, 3, 1000]) == pytest.approx(251.5)


def test_summary_of_one_value_is_that_value_everywhere():
    summary = summarise([42.0])
    assert summary["n"] == 1
    assert all(summary[key] == 42.0 for key in SUMMARY_KEYS if key != "n")


def test_summary_keys_come_in_display_order():
    assert tuple(summarise([1, 2])) == SUMMARY_KEYS


def test_percentiles_match_numpys_default_linear_method():
    rng = random.Random(7)
    values = [rng.lognormvariate(3, 1) for _ in range(137)]
    for q in (0, 1, 25, 50, 90, 99, 99.9, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)


def test_summarising_nothing_is_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        summarise([])


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, "12"])
def test_values_that_are_not_finite_numbers_are_rejected(bad):
    with pytest.raises(ValueError, match="finite numbers"):
        summarise([1.0, bad])


def test_percentile_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1, 2], 101)


RECORDS = [
    {"scenario": "cold", "client_ms": 1500.0, "billed_ms": 1400, "init_ms": 1300.0},
    {"scenario": "warm", "client_ms": 20.0, "billed_ms": 17, "init_ms": None},
    {"scenario": "cold", "client_ms": 1700.0, "billed_ms": 1600, "init_ms": 1500.0},
    {"scenario": "warm", "client_ms": 24.0, "billed_ms": 19, "init_ms": None},
    {"scenario": "warm", "client_ms": 22.0, "billed_ms": 18, "init_ms": None},
]


def test_table_groups_records_in_order_of_first_appearance_one_row_per_field():
    rows = table(RECORDS, by="scenario", fields=["client_ms", "billed_ms"])
    assert [(row["scenario"], row["field"]) for row in rows] == [
        ("cold", "client_ms"),
        ("cold", "billed_ms"),
        ("warm", "client_ms"),
        ("warm", "billed_ms"),
    ]
    cold_client = rows[0]
    assert (cold_client["n"], cold_client["p50"], cold_client["mean"]) == (2, 1600.0, 1600.0)
    warm_billed = rows[3]
    assert (warm_billed["n"], warm_billed["p50"], warm_billed["max"]) == (3, 18.0, 19.0)


def test_table_skips_none_values_and_gives_no_row_when_a_group_has_none_at_all():
    rows = table(RECORDS, fields=["init_ms"])
    assert [(row["scenario"], row["n"], row["p50"]) for row in rows] == [("cold", 2, 1400.0)]


def test_table_names_a_missing_group_key():
    with pytest.raises(KeyError, match="no 'scenario' key"):
        table([{"client_ms": 1.0}])


def test_markdown_table_has_a_header_and_one_line_per_row():
    text = to_markdown(table(RECORDS, fields=["client_ms"]))
    lines = text.splitlines()
    assert lines[0] == "| scenario | field | n | min | p50 | p90 | p99 | max | mean | trimmed_mean |"
    assert lines[1] == "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    assert (
        lines[2] == "| cold | client_ms | 2 | 1,500.0 | 1,600.0 | 1,680.0 | – | 1,700.0 | 1,600.0 | 1,600.0 |"
    )
    assert len(lines) == 4


def test_table_gives_no_p99_below_twenty_values_and_one_from_twenty_on():
    few = table([{"scenario": "warm", "client_ms": float(v)} for v in range(19)])
    enough = table([{"scenario": "warm", "client_ms": float(v)} for v in range(20)])
    assert few[0]["p99"] is None
    assert enough[0]["p99"] == pytest.approx(18.81)


def test_markdown_cells_escape_dollars_and_pipes_so_nothing_renders_as_maths():
    text = to_markdown([{"item": "per hour", "cost": "$0.03 | $22", "done": "\\$1", "again": "\\\\$2"}])
    assert text.splitlines()[2] == "| per hour | \\\\$0.03 \\| \\\\$22 | \\\\$1 | \\\\$2 |"
