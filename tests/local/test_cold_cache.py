"""The cold-cache scenario on the local backend, through the deployed seeder and a function mounting the
same access point: the eviction reaches what a new environment sees at its mount, pages a live
environment maps stay cached, and the scenario, which reads the seeder's copies instead, finds nothing
cached all the same and records cold starts with their init phases."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from helpers import bench, cold_cache, seeding, stacks
from helpers.bundle import pack_folder
from helpers.invoke import invoke
from tests.conftest import lambda_zip, workshop_pointed_at

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = 6 * 1024 * 1024
# Follows the inference function's contract (the first response of an environment carries "init"); at
# init it counts how much of the weights file its environment finds cached (the seeder's own mincore
# code, shipped beside it), then maps the file and touches every page, as torch.load(mmap=True) would.
PROBE = """
import mmap, os, time
from page_cache import resident_bytes
_started = time.perf_counter()
PATH = os.path.join(os.environ.get("MODEL_DIR", "/mnt/ml/model/current"), "efficientnet_lite0.pt")
_fd = os.open(PATH, os.O_RDONLY)
CACHED_AT_INIT = resident_bytes(_fd, os.fstat(_fd).st_size)
MAPPED = mmap.mmap(_fd, 0, prot=mmap.PROT_READ)
sum(MAPPED[i] for i in range(0, len(MAPPED), mmap.PAGESIZE))
_load_ms = (time.perf_counter() - _started) * 1000
_init = {"phases_ms": {"runtime_start": 1.0, "import_torch": 2.0, "load_weights": _load_ms}, "total_ms": 3.0 + _load_ms}
def handler(event, context):
    global _init
    body = {"init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"), "cached_at_init": CACHED_AT_INIT, "path": PATH}
    if _init:
        body, _init = {**body, "init": _init}, None
    return body
