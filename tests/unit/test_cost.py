"""The cost model, pinned against prices from prices.json and values worked out by hand."""

import logging

import pytest

from helpers import cost
from helpers.cost import (
    break_even_requests_per_month,
    cost_per_million,
    invocation_cost,
    load_prices,
    max_requests_per_month,
    monthly_cost_on_demand,
    monthly_cost_provisioned,
)

# us-east-1 prices written out, so a change to prices.json shows up here as a failing test.
X86_ON_DEMAND = 0.0000166667
X86_PC_ALLOCATION = 0.0000041667
X86_PC_DURATION = 0.0000097222
ARM_ON_DEMAND = 0.0000133334
ARM_PC_ALLOCATION = 0.0000033334
ARM_PC_DURATION = 0.0000077778
PER_REQUEST = 0.20 / 1_000_000


def test_price_file_states_its_source_date_and_that_it_was_not_rechecked():
    prices = load_prices()
    assert prices.source == "https://aws.amazon.com/lambda/pricing/"
    assert prices.region == "us-east-1"
    assert prices.as_of == "2026-11-23"
    assert prices.rechecked_against_source is False
    assert any("arm64" in note and "0.0000033334" in note for note in prices.notes)


def test_price_file_holds_the_published_rates():
    prices = load_prices()
    assert prices.per_request == pytest.approx(PER_REQUEST)
    x86, arm = prices.for_arch("x86_64"), prices.for_arch("arm64")
    assert (
        x86.on_demand_gb_second,
        x86.provisioned_concurrency_gb_second,
        x86.provisioned_duration_gb_second,
    ) == (
        X86_ON_DEMAND,
        X86_PC_ALLOCATION,
        X86_PC_DURATION,
    )
    assert (
        arm.on_demand_gb_second,
        arm.provisioned_concurrency_gb_second,
        arm.provisioned_duration_gb_second,
    ) == (
        ARM_ON_DEMAND,
        ARM_PC_ALLOCATION,
        ARM_PC_DURATION,
    )


def test_one_invocation_of_100_ms_at_1024_mb_on_x86():
    # 0.1 s x 1 GB x 0.0000166667 + 0.0000002 = 0.00000186667
    assert invocation_cost(100, 1024, "x86_64") == pytest.approx(0.00000186667, rel=1e-9)


def test_gb_seconds_scale_with_memory_in_units_of_1024_mb():
    # 0.1 s x 0.5 GB x 0.0000166667 + 0.0000002 = 0.000000833335 + 0.0000002 = 0.000001033335
    assert invocation_cost(100, 512, "x86_64") == pytest.approx(0.000001033335, rel=1e-9)


def test_a_million_on_demand_requests_of_100_ms_at_1024_mb():
    # x86: 1M x 0.2 / 1M + 1M x 0.1 x 1 x 0.0000166667 = 0.2 + 1.66667 = 1.86667
    assert monthly_cost_on_demand(1_000_000, 100, 1024, "x86") == pytest.approx(1.86667, rel=1e-9)
    # arm64: 0.2 + 1M x 0.1 x 0.0000133334 = 0.2 + 1.33334 = 1.53334
    assert monthly_cost_on_demand(1_000_000, 100, 1024, "arm64") == pytest.approx(1.53334, rel=1e-9)


def test_one_provisioned_environment_for_a_month_with_a_million_requests():
    # allocation: 1 env x 1 GB x 730 h x 3600 s = 2,628,000 GB-s x 0.0000041667 = 10.9500876
    # duration:   1M x 0.1 s x 1 GB = 100,000 GB-s x 0.0000097222       =  0.97222
    # requests:   1M x 0.2 / 1M                                          =  0.2
    assert monthly_cost_provisioned(1_000_000, 100, 1024, "x86_64", environments=1) == pytest.approx(
        12.1223076, rel=1e-9
    )


