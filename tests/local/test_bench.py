"""The benchmark runner against a small fast function on the embedded backend: every field recorded,
the provisioned burst's spill-overs really cold, long inits counted as cold starts."""

from __future__ import annotations

import json
import math

import pytest

from helpers import bench
from helpers.bench import BenchParams
from helpers.functions import wait_provisioned_ready
from tests.conftest import lambda_zip, workshop_pointed_at

# Follows the inference function's contract: the first response of each environment carries "init".
HANDLER = """
import os
import time
PHASES = {"runtime_start": 1.0, "import_torch": 2.0, "import_pil": 3.0, "load_weights": 4.0, "first_forward": 5.0}
_first = True
def handler(event, context):
    global _first
    time.sleep(event.get("sleep", 0))  # long enough that a burst's requests overlap
    body = {"init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"), "echo": event}
    if _first:
        body["init"] = {"phases_ms": PHASES, "total_ms": 15.0}
        _first = False
    return body
"""
SLOW_INIT = """
import time
time.sleep(10.3)  # past Lambda's 10 s on-demand init cap
_first = True
def handler(event, context):
    global _first
    body = {"init_type": "on-demand"}
    if _first:  # the inference function's contract: the first response of an environment says so
        body["init"] = {"phases_ms": {"import_torch": 10300.0}, "total_ms": 10300.0}
        _first = False
    return body
"""


@pytest.fixture(scope="module")
def fast_function(local_aws):
    lam = local_aws.client("lambda")
    role = local_aws.lambda_role()
    name = "bench-test-fast"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": lambda_zip(HANDLER)},
        MemorySize=256,
        Timeout=10,
        Environment={"Variables": {"KEEP": "me"}},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.get_waiter("published_version_active").wait(
        FunctionName=name, Qualifier=version, WaiterConfig={"Delay": 0.1}
    )
    lam.create_alias(FunctionName=name, Name="on-demand", FunctionVersion=version)
    lam.create_alias(FunctionName=name, Name="provisioned", FunctionVersion=version)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="provisioned", ProvisionedConcurrentExecutions=1
    )
    yield name
    lam.delete_function(FunctionName=name)


@pytest.fixture(scope="module")
def records(fast_function, local_aws):
    with workshop_pointed_at(local_aws):
        wait_provisioned_ready(fast_function, "provisioned", timeout=60, progress=False)
        params = BenchParams(cold_starts=2, warm=3, provisioned=3, burst=3)
        result = bench.run(fast_function, {"sleep": 0.3}, params, show_progress=False)
        yield {"records": result, "params": params, "name": fast_function, "aws": local_aws}


def by(records, scenario):
    return [r for r in records if r["scenario"] == scenario]


def test_every_scenario_has_its_count_and_no_errors(records):
    recs = records["records"]
    counts = {s: len(by(recs, s)) for s in bench.SCENARIOS}
    assert counts == {"cold": 2, "warm": 3, "provisioned": 3, "burst-on-demand": 3, "burst-provisioned": 3}
    assert [r for r in recs if r["error"]] == []
    assert all(set(bench.FIELDS) <= set(r) for r in recs)


def test_cold_starts_run_on_fresh_versions_with_an_init_duration(records):
    cold = by(records["records"], "cold")
    assert all(r["init_ms"] is not None and r["init_ms"] > 0 for r in cold)
    assert len({r["version"] for r in cold}) == 2
    assert all(r["init_type"] == "on-demand" for r in cold)


def test_cold_start_versions_are_deleted_and_the_configuration_restored(records):
    lam = records["aws"].client("lambda")
    cold_versions = {r["version"] for r in by(records["records"], "cold")}
    left = {v["Version"] for v in lam.list_versions_by_function(FunctionName=records["name"])["Versions"]}
    assert not cold_versions & left
    config = lam.get_function_configuration(FunctionName=records["name"])
    assert config["Environment"]["Variables"] == {"KEEP": "me"}


def test_warm_and_provisioned_series_have_no_init_duration(records):
    for scenario, init_type in (("warm", "on-demand"), ("provisioned", "provisioned-concurrency")):
        recs = by(records["records"], scenario)
        assert all(r["init_ms"] is None for r in recs), scenario
        assert {r["init_type"] for r in recs} == {init_type}


def test_a_burst_beyond_the_provisioned_count_spills_over_to_on_demand(records):
    types = sorted(r["init_type"] for r in by(records["records"], "burst-provisioned"))
    assert types.count("provisioned-concurrency") == 1 and types.count("on-demand") == 2


def test_every_spill_over_of_the_provisioned_burst_is_a_cold_start(records):
    """The provisioned burst runs on a fresh version: no idle on-demand environment of it exists, so
    each request beyond the provisioned environment starts one (before, the warm series' environment
    of the same version absorbed them and the burst showed 0 spill-over cold starts)."""
    spill = [r for r in by(records["records"], "burst-provisioned") if r["init_type"] == "on-demand"]
    assert spill and all(r["cold"] and r["init_ms"] is not None for r in spill)
    served = [r for r in by(records["records"], "burst-provisioned") if r["init_type"] != "on-demand"]
    assert not any(r["cold"] for r in served)


