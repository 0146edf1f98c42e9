"""The benchmark's records, medians and conclusion come from the invocations, not from pre-written text."""

from __future__ import annotations

from helpers import bench, cost, findings
from helpers.invoke import Invocation
from helpers.reports import InitReport, parse_report


def rec(scenario, client, duration, init=None, billed=None, init_type="on-demand", error=None, **extra):
    billed = billed if billed is not None else int(duration + (init or 0)) + 1
    return {
        "scenario": scenario,
        "client_ms": client,
        "duration_ms": duration,
        "init_ms": init,
        "billed_ms": billed,
        "init_type": init_type,
        "cold": init is not None,
        "init_in_duration": False,
        "error": error,
        **extra,
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
PHASES = {
    "runtime_start": 40.0,
    "import_torch": 900.0,
    "import_pil": 30.0,
    "load_weights": 80.0,
    "first_forward": 60.0,
}


def _invocation(payload, report_line, init_report=None):
    return Invocation(
        target="f:on-demand",
        status_code=200,
        payload=payload,
        function_error=None,
        executed_version="7",
        report=parse_report(report_line),
        client_ms=1234.5,
        log_tail="",
        request_id="abc",
        init_report=init_report,
    )


REPORT = "REPORT RequestId: abc\tDuration: {d} ms\tBilled Duration: {b} ms\tMemory Size: 2048 MB\tMax Memory Used: 300 MB"


def test_a_cold_start_records_its_init_phases_and_a_warm_one_leaves_them_empty():
    init = {"phases_ms": PHASES, "total_ms": 1110.0, "torch": {"version": "2.13.0+cpu"}}
    cold = bench.record(
        "cold",
        0,
        _invocation(
            {"init_type": "on-demand", "init": init},
            REPORT.format(d=30, b=1142) + "\tInit Duration: 1111.00 ms",
        ),
    )
    assert cold["cold"] and not cold["init_in_duration"] and cold["init_ms"] == 1111.0
    assert cold["init_import_torch_ms"] == 900.0 and cold["init_first_forward_ms"] == 60.0
    assert cold["init_total_ms"] == 1110.0
    warm = bench.record("warm", 1, _invocation({"init_type": "on-demand"}, REPORT.format(d=20, b=20)))
    assert not warm["cold"] and all(warm[f] is None for f in bench.PHASE_FIELDS)
    assert set(bench.FIELDS) <= set(cold) and set(bench.FIELDS) <= set(warm)


def test_a_provisioned_environments_first_response_is_not_a_cold_start():
    first = bench.record(
        "provisioned",
        0,
        _invocation(
            {"init_type": "provisioned-concurrency", "init": {"phases_ms": PHASES}}, REPORT.format(d=20, b=20)
        ),
    )
    assert not first["cold"] and first["init_import_torch_ms"] is None


def test_an_init_past_ten_seconds_counts_as_a_cold_start_with_its_init_inside_duration():
    line = REPORT.format(d=11135, b=11135)  # AWS re-ran init inside the invocation: no Init Duration
    by_init_report = bench.record(
        "cold", 0, _invocation({"init_type": "on-demand"}, line, InitReport(10000.0, "init", "timeout"))
    )
    by_first_response = bench.record(
        "cold",
        0,
        _invocation({"init_type": "on-demand", "init": {"phases_ms": PHASES, "total_ms": 10900.0}}, line),
    )
    for r in (by_init_report, by_first_response):
        assert r["cold"] and r["init_in_duration"] and r["init_ms"] is None
    assert by_first_response["init_total_ms"] == 10900.0


def test_an_init_that_failed_inside_the_request_is_a_failed_on_demand_cold_start():
    line = REPORT.format(d=3144, b=3145) + "\tStatus: error\tError Type: Runtime.ExitError"
    inv = _invocation(
        {"errorType": "Runtime.ExitError", "errorMessage": "killed"},
        line,
        InitReport(3144.0, "init", "error"),
    )
    inv.function_error = "Unhandled"
    r = bench.record("burst-provisioned", 1, inv)
    assert r["cold"] and r["init_type"] == "on-demand" and r["error"].startswith("Runtime.ExitError")


def test_medians_skip_failed_invocations_and_missing_fields():
    m = findings.medians(RECORDS)
    assert m["cold"] == {"client_ms": 1400.0, "duration_ms": 35.0, "init_ms": 1300.0, "billed_ms": 1336.0}
    assert m["warm"]["init_ms"] is None and m["warm"]["client_ms"] == 25.0


def test_conclusion_states_the_measured_speed_up_spread_spill_over_and_break_even():
    text = findings.conclusion(RECORDS, memory_mb=2048, arch="x86_64", environments=1)
    assert "a cold start took 1,400 ms at the median, 1,480 ms at p90 (n=2)" in text
    assert "of which 1,300 ms was init" in text and "provisioned was 54x faster" in text
    assert "alike" in text
    assert (
        "2 requests at once on a fresh version with 1 provisioned environment(s): provisioned served 1"
        in text
    )
    assert "1 spilled over to on-demand and 1 of those paid a cold start." in text
    expected = cost.break_even_requests_per_month(22.0, 2048, "x86_64", 1, billed_ms_provisioned=22.0)
    assert f"above {expected:,.0f} requests a month" in text
    capacity = cost.max_requests_per_month(22.0, 1)
    assert f"a provisioned environment busy {expected / capacity:.0%} of the time" in text
    assert "1 invocation(s) failed" in text


def test_conclusion_asks_for_a_rerun_when_series_are_short_or_noisy_and_not_otherwise():
    assert "**Rerun needed**" in findings.conclusion(RECORDS, 2048, "x86_64", 1)  # two invocations each
    steady = [rec("warm", 20 + i % 3, 18) for i in range(12)] + [
        rec("provisioned", 21 + i % 3, 18, init_type="provisioned-concurrency") for i in range(12)
    ]
    assert "one run is enough" in findings.conclusion(steady, 2048, "x86_64", 1)
    noisy = steady + [rec("warm", 200, 180) for _ in range(3)]
    assert "p90 over 1.5x the median" in findings.conclusion(noisy, 2048, "x86_64", 1)


def test_conclusion_explains_long_inits_as_cold_starts():
    long_init = [rec("cold", 11200, 11135, init=None, init_in_duration=True, cold=True), rec("warm", 24, 20)]
    long_init[0]["init_in_duration"] = True
    text = findings.conclusion(long_init, 3008, "x86_64", 1)
    assert "1 cold start(s) ran init past 10 s" in text and "Duration includes the init" in text


def test_conclusion_says_so_when_provisioned_is_not_faster():
    slow = [rec("cold", 100, 50, init=40), rec("provisioned", 400, 390, init_type="provisioned-concurrency")]
    assert "4.0x **slower**" in findings.conclusion(slow, memory_mb=1024, arch="x86_64", environments=1)


def test_conclusion_does_not_credit_provisioned_concurrency_for_a_warm_gap():
    gap = [rec("warm", 300, 290), rec("provisioned", 90, 80, init_type="provisioned-concurrency")]
    text = findings.conclusion(gap, memory_mb=2048, arch="x86_64", environments=1)
    assert "210 ms apart" in text and "does not make a warm environment faster" in text


def test_a_provisioned_burst_without_a_spill_over_cold_start_is_flagged():
    burst = [
        rec("burst-provisioned", 30, 21, init_type="provisioned-concurrency"),
        rec("burst-provisioned", 40, 30),  # on-demand, no init: an idle environment was reused
    ]
    text = findings.conclusion(burst, memory_mb=2048, arch="x86_64", environments=1)
    assert "0 of those paid a cold start (unexpected" in text


def test_provisioned_requests_slowed_by_neighbouring_cold_starts_are_explained():
    records = [rec("provisioned", 25, 21, init_type="provisioned-concurrency")] + [
        rec("burst-provisioned", 300, 280, init_type="provisioned-concurrency"),
        rec("burst-provisioned", 2000, 300, init=1600),
    ]
    text = findings.conclusion(records, 2048, "x86_64", 1)
    assert "took 300 ms against 25.0 ms in the sequential series" in text and "shared cores" in text


def test_tables_shorten_request_ids_and_show_missing_values_as_dashes():
    text = findings.first_of_each([{**RECORDS[3], "request_id": "0123456789abcdef"}])
    assert "01234567…" in text and "0123456789abcdef" not in text and "–" in text


def test_init_table_takes_a_cold_start_apart_or_says_why_it_cannot():
    text = findings.init_table(
        {
            "phases_ms": PHASES,
            "total_ms": 1110.0,
            "torch": {"version": "2.13.0+cpu", "build": "cpu", "from": "/mnt/ml/framework"},
        },
        1150.0,
    )
    assert (
        "| import_torch | 900.0 | 81% |" in text
        and "Init Duration (REPORT)" in text
        and "/mnt/ml/framework" in text
    )
    assert "no `init` block" in findings.init_table(None)


def test_aws_expectations_are_a_reasoned_range_for_this_function_and_the_other_models_figures_are_labelled():
    from helpers import expectations

    text = expectations.table(
        findings.medians(RECORDS), 2048, files=1200, read_bytes=280e6, cores_here=2, cpu_scaled_here=False
    )
    assert "cold start: init" in text and "1,200 files x 3 round trips" in text and " to " in text
    assert "Not this function" in text and "NTS-Net" in text and "11,135 ms" in text
    cold = expectations.cold_start(1400, 2048, 1200, 280e6, cores_here=2, cpu_scaled_here=True)
    assert cold.low_ms < cold.high_ms and cold.low_ms > 1400  # EFS adds to this machine's init, never less
    assert expectations.cpu_factor(2048, 2, True) == (1.0, 1.0)
    assert expectations.cpu_factor(2048, 2, False)[1] == 2 / (2048 / 1769)


def test_caveats_say_where_cpu_scaling_is_not_enforced():
    assert "Where CPU scaling is not enforced" in "\n".join(findings.caveats(None, backend="local"))
    assert "not enforced" not in "\n".join(findings.caveats(True, backend="local"))
    assert findings.caveats(None, backend="aws") == []


def test_caveats_say_first_which_sandbox_guarantees_are_off():
    off = (
        "INIT_START Runtime Version: python:3.11.local\tLocal Sandbox: off: filesystem, packages not enforced "
        "(LOCALAWS_SANDBOX=off)\tLocal Runtime: runs on this machine's interpreter"
    )
    summary = findings.sandbox_summary([off])
    assert summary == "off: filesystem, packages not enforced (LOCALAWS_SANDBOX=off)"
    lines = findings.caveats(False, backend="local", sandbox=summary)
    assert "LOCALAWS_SANDBOX=off" in lines[1]
    on = findings.sandbox_summary(
        ["INIT_START x\tLocal Sandbox: on: every guarantee of the Lambda sandbox is enforced"]
    )
    assert not any("sandbox is" in line for line in findings.caveats(True, backend="local", sandbox=on))
    assert findings.sandbox_summary(["INIT_START Runtime Version: python:3.12.v36"]) is None


def test_cpu_scaling_is_read_from_the_engines_init_start_line():
    scaled = (
        "INIT_START Runtime Version: python:3.11.local\tLocal Sandbox: on: every guarantee of the Lambda sandbox "
        "is enforced\tLocal Runtime: runs as uid 1000; cpu: 1.16 vCPU (scaled with MemorySize); ..."
    )
    off = "INIT_START Runtime Version: python:3.11.local\tLocal Sandbox: on, but cpu, memory not enforced (no cgroup)"
    assert findings.cpu_scaling_enforced([scaled], backend="local") is True
    assert findings.cpu_scaling_enforced([scaled, off], backend="local") is False
    assert findings.cpu_scaling_enforced(["INIT_START Runtime Version: python3.12"], backend="local") is False
    assert findings.cpu_scaling_enforced([], backend="local") is False
    assert findings.cpu_scaling_enforced([], backend="aws") is True


def test_key_values_flattens_nested_dicts_into_a_short_table():
    text = findings.key_values({"a": {"b": 1.25, "c": "x" * 100}, "ResponseMetadata": {"RequestId": "r"}})
    assert "| a.b | 1.2 |" in text and "RequestId" not in text and "…" in text


def test_an_exercise_answer_says_what_was_predicted_and_measured():
    assert "right" in findings.check_prediction(2, 2, "because")
    assert findings.check_prediction(2, 2, "because").startswith("<details><summary>Answer")  # folded
    assert "otherwise" in findings.check_prediction(1, 2, "because")
    assert "no prediction" in findings.check_prediction(None, 2, "because")


def test_a_break_even_beyond_what_the_environments_can_serve_is_no_break_even():
    """Provisioned requests billed longer than warm ones (noise on shared cores) can put the break-even
    past 100% utilisation: one environment cannot be busy 107% of the time, so the text says it never
    pays for itself on price, and what the break-even is when both bill the same duration."""
    records = [rec("warm", 60, 57, billed=58)] * 12 + [
        rec("provisioned", 75, 70, billed=71, init_type="provisioned-concurrency")
    ] * 12
    text = findings.conclusion(records, memory_mb=2048, arch="x86_64", environments=1)
    rate = cost.break_even_requests_per_month(58, 2048, "x86_64", 1, billed_ms_provisioned=71)
    assert rate > cost.max_requests_per_month(71, 1)  # the premise: past what one environment serves
    assert "That is a provisioned environment busy" not in text and "below that utilisation" not in text
    assert "more than 1 provisioned environment(s) can serve" in text
    same = cost.break_even_requests_per_month(58, 2048, "x86_64", 1) / cost.max_requests_per_month(58, 1)
    assert f"at {same:.0%} utilisation" in text


def test_no_break_even_at_all_still_gives_the_break_even_at_equal_durations():
    records = [rec("warm", 30, 20, billed=21)] * 12 + [
        rec("provisioned", 80, 70, billed=71, init_type="provisioned-concurrency")
    ] * 12
    assert cost.break_even_requests_per_month(21, 2048, "x86_64", 1, billed_ms_provisioned=71) is None
    text = findings.conclusion(records, memory_mb=2048, arch="x86_64", environments=1)
    assert "71.0 ms against 21.0 ms on demand, it never costs less than on-demand" in text
    assert "breaks even at 60% utilisation of a provisioned environment" in text


def test_the_conclusion_prices_the_break_even_with_the_cold_share_too():
    from helpers import cost

    mix = cost.ColdMix(0.05, 60, 1600, 300e6)
    text = findings.conclusion(RECORDS, 2048, "x86_64", 1, mix)
    assert "**With 5% of requests starting cold** (each billing its init and reading 300 MB from EFS)" in text
    assert "With 5%" not in findings.conclusion(RECORDS, 2048, "x86_64", 1)