def test_provisioned_allocation_is_paid_even_with_no_requests():
    # arm64, 2 envs x 2 GB x 24 h x 3600 s = 345,600 GB-s x 0.0000033334 = 1.15202304
    assert monthly_cost_provisioned(0, 100, 2048, "arm64", environments=2, hours=24) == pytest.approx(
        1.15202304, rel=1e-9
    )


def test_break_even_for_one_x86_environment_is_sixty_percent_utilisation():
    # A = 10.9500876 per month; saving per request = 0.1 GB-s x (0.0000166667 - 0.0000097222) = 6.9445e-7
    # R = 10.9500876 / 6.9445e-7 = 15,768,000 requests/month, 60% of the 26,280,000 one env can serve.
    break_even = break_even_requests_per_month(100, 1024, "x86_64", environments=1)
    assert break_even == pytest.approx(15_768_000, rel=1e-9)
    assert break_even / max_requests_per_month(100, environments=1) == pytest.approx(0.60, rel=1e-4)


def test_both_models_cost_the_same_at_the_break_even():
    break_even = break_even_requests_per_month(100, 1024, "x86_64", environments=1)
    assert monthly_cost_on_demand(break_even, 100, 1024) == pytest.approx(
        monthly_cost_provisioned(break_even, 100, 1024, environments=1), rel=1e-12
    )


def test_break_even_on_arm64_with_two_environments():
    # A = 2 x 2 GB x 2,628,000 s x 0.0000033334 = 35.0407008
    # saving = 0.1 s x 2 GB x (0.0000133334 - 0.0000077778) = 1.11112e-6  ->  R = 31,536,378.43
    assert break_even_requests_per_month(100, 2048, "arm64", environments=2) == pytest.approx(
        31_536_378.43, rel=1e-9
    )


def test_break_even_uses_the_provisioned_billed_duration_when_it_differs():
    # On-demand bills 300 ms on average (cold starts bill init), provisioned 100 ms:
    # saving = 1 GB x (0.3 x 0.0000166667 - 0.1 x 0.0000097222) = 5.00001e-6 - 9.7222e-7 = 4.02779e-6
    # R = 10.9500876 / 4.02779e-6 = 2,718,634.19
    assert break_even_requests_per_month(
        300, 1024, "x86_64", environments=1, billed_ms_provisioned=100
    ) == pytest.approx(2_718_634.19, rel=1e-9)


def test_no_break_even_when_provisioned_requests_cost_more_than_on_demand_ones():
    # 10 ms on demand vs 100 ms provisioned: 0.01 x 0.0000166667 < 0.1 x 0.0000097222
    assert break_even_requests_per_month(10, 1024, billed_ms_provisioned=100) is None
    assert break_even_requests_per_month(0, 1024) is None


def test_cost_per_million_on_demand_does_not_depend_on_the_rate():
    assert cost_per_million(100, 1024, "x86_64") == pytest.approx(1.86667, rel=1e-9)


def test_cost_per_million_provisioned_shares_the_allocation_over_the_rate():
    # 10M requests: 10.9500876 + 10M x 0.1 x 0.0000097222 + 10M x 0.2/1M = 10.9500876 + 9.7222 + 2
    # = 22.6722876 per month -> 2.26722876 per million
    assert cost_per_million(
        100, 1024, "x86_64", environments=1, requests_per_month=10_000_000
    ) == pytest.approx(2.26722876, rel=1e-9)


def test_cost_per_million_provisioned_needs_a_rate():
    with pytest.raises(ValueError, match="requests_per_month"):
        cost_per_million(100, 1024, environments=1)


def test_more_requests_than_the_environments_can_serve_is_logged(caplog):
    # One env at 100 ms serves at most 730 x 3600 x 10 = 26,280,000 requests per month.
    assert max_requests_per_month(100, environments=1) == pytest.approx(26_280_000)
    with caplog.at_level(logging.WARNING, logger="helpers.cost"):
        monthly_cost_provisioned(26_000_000, 100, 1024, environments=1)
        assert not caplog.records
        monthly_cost_provisioned(27_000_000, 100, 1024, environments=1)
    assert "spill over to on-demand" in caplog.text