def test_every_request_of_the_on_demand_burst_starts_an_environment_on_its_fresh_version(records):
    burst = by(records["records"], "burst-on-demand")
    assert all(r["cold"] for r in burst) and len({r["version"] for r in burst}) == 1


def test_the_provisioned_burst_leaves_no_alias_version_or_provisioned_concurrency_behind(records):
    lam = records["aws"].client("lambda")
    aliases = {a["Name"] for a in lam.list_aliases(FunctionName=records["name"])["Aliases"]}
    assert aliases == {"on-demand", "provisioned"}
    burst_versions = {r["version"] for r in by(records["records"], "burst-provisioned")}
    left = {v["Version"] for v in lam.list_versions_by_function(FunctionName=records["name"])["Versions"]}
    assert not burst_versions & left
    configs = lam.list_provisioned_concurrency_configs(FunctionName=records["name"])[
        "ProvisionedConcurrencyConfigs"
    ]
    assert len(configs) == 1


def test_cold_starts_record_the_functions_init_phases_and_provisioned_ones_do_not(records):
    for r in by(records["records"], "cold"):
        assert r["cold"] and r["init_import_torch_ms"] == 2.0 and r["init_total_ms"] == 15.0
    for r in by(records["records"], "warm") + by(records["records"], "provisioned"):
        assert not r["cold"] and r["init_import_torch_ms"] is None


def test_an_init_past_ten_seconds_is_a_cold_start_with_its_init_inside_duration(local_aws):
    """As on AWS: no Init Duration in the REPORT, the init re-run inside the invocation."""
    lam = local_aws.client("lambda")
    name = "bench-test-slow-init"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=local_aws.lambda_role(),
        Handler="app.handler",
        Code={"ZipFile": lambda_zip(SLOW_INIT)},
        MemorySize=256,
        Timeout=30,
    )
    try:
        with workshop_pointed_at(local_aws):
            (r,) = bench.forced_cold_starts(name, 1, {})
    finally:
        lam.delete_function(FunctionName=name)
    assert r["error"] is None and r["init_ms"] is None
    assert r["cold"] and r["init_in_duration"] and r["duration_ms"] >= 10_000


def test_report_fields_are_consistent(records):
    for r in records["records"]:
        assert r["client_ms"] >= r["duration_ms"] > 0
        # Billed from the unrounded durations, as Lambda bills; the REPORT prints them to 0.01 ms, so a
        # sum recomputed from the printed values can land 1 ms lower (386.764 + 254.244 bills 642).
        assert 0 <= r["billed_ms"] - math.ceil(r["duration_ms"] + (r["init_ms"] or 0)) <= 1
        assert r["cold"] == (r["init_ms"] is not None) and r["init_in_duration"] is False
        assert r["memory_size_mb"] == 256 and 0 < r["max_memory_mb"] <= 256
        assert r["request_id"] and r["version"]


def test_save_writes_csv_and_json_with_metadata(records, tmp_path):
    paths = bench.save(records["records"], records["params"], {"name": records["name"]}, out_dir=tmp_path)
    lines = paths["csv"].read_text().splitlines()
    assert lines[0].split(",") == bench.FIELDS and len(lines) == len(records["records"]) + 1
    assert "init_import_torch_ms" in bench.FIELDS
    meta = json.loads(paths["json"].read_text())
    assert meta["parameters"]["cold_starts"] == 2 and meta["machine"]["backend"] == "local"
    assert meta["function"] == {"name": records["name"]} and len(meta["records"]) == len(records["records"])


def test_a_burst_alias_left_by_a_dead_kernel_is_replaced_not_a_conflict(records):
    """Issue 21: a kernel restarted mid-burst leaves ``bench-burst`` with its Provisioned Concurrency (billing);
    the next provisioned burst deletes it first instead of failing on create_alias."""
    lam, name = records["aws"].client("lambda"), records["name"]
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name=bench.BURST_ALIAS, FunctionVersion=version)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=bench.BURST_ALIAS, ProvisionedConcurrentExecutions=1
    )
    with workshop_pointed_at(records["aws"]), bench.FreshVersions(name) as fresh:
        again = bench.provisioned_burst(name, 2, 1, {"sleep": 0.3}, fresh)
    assert len(again) == 2 and not any(r["error"] for r in again)
    assert bench.BURST_ALIAS not in [a["Name"] for a in lam.list_aliases(FunctionName=name)["Aliases"]]
    with workshop_pointed_at(records["aws"]):
        bench.drop_burst_alias(name)  # nothing left to drop: no error either
