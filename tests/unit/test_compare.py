"""helpers.compare: the SageMaker serverless cost model, the four options' latencies, and a verdict that
follows the numbers (change them and it changes)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from helpers import compare, cost

M = compare.Measured(
    lambda_memory_mb=2048,
    lambda_arch="x86_64",
    lambda_environments=1,
    sagemaker_memory_mb=2048,
    sagemaker_provisioned=1,
    bytes_per_request=100_000,
)


def _records(warm_ms: float, cold_ms: float, billed_ms: float) -> list[dict]:
    rows = [
        {"scenario": "warm", "client_ms": warm_ms + i, "billed_ms": billed_ms, "cold": False}
        for i in range(5)
    ]
    rows += [{"scenario": "provisioned", "client_ms": warm_ms + 10, "billed_ms": billed_ms, "cold": False}]
    rows += [{"scenario": "cold", "client_ms": cold_ms, "billed_ms": billed_ms, "cold": True}]
    rows += [{"scenario": "warm", "client_ms": 1.0, "billed_ms": 1, "cold": False, "error": "Throttling"}]
    return rows


def test_sagemaker_prices_are_dated_and_sourced_in_prices_json():
    data = json.loads(cost.PRICES_FILE.read_text())
    assert data["sagemaker_serverless"]["source"].startswith("https://aws.amazon.com/sagemaker")
    assert any("sagemaker_serverless" in note and "NOT re-checked" in note for note in data["notes"])


def test_sagemaker_monthly_cost_worked_out_by_hand():
    # 1M requests x 0.1 s x 2 GB x $0.00002 = $4; data 1M x 100 kB = 100 GB x $0.016 = $1.60
    assert compare.sagemaker_monthly(1e6, 100, 2048, 100_000) == pytest.approx(4.0 + 1.6)
    # one provisioned container: 2 GB x 730 h x 3600 s x $0.0000048 = $25.2288, plus 1M x 0.1 s x 2 GB x $0.0000106
    with_pc = compare.sagemaker_monthly(1e6, 100, 2048, 100_000, provisioned=1)
    assert with_pc == pytest.approx(25.2288 + 2.12 + 1.6)
    assert compare.sagemaker_monthly(0, 0, 2048, 0, provisioned=1, hours=1) == pytest.approx(
        2 * 3600 * 0.0000048
    )


def test_latencies_take_the_warm_series_and_only_successful_cold_starts():
    rows = compare.latencies(_records(80, 2500, 80), _records(120, 4000, 110))
    by = {row["option"]: row for row in rows}
    assert by["Lambda on-demand"]["warm p50 ms"] == 82  # 80..84, the throttled 1 ms left out
    assert by["Lambda on-demand"]["cold p50 ms"] == 2500
    assert by["Lambda provisioned"]["warm p50 ms"] == 90 and by["Lambda provisioned"]["cold p50 ms"] is None
    assert by["SageMaker serverless"]["cold p50 ms"] == 4000
    assert by["SageMaker serverless + PC"]["billed ms"] == 110


def test_the_verdict_follows_the_measurements_and_says_the_caveat_first():
    lam, sm = _records(80, 2500, 80), _records(120, 4000, 110)
    text = compare.conclusion(compare.latencies(lam, sm), M)
    assert text.startswith("- **First, what this comparison cannot show:**")
    assert "**Warm request:** Lambda on-demand, p50 82.0 ms" in text
    assert "**First request after idle:** Lambda on-demand, p50 2,500 ms" in text
    assert "**Cheapest at 10k requests/month:** Lambda on-demand" in text
    # a SageMaker that answers faster and bills a tenth of Lambda's duration wins on both counts
    text = compare.conclusion(
        compare.latencies(lam, _records(40, 1500, 5)), dataclasses.replace(M, bytes_per_request=0)
    )
    assert "**Warm request:** SageMaker serverless, p50 42.0 ms" in text
    assert "**First request after idle:** SageMaker serverless," in text
    assert "**Cheapest at 1M requests/month:** SageMaker serverless," in text


def test_differences_within_the_spread_are_not_ranked():
    """Issue 20: 05 declared a winner on 54.6 against 69.7 ms, and on 1,747 against 1,791 ms, from noisy runs."""
    lam, sm = _records(80, 2500, 80), _records(81, 2510, 80)  # p50s 1 ms apart, each spread 1.6 ms
    text = compare.conclusion(compare.latencies(lam, sm), M)
    assert "**Warm request:** within the spread of each other:" in text


def test_a_cold_share_puts_init_and_efs_reads_into_lambdas_on_demand_price():
    rows = compare.latencies(_records(80, 2500, 80), _records(120, 4000, 110))
    warm_only = compare.monthly_costs(rows, M, 1e6)["Lambda on-demand"]
    mixed = dataclasses.replace(M, cold_share=0.05, lambda_cold_billed_ms=1600, cold_read_bytes=300e6)
    with_cold = compare.monthly_costs(rows, mixed, 1e6)["Lambda on-demand"]
    efs = 1e6 * 0.05 * 0.3 * cost.load_prices().efs.elastic_read_gb
    assert with_cold > warm_only + efs
    assert (
        compare.monthly_costs(rows, mixed, 1e6)["SageMaker serverless"]
        == compare.monthly_costs(rows, M, 1e6)["SageMaker serverless"]
    )
    assert "5% of requests starting cold" in compare.conclusion(rows, mixed)


def test_provisioned_options_are_not_priced_beyond_their_capacity():
    rows = compare.latencies(_records(80, 2500, 100), _records(120, 4000, 100))
    capacity = cost.max_requests_per_month(100, 1)  # one environment, 100 ms back to back
    assert "Lambda provisioned" in compare.monthly_costs(rows, M, capacity * 0.9)
    beyond = compare.monthly_costs(rows, M, capacity * 1.1)
    assert "Lambda provisioned" not in beyond and "SageMaker serverless + PC" not in beyond
    assert "Lambda on-demand" in beyond


def test_the_lambda_run_is_the_newest_04_saved_and_its_absence_names_the_notebook(tmp_path):
    with pytest.raises(FileNotFoundError, match="run 04_benchmark.ipynb first"):
        compare.latest_run(tmp_path)
    (tmp_path / "benchmark-20261201T100000Z.json").write_text(json.dumps({"records": [1]}))
    (tmp_path / "benchmark-20261201T110000Z.json").write_text(json.dumps({"records": [2]}))
    assert compare.latest_run(tmp_path)["records"] == [2]
