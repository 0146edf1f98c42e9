"""REPORT lines as Lambda prints them on AWS, parsed, found in invoke tails and log events, formatted."""

import base64
import json

import pytest

from helpers.reports import (
    InitReport,
    Report,
    format_report,
    init_details,
    init_phases,
    init_reports_in,
    parse_init_report,
    parse_report,
    report_from_events,
    report_from_log_result,
    reports_from_events,
)

# The cold-start example from the notes: Billed = ceil(15.74 + 130.49) = 147 since Aug 2025.
COLD = (
    "REPORT RequestId: 3f1c9a52-8e0b-4c1e-9d7a-2b6f0e4a9c11\tDuration: 15.74 ms\tBilled Duration: 147 ms"
    "\tMemory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 130.49 ms"
)
# A warm invocation as CloudWatch stores it: every field followed by a tab, the message by a newline.
WARM_EVENT_MESSAGE = (
    "REPORT RequestId: 7591fa55-5523-5e8c-8daf-a0e815dd88ac\tDuration: 1351.47 ms\tBilled Duration: 1352 ms"
    "\tMemory Size: 1024 MB\tMax Memory Used: 65 MB\t\n"
)
TIMEOUT = (
    "REPORT RequestId: 4725a167-21a7-5731-99c2-c3d0e3dfd770\tDuration: 180000.00 ms"
    "\tBilled Duration: 180000 ms\tMemory Size: 1280 MB\tMax Memory Used: 1201 MB\tStatus: timeout"
)
OUT_OF_MEMORY = (
    "REPORT RequestId: 68038378-e817-489b-97dc-1709db3d7631\tDuration: 8948.73 ms\tBilled Duration: 8949 ms"
    "\tMemory Size: 2048 MB\tMax Memory Used: 2048 MB\tInit Duration: 495.04 ms\tStatus: error"
    "\tError Type: Runtime.OutOfMemory"
)
# With active tracing, AWS appends an XRAY line to the same CloudWatch event.
WITH_XRAY = (
    "REPORT RequestId: 11ee14c4-1069-4850-8988-000000000001\tDuration: 58.96 ms\tBilled Duration: 289 ms"
    "\tMemory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 229.40 ms\t\n"
    "XRAY TraceId: 1-61f99a56-47e3ca9116ae85832325d1e5\tSegmentId: 11e737e3026f8575\tSampled: true\t\n"
)


def test_cold_start_report_has_every_field_including_init_duration():
    assert parse_report(COLD) == Report(
        request_id="3f1c9a52-8e0b-4c1e-9d7a-2b6f0e4a9c11",
        duration_ms=15.74,
        billed_duration_ms=147,
        memory_size_mb=128,
        max_memory_used_mb=56,
        init_duration_ms=130.49,
        status=None,
    )


def test_warm_report_has_no_init_duration_and_tolerates_trailing_tab_and_newline():
    report = parse_report(WARM_EVENT_MESSAGE)
    assert report.request_id == "7591fa55-5523-5e8c-8daf-a0e815dd88ac"
    assert (report.duration_ms, report.billed_duration_ms) == (1351.47, 1352)
    assert (report.memory_size_mb, report.max_memory_used_mb) == (1024, 65)
    assert report.init_duration_ms is None
    assert report.status is None


def test_timeout_report_carries_status_timeout():
    report = parse_report(TIMEOUT)
    assert report.status == "timeout"
    assert report.duration_ms == 180000.0
    assert report.error_type is None


def test_out_of_memory_report_carries_status_error_and_error_type():
    report = parse_report(OUT_OF_MEMORY)
    assert (report.status, report.error_type) == ("error", "Runtime.OutOfMemory")
    assert report.init_duration_ms == 495.04


def test_xray_line_appended_by_aws_does_not_break_parsing():
    report = parse_report(WITH_XRAY)
    assert report.request_id == "11ee14c4-1069-4850-8988-000000000001"
    assert report.init_duration_ms == 229.40
    assert report.max_memory_used_mb == 56


def test_xray_fields_on_the_same_line_are_ignored():
    report = parse_report(COLD + "\tXRAY TraceId: 1-61f99a56-47e3ca9116ae85832325d1e5\tSampled: true")
    assert report == parse_report(COLD)


@pytest.mark.parametrize(
    "line",
    [
        "START RequestId: 3f1c9a52 Version: $LATEST",
        "END RequestId: 3f1c9a52",
        "2026-01-01T00:00:00Z 3f1c9a52 INFO predicted class 653",
        "",
    ],
)
def test_a_line_that_is_not_a_report_is_a_value_error_that_quotes_it(line):
    with pytest.raises(ValueError, match="Not a Lambda REPORT line") as excinfo:
        parse_report(line)
    assert repr(line) in str(excinfo.value)


def test_a_report_missing_a_required_field_names_the_field():
    with pytest.raises(ValueError, match="lacks Max Memory Used"):
        parse_report("REPORT RequestId: abc\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB")


def test_a_field_with_the_wrong_unit_is_rejected():
    with pytest.raises(ValueError, match="'Memory Size' should be in MB"):
        parse_report(COLD.replace("Memory Size: 128 MB", "Memory Size: 128 GB"))


def test_a_malformed_number_is_rejected():
    with pytest.raises(ValueError, match="'Billed Duration' has a malformed value '14.5'"):
        parse_report(COLD.replace("Billed Duration: 147 ms", "Billed Duration: 14.5 ms"))