def test_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="Unknown architecture 'ppc64'"):
        invocation_cost(100, 1024, "ppc64")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: invocation_cost(100, 0), "memory_mb must be positive"),
        (lambda: invocation_cost(-1, 1024), "billed_ms must not be negative"),
        (lambda: monthly_cost_on_demand(-5, 100, 1024), "requests_per_month must not be negative"),
        (
            lambda: monthly_cost_provisioned(5, 100, 1024, environments=-1),
            "environments must not be negative",
        ),
    ],
)
def test_impossible_inputs_are_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- beside Lambda: EFS, S3, HTTP API, logs, and the README's full-run table ---------------------------

EFS_READ_GB, EFS_WRITE_GB, EFS_STORAGE_GB_MONTH = 0.03, 0.06, 0.30


def test_price_file_holds_efs_elastic_throughput_with_its_source():
    efs = load_prices().efs
    assert efs.source == "https://aws.amazon.com/efs/pricing/"
    assert (efs.elastic_read_gb, efs.elastic_write_gb, efs.storage_gb_month) == (
        EFS_READ_GB,
        EFS_WRITE_GB,
        EFS_STORAGE_GB_MONTH,
    )
    assert any("efs" in note and "NOT re-checked" in note for note in load_prices().notes)


def test_efs_cost_bills_reads_writes_and_storage_time():
    from helpers.cost import cold_start_efs_cost, efs_cost

    assert efs_cost(gb_read=2) == pytest.approx(2 * EFS_READ_GB)
    assert efs_cost(gb_written=2) == pytest.approx(2 * EFS_WRITE_GB)
    assert efs_cost(gb_stored=10, hours=730) == pytest.approx(10 * EFS_STORAGE_GB_MONTH)
    assert cold_start_efs_cost(300e6, cold_starts=10) == pytest.approx(10 * 0.3 * EFS_READ_GB)
    with pytest.raises(ValueError, match="gb_read must not be negative"):
        efs_cost(gb_read=-1)


def test_the_full_run_lists_each_line_and_a_total_that_is_their_sum():
    from helpers.workshop_cost import RunAssumptions, workshop_run

    items = workshop_run()
    assert items[-1].item == "Total" and items[-1].usd == pytest.approx(sum(i.usd for i in items[:-1]))
    by_name = {i.item: i.usd for i in items}
    run = RunAssumptions()
    reads = by_name["EFS Elastic Throughput, reads (every init reads the bundle)"]
    assert reads == pytest.approx(
        (run.cold_starts + run.provisioned_inits) * run.bundle_read_gb * EFS_READ_GB
    )
    pc = by_name["Provisioned Concurrency, allocated"]
    assert pc == pytest.approx(2 * 2 * 3600 * X86_PC_ALLOCATION)  # 1 env x 2 GB x 2 h
    name = "EFS Elastic Throughput, 06's cold-cache copy, if asked (one read and one write of the bundle)"
    assert by_name[name] == 0  # off on AWS unless the learner asks
    asked = {i.item: i.usd for i in workshop_run(RunAssumptions(cold_cache_copies=1))}
    assert asked[name] == pytest.approx(run.efs_stored_gb * (EFS_READ_GB + EFS_WRITE_GB))
    bursts = by_name["Provisioned Concurrency of 04's bursts (billed in 5-minute steps)"]
    assert bursts == pytest.approx(2 * 2 * 600 * X86_PC_ALLOCATION)  # 2 x 8 min, billed as 10
    assert by_name["SageMaker serverless Provisioned Concurrency, 05's fresh spill endpoint"] > 0
    more_cold = workshop_run(RunAssumptions(cold_starts=run.cold_starts + 10))[-1].usd
    assert more_cold > items[-1].usd  # every cold start costs its EFS read and its billed init


