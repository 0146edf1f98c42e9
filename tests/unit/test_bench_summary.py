"""The benchmark's medians and conclusion come from the records, not from pre-written text."""

from __future__ import annotations

from helpers import bench, cost


def rec(scenario, client, duration, init=None, billed=None, init_type="on-demand", error=None):
    billed = billed if billed is not None else int(duration + (init or 0)) + 1
    return {
        "scenario": scenario,
        "client_ms": client,
        "duration_ms": duration,
        "init_ms": init,
        "billed_ms": billed,
        "init_type": init_type,
        "error": error,
    }


RECORDS = [
    rec("cold", 1300, 30, init=1200),
    rec("cold", 1500, 40, init=1400),
    rec("cold", 9999, 1, init=1, error="Runtime.ExitError: boom"),
    rec("warm", 24, 20),
    rec("warm", 26, 22),
    rec("provisioned", 25, 21, init_type="provisioned-concurrency"),
    rec("provisioned", 27, 21, init_type="provisioned-concurrency"),
    rec("burst-provisioned", 30, 21, init_type="provisioned-concurrency"),
    rec("burst-provisioned", 1400, 30, init=1300),
]


def test_medians_skip_failed_invocations_and_missing_fields():
    m = bench.medians(RECORDS)
    assert m["cold"] == {"client_ms": 1400.0, "duration_ms": 35.0, "init_ms": 1300.0, "billed_ms": 1336.0}
    assert m["warm"]["init_ms"] is None and m["warm"]["client_ms"] == 25.0


def test_conclusion_states_the_measured_speed_up_spill_over_and_break_even():
    text = bench.conclusion(RECORDS, memory_mb=2048, arch="x86_64", environments=1)
    assert "A cold start took 1400 ms" in text and "of which 1300 ms was init" in text
    assert "provisioned invocation took 26 ms: provisioned was 53.8x faster" in text
    assert "are alike" in text
    assert "burst of 2 concurrent requests" in text and "1 spilled over" in text
    assert "1 had to start one (a cold start), 0 found an idle on-demand environment" in text
    expected = cost.break_even_requests_per_month(22.0, 2048, "x86_64", 1, billed_ms_provisioned=22.0)
    assert f"above {expected:,.0f} requests a month" in text
    assert "1 invocation(s) failed" in text


def test_conclusion_says_so_when_provisioned_is_not_faster():
    slow = [rec("cold", 100, 50, init=40), rec("provisioned", 400, 390, init_type="provisioned-concurrency")]
    assert "4.0x SLOWER" in bench.conclusion(slow, memory_mb=1024, arch="x86_64", environments=1)


def test_conclusion_does_not_credit_provisioned_concurrency_for_a_warm_gap():
    gap = [
        rec("warm", 300, 290),
        rec("provisioned", 90, 80, init_type="provisioned-concurrency"),
    ]
    text = bench.conclusion(gap, memory_mb=2048, arch="x86_64", environments=1)
    assert "differ by 210 ms at the median" in text and "does not make a warm environment faster" in text


def test_a_spill_over_onto_an_idle_warm_environment_is_not_called_a_cold_start():
    burst = [
        rec("burst-provisioned", 30, 21, init_type="provisioned-concurrency"),
        rec("burst-provisioned", 40, 30),  # on-demand, no Init Duration: an idle environment was reused
    ]
    text = bench.conclusion(burst, memory_mb=2048, arch="x86_64", environments=1)
    assert (
        "1 spilled over to on-demand environments: 0 had to start one (a cold start), 1 found an idle" in text
    )