@pytest.mark.parametrize("line", [COLD, TIMEOUT, OUT_OF_MEMORY])
def test_format_report_reproduces_the_aws_line_exactly(line):
    assert format_report(parse_report(line)) == line


def test_format_report_prints_two_decimals_and_omits_unset_fields():
    report = Report("r-1", duration_ms=2.5, billed_duration_ms=3, memory_size_mb=512, max_memory_used_mb=80)
    assert format_report(report) == (
        "REPORT RequestId: r-1\tDuration: 2.50 ms\tBilled Duration: 3 ms\tMemory Size: 512 MB\tMax Memory Used: 80 MB"
    )
    assert parse_report(format_report(report)) == report


def _tail(*lines: str) -> str:
    return base64.b64encode("\n".join(lines).encode()).decode()


def test_report_is_found_in_the_invoke_log_result_tail():
    log_result = _tail(
        "START RequestId: 3f1c9a52-8e0b-4c1e-9d7a-2b6f0e4a9c11 Version: 3",
        "2026-01-01T00:00:00.000Z\t3f1c9a52-8e0b-4c1e-9d7a-2b6f0e4a9c11\tINFO\tloaded model in 812 ms",
        "END RequestId: 3f1c9a52-8e0b-4c1e-9d7a-2b6f0e4a9c11",
        COLD + "\t",
        "",
    )
    assert report_from_log_result(log_result) == parse_report(COLD)


def test_log_result_without_a_report_is_a_lookup_error_saying_what_to_do():
    with pytest.raises(LookupError, match="LogType='Tail'"):
        report_from_log_result(_tail("START RequestId: abc Version: $LATEST"))


def test_log_result_that_is_not_base64_is_a_value_error():
    with pytest.raises(ValueError, match="not base64"):
        report_from_log_result("REPORT RequestId: not encoded")


def _events(*messages: str) -> list[dict]:
    return [
        {"timestamp": 1700000000000 + i, "message": m, "ingestionTime": 0} for i, m in enumerate(messages)
    ]


def test_reports_are_collected_from_cloudwatch_events_in_order():
    events = _events("START RequestId: x Version: 1\n", COLD + "\n", "END RequestId: y\n", WARM_EVENT_MESSAGE)
    assert [r.request_id for r in reports_from_events(events)] == [
        "3f1c9a52-8e0b-4c1e-9d7a-2b6f0e4a9c11",
        "7591fa55-5523-5e8c-8daf-a0e815dd88ac",
    ]


def test_report_for_a_request_id_is_picked_from_cloudwatch_events():
    events = _events(COLD, WARM_EVENT_MESSAGE, WITH_XRAY)
    assert report_from_events(events, "3f1c9a52-8e0b-4c1e-9d7a-2b6f0e4a9c11").init_duration_ms == 130.49
    assert report_from_events(events).request_id == "11ee14c4-1069-4850-8988-000000000001"


def test_a_request_id_without_a_report_is_a_lookup_error_naming_it():
    with pytest.raises(LookupError, match="for request missing-id"):
        report_from_events(_events(COLD), "missing-id")


# An on-demand init past 10 s, as AWS logs it before re-running init inside the first invocation.
INIT_TIMEOUT = "INIT_REPORT Init Duration: 9999.86 ms\tPhase: init\tStatus: timeout"


def test_an_init_report_of_an_init_that_timed_out_is_parsed():
    report = parse_init_report(INIT_TIMEOUT)
    assert report == InitReport(init_duration_ms=9999.86, phase="init", status="timeout")
    assert report.timed_out


def test_an_init_report_of_a_failed_init_carries_its_error_type():
    line = "INIT_REPORT Init Duration: 52.10 ms\tPhase: init\tStatus: error\tError Type: Runtime.ImportModuleError"
    report = parse_init_report(line)
    assert (
        report.status == "error" and report.error_type == "Runtime.ImportModuleError" and not report.timed_out
    )


def test_init_reports_are_found_among_log_lines_and_bad_ones_named():
    lines = ["INIT_START Runtime Version: python:3.12", INIT_TIMEOUT, "START RequestId: x", COLD]
    assert [r.status for r in init_reports_in(lines)] == ["timeout"]
    with pytest.raises(ValueError, match="lacks Init Duration"):
        parse_init_report("INIT_REPORT Phase: init")


def test_the_functions_init_log_line_is_read_from_a_cloudwatch_message():
    body = {"init": {"phases_ms": {"import_torch": 900.5, "load_weights": 80}, "total_ms": 1000.0}}
    message = "[INFO]\t2026-12-01T09:01:40.722Z\t\t" + json.dumps(body)
    details = init_details(message)
    assert details == body
    assert init_phases(details["init"]) == {"import_torch": 900.5, "load_weights": 80.0}
    assert init_details('[INFO]\t...\t{"request_id": "r", "status": 200}') is None
    assert init_details("START RequestId: x") is None and init_phases(None) == {}


def test_the_init_log_line_is_read_when_lambda_wraps_it_in_its_json_log_format():
    body = {"init": {"phases_ms": {"import_torch": 900.5}, "total_ms": 950.0}}
    as_string = json.dumps(
        {"timestamp": "2026-12-01T09:01:40Z", "level": "INFO", "message": json.dumps(body)}
    )
    as_object = json.dumps({"timestamp": "2026-12-01T09:01:40Z", "level": "INFO", "message": body})
    assert init_details(as_string) == body and init_details(as_object) == body
    assert init_details(json.dumps({"level": "INFO", "message": "plain text"})) is None