"""


@pytest.fixture(scope="module")
def deployed(local_aws, tmp_path_factory):
    with workshop_pointed_at(local_aws, "cctest") as cfg:
        storage = stacks.deploy(cfg.name("storage"), "storage", echo=None)
        seeder = seeding.deploy_seeder(cfg, echo=None)["FunctionName"]
        src = tmp_path_factory.mktemp("weights")
        (src / "efficientnet_lite0.pt").write_bytes(os.urandom(WEIGHTS))
        archive = pack_folder(src, "model", src.parent / "model.tar.gz")
        bucket = storage["ArtifactBucketName"]
        seeding.seed(seeder, archive, bucket, seeding.upload_archive(archive, bucket, progress=False))
        lam = local_aws.client("lambda")
        config = lam.get_function_configuration(FunctionName=seeder)
        probe = cfg.name("probe")
        lam.create_function(
            FunctionName=probe,
            Runtime=config["Runtime"],
            Role=config["Role"],
            Handler="app.handler",
            Code={
                "ZipFile": lambda_zip(
                    {"app.py": PROBE, "page_cache.py": (ROOT / "functions/seeder/page_cache.py").read_text()}
                )
            },
            MemorySize=512,
            Timeout=30,
            VpcConfig={k: config["VpcConfig"][k] for k in ("SubnetIds", "SecurityGroupIds")},
            FileSystemConfigs=config["FileSystemConfigs"],
        )
        lam.get_waiter("function_active_v2").wait(FunctionName=probe, WaiterConfig={"Delay": 0.2})
        yield {"seeder": seeder, "probe": probe, "lam": lam}
        lam.delete_function(FunctionName=probe)
        for suffix in ("seeder", "storage"):
            stacks.delete(cfg.name(suffix), echo=None)


def first_response_on_a_fresh_version(deployed, evict: bool) -> dict:
    with bench.FreshVersions(deployed["probe"], deployed["lam"]) as versions:
        version = versions.publish("test")
        evicted = seeding.evict(deployed["seeder"]) if evict else None
        body = invoke(deployed["probe"], {}, version, client=versions.lam).raise_for_error().payload
    return {"body": body, "evicted": evicted}


def test_a_new_environment_finds_the_weights_cached_unless_the_seeder_evicted_them(deployed):
    warm = first_response_on_a_fresh_version(deployed, evict=False)
    assert warm["body"]["cached_at_init"] == WEIGHTS and "init" in warm["body"]
    cold = first_response_on_a_fresh_version(deployed, evict=True)
    assert cold["evicted"]["resident_after_bytes"] == 0 and cold["evicted"]["files"] >= 2
    assert cold["evicted"]["not_seeded"] == ["framework"]
    assert cold["body"]["cached_at_init"] == 0  # what the environment sees through its mount: not cached


def test_the_scenario_records_cold_starts_with_init_phases_and_what_was_evicted(deployed):
    records = cold_cache.cold_cache_starts(deployed["probe"], deployed["seeder"], 2, {})
    assert [r["scenario"] for r in records] == [bench.COLD_CACHE] * 2
    for r in records:
        assert r["error"] is None and r["cold"] and r["init_ms"] is not None
        assert r["init_import_torch_ms"] == 2.0 and r["init_load_weights_ms"] > 0
        assert r["evicted_bytes"] >= WEIGHTS and r["cached_after_evict_bytes"] == 0
        # what the cold start read: every page of the weights (the probe touches them all), nothing else
        assert r["read_bytes"] == WEIGHTS and r["read_files"] == 1
    assert len({r["request_id"] for r in records}) == 2
    assert cold_cache.read_per_cold_start(records) == {"bytes": WEIGHTS, "files": 1, "n": 2}
    left = deployed["lam"].list_versions_by_function(FunctionName=deployed["probe"])["Versions"]
    assert {v["Version"] for v in left} == {"$LATEST"}  # every round's version deleted


def test_the_scenario_reads_a_copy_that_a_live_environment_cannot_keep_cached(deployed):
    """The caveat the scenario is built around: an idle environment that mapped the weights keeps their
    pages whatever the eviction does. The scenario's versions read the seeder's copy instead, which no
    live environment maps, so their environment finds nothing cached."""
    lam, seeder, probe = deployed["lam"], deployed["seeder"], deployed["probe"]
    kept = lam.publish_version(FunctionName=probe, Description="an environment that lives on")
    lam.get_waiter("published_version_active").wait(
        FunctionName=probe, Qualifier=kept["Version"], WaiterConfig={"Delay": 0.2}
    )
    try:
        invoke(probe, {}, kept["Version"], client=lam).raise_for_error()  # idle afterwards, weights mapped
        answer = seeding.evict(seeder)
        assert answer["resident_after_bytes"] == WEIGHTS and "stayed in the page cache" in answer["note"]
        copied = seeding.copy(seeder, cold_cache.COPY)
        assert copied["not_seeded"] == ["framework"] and copied["model"]["path"] == "model/copies/cold-cache"
        assert copied["model"]["bytes"] > WEIGHTS  # the weights and the manifest
        with bench.FreshVersions(probe, lam) as versions:
            version = versions.publish("test", variables=cold_cache.copy_variables(versions.variables))
            assert seeding.evict(seeder, copy=cold_cache.COPY)["resident_after_bytes"] == 0
            body = invoke(probe, {}, version, client=lam).raise_for_error().payload
        assert (
            body["path"] == "/mnt/ml/model/copies/cold-cache/efficientnet_lite0.pt"
            and body["cached_at_init"] == 0
        )
        (r,) = cold_cache.cold_cache_starts(probe, seeder, 1, {}, settle_s=1)
        assert r["error"] is None and r["cold"] and r["cached_after_evict_bytes"] == 0
        assert seeding.evict(seeder, copy=cold_cache.COPY)["not_seeded"] == [
            "framework/copies/cold-cache",
            "model/copies/cold-cache",
        ]  # the scenario removed its copy
        assert seeding.evict(seeder)["resident_after_bytes"] == WEIGHTS  # current: still mapped
    finally:
        lam.delete_function(FunctionName=probe, Qualifier=kept["Version"])
    for _ in range(120):  # the engine ends a deleted version's environment at its next sweep (0.5 s)
        if not (answer := seeding.evict(seeder))["resident_after_bytes"]:
            break
        time.sleep(0.5)
    assert answer["resident_after_bytes"] == 0


def test_the_seeders_answer_is_json_with_the_counts(deployed):
    answer = seeding.evict(deployed["seeder"], ("model",))
    assert json.loads(json.dumps(answer)) == answer and answer["bytes"] >= WEIGHTS
