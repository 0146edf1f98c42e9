"""helpers.serverless: names matched exactly, and answers turned into 04's records (cold, provisioned,
spill-over) from what the container reports."""

from __future__ import annotations

import pytest

from helpers import bench, serverless, serverless_bench
from helpers.config import load_settings


def _answer(container: dict, timing: dict | None = None, error: str | None = None) -> serverless_bench.Answer:
    body = (
        None
        if error
        else {
            "timing_ms": timing or {"decode": 1.5, "preprocess": 2.0, "inference": 40.2},
            "container": container,
        }
    )
    return serverless_bench.Answer(client_ms=100.0, body=body, error=error, request_id="r-1")


def _init(total: float = 900.0) -> dict:
    return {
        "phases_ms": {
            "import_torch": 700.0,
            "import_pil": 20.0,
            "load_weights": 80.0,
            "first_forward": 100.0,
        },
        "total_ms": total,
    }


def test_a_container_started_by_its_request_is_a_cold_start_with_its_init_phases():
    record = serverless_bench.record(
        "cold",
        0,
        "ep-cold-0",
        _answer({"id": "c1", "request": 1, "init": _init(), "ready_ms_before_first_request": 3.0}),
        2048,
    )
    assert set(bench.FIELDS) <= set(record)  # 04's fields: its tables and plots read these records
    assert record["cold"] is True and record["init_type"] == "on-demand"
    assert record["init_ms"] == 900.0 and record["init_import_torch_ms"] == 700.0
    assert record["duration_ms"] == 43.7 and record["billed_ms"] == 44  # rounded up to the millisecond
    assert record["version"] == "ep-cold-0" and record["memory_size_mb"] == 2048


def test_a_provisioned_container_first_request_is_not_cold_and_its_later_requests_keep_the_kind():
    first = serverless_bench.record(
        "provisioned",
        0,
        "ep-pc",
        _answer({"id": "p1", "request": 1, "init": _init(), "ready_ms_before_first_request": 45_000.0}),
        2048,
    )
    # a later answer of the same container, in a run that never saw its first (a re-run): still provisioned
    later = serverless_bench.record(
        "burst-provisioned",
        0,
        "ep-pc",
        _answer({"id": "p1", "request": 7, "ready_ms_before_first_request": 45_000.0}),
        2048,
    )
    spill = serverless_bench.record(
        "burst-provisioned",
        1,
        "ep-pc",
        _answer({"id": "s1", "request": 1, "init": _init(), "ready_ms_before_first_request": 1.0}),
        2048,
    )
    assert (
        first["cold"] is False
        and first["init_type"] == "provisioned-concurrency"
        and first["init_ms"] is None
    )
    assert later["init_type"] == "provisioned-concurrency" and later["cold"] is False
    assert spill["cold"] is True and spill["init_type"] == "on-demand"


def test_a_failed_request_is_a_record_with_its_error():
    record = serverless_bench.record(
        "burst-on-demand", 2, "ep", _answer({}, error="ThrottlingException: over MaxConcurrency"), 1024
    )
    assert record["error"].startswith("ThrottlingException") and record["status"] == "error"
    assert record["cold"] is False and record["duration_ms"] is None


def test_names_match_exactly_this_prefix_and_never_a_colleague_s(monkeypatch):
    monkeypatch.setenv("WORKSHOP_PREFIX", "lambda-efs")
    cfg = load_settings()
    pattern = serverless.endpoint_pattern(cfg)
    for name in (
        "lambda-efs-effnet",
        "lambda-efs-effnet-pc",
        "lambda-efs-effnet-cold-3",
        "lambda-efs-effnet-spill-0",
    ):
        assert pattern.match(name), name
    for name in (
        "lambda-efs-alice-effnet",
        "lambda-efs-effnet-pc-2",
        "lambda-efs-effnet-mine",
        "x-lambda-efs-effnet",
    ):
        assert not pattern.match(name), name
    assert serverless.config_pattern(cfg).match("lambda-efs-effnet-serverless-pc")
    assert not serverless.config_pattern(cfg).match("lambda-efs-effnet-serverless-old")


def test_the_init_summary_says_why_a_warm_answer_has_none():
    assert "700.0" in serverless_bench.init_summary(
        {"container": {"id": "c", "request": 1, "init": _init(), "ready_ms_before_first_request": 2}}
    )
    assert "a cold start" in serverless_bench.init_summary(
        {"container": {"id": "c", "request": 1, "init": _init(), "ready_ms_before_first_request": 2}}
    )
    assert "already served 4 request(s)" in serverless_bench.init_summary(
        {"container": {"id": "c", "request": 5}}
    )


def test_the_image_is_the_cpu_pytorch_inference_image_the_sdk_names():
    uri = serverless.image_uri("eu-west-1")
    assert "/pytorch-inference:" in uri and "-cpu-" in uri and ".eu-west-1." in uri


def test_create_model_waits_for_a_new_role_to_be_assumable_then_gives_up_with_the_error(monkeypatch):
    """On AWS a role CloudFormation has just created may not be assumable for a few seconds; SageMaker's
    CreateModel then says "Could not assume role". Anything else, or past the deadline, is raised."""
    from botocore.exceptions import ClientError
    from sagemaker.core import resources

    def error(message: str) -> ClientError:
        return ClientError({"Error": {"Code": "ValidationException", "Message": message}}, "CreateModel")

    attempts = []

    def create(**kwargs):
        attempts.append(kwargs["model_name"])
        if len(attempts) < 3:
            raise error("Could not assume role arn:aws:iam::123456789012:role/x")
        return "made"

    def missing(**kwargs):
        raise error("Could not find model")

    monkeypatch.setattr(resources.Model, "get", staticmethod(missing))
    monkeypatch.setattr(resources.Model, "create", staticmethod(create))
    monkeypatch.setattr(serverless.time, "sleep", lambda s: None)
    monkeypatch.setattr(serverless.session, "session", lambda: None)
    names = serverless.names(load_settings())
    assert serverless.create_model(names, "image", "s3://b/k", "arn:role") == "made" and len(attempts) == 3

    def never(**kwargs):
        raise error("Could not assume role arn:aws:iam::123456789012:role/x")

    monkeypatch.setattr(resources.Model, "create", staticmethod(never))
    monkeypatch.setattr(serverless, "ROLE_PROPAGATION_S", -1.0)
    with pytest.raises(ClientError, match="Could not assume role"):
        serverless.create_model(names, "image", "s3://b/k", "arn:role")
    monkeypatch.setattr(
        resources.Model, "create", staticmethod(lambda **kw: (_ for _ in ()).throw(error("bad image")))
    )
    with pytest.raises(ClientError, match="bad image"):
        serverless.create_model(names, "image", "s3://b/k", "arn:role")


def test_fresh_endpoints_come_in_waves_that_fit_the_quota_beside_the_two_kept():
    from helpers.serverless_bench import ServerlessParams

    assert ServerlessParams(quota=10, max_concurrency=2).fresh_at_once == 3  # 4 kept + 3 x 2 = 10
    assert ServerlessParams(quota=200, max_concurrency=2).fresh_at_once == 98
    with pytest.raises(ValueError, match="quota is 5.*Lower MAX_CONCURRENCY or request an increase"):
        assert ServerlessParams(quota=5, max_concurrency=2).fresh_at_once