def test_the_readme_cost_table_is_computed_from_prices_json():
    import re

    from helpers.config import REPO_ROOT
    from helpers.workshop_cost import markdown_table, workshop_run

    readme = (REPO_ROOT / "README.md").read_text()
    found = re.search(r"<!-- cost-table:start -->\n(.*?)\n<!-- cost-table:end -->", readme, re.S)
    assert found, "README.md lost its cost table markers"
    assert found.group(1) == markdown_table(workshop_run()), (
        "README's cost table differs from helpers.workshop_cost.workshop_run(): paste markdown_table(workshop_run()) in"
    )


def test_the_readme_states_the_date_of_the_prices_next_to_its_cost_table():
    import re

    from helpers.config import REPO_ROOT

    prices = load_prices()
    readme = (REPO_ROOT / "README.md").read_text()
    before_table = readme.split("<!-- cost-table:start -->")[0].rstrip().rsplit("\n\n", 1)[-1]
    said = re.sub(r"\s+", " ", before_table)
    assert f"prices as of {prices.as_of}" in said and "prices.json" in said, (
        f"README's paragraph above the cost table must say 'prices as of {prices.as_of}' (prices.json's as_of)"
    )
    if not prices.rechecked_against_source:
        assert "not re-checked" in said


def test_efs_reads_of_cold_starts_raise_the_on_demand_cost_and_lower_the_break_even():
    base = invocation_cost(100, 2048)
    # one request in ten is a cold start that reads a 0.3 GB bundle: 0.03 GB per request on average
    assert invocation_cost(100, 2048, efs_read_gb=0.03) == pytest.approx(base + 0.03 * EFS_READ_GB)
    assert monthly_cost_on_demand(1000, 100, 2048, efs_read_gb=0.03) == pytest.approx(
        1000 * (base + 0.03 * EFS_READ_GB)
    )
    plain = break_even_requests_per_month(100, 2048)
    with_reads = break_even_requests_per_month(100, 2048, efs_read_gb=0.03)
    assert with_reads < plain


def test_a_million_cold_starts_pay_a_million_bundle_reads():
    assert cost_per_million(2500, 2048, efs_read_gb=0.3) == pytest.approx(
        cost_per_million(2500, 2048) + 1_000_000 * 0.3 * EFS_READ_GB
    )


def test_provisioned_concurrency_bills_whole_five_minute_steps():
    """AWS Lambda pricing: from enabling to disabling, rounded up to the nearest 5 minutes."""
    five = cost.provisioned_allocation_cost(1, 2048, 300)
    assert (
        cost.provisioned_allocation_cost(1, 2048, 1) == five == cost.provisioned_allocation_cost(1, 2048, 60)
    )
    assert cost.provisioned_allocation_cost(1, 2048, 301) == 2 * five
    assert cost.provisioned_allocation_cost(2, 2048, 300) == 2 * five
    assert five == pytest.approx(
        300 * 2 * cost.load_prices().for_arch("x86_64").provisioned_concurrency_gb_second
    )


def test_a_cold_share_adds_init_and_efs_reads_to_on_demand_and_lowers_the_break_even():
    mix = cost.ColdMix(0.1, warm_billed_ms=60, cold_billed_ms=1560, read_bytes=300e6)
    assert mix.billed_ms == pytest.approx(210) and mix.efs_read_gb == pytest.approx(0.03)
    rows = cost.break_even_by_cold_share(mix, (0.0, 0.01, 0.1), 2048, billed_ms_provisioned=60)
    rates = [row["break-even requests/month"] for row in rows]
    per_million = [row["on-demand per 1M"] for row in rows]
    assert rates[0] > rates[1] > rates[2] and per_million[0] < per_million[1] < per_million[2]
    # at 1% cold, the EFS reads alone are 1% x 0.3 GB x the read price per request
    efs_part = 1e6 * 0.01 * 0.3 * cost.load_prices().efs.elastic_read_gb
    assert per_million[1] - per_million[0] > efs_part
    with pytest.raises(ValueError, match="fraction from 0 to 1"):
        cost.ColdMix(1.5, 60, 1560, 300e6)
