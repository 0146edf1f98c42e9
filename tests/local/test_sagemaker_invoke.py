"""InvokeEndpoint on a serverless endpoint of the local backend: the model really runs, in a sandboxed
container, and answers, fails, times out and is throttled as SageMaker Runtime does.

Every test here fails on stock moto 5.2.5, whose InvokeEndpoint returns canned data (``b"body"``)
for any endpoint: run with LOCALAWS_SAGEMAKER_DATA_PLANE=off to see them fail.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from botocore.exceptions import ClientError

from localaws import server
from tests import sagemaker_support as sm

IDLE_S = 1.5
TIMEOUT_S = 8.0  # 3 s was outrun on a loaded machine by requests meant to finish (a 2 s sleep, a 1 GB fill)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    handle = sm.start_server(
        tmp_path_factory.mktemp("sm-invoke-state"),
        LOCALAWS_SAGEMAKER_IDLE_SECONDS=str(IDLE_S),
        LOCALAWS_SAGEMAKER_INVOCATION_SECONDS=str(TIMEOUT_S),
    )
    yield handle
    server.stop(handle.state_dir)


@pytest.fixture(scope="module")
def tiny_url(local):
    return sm.upload(local, sm.tiny_archive(), "tiny/model.tar.gz")


def _invoke(local, name: str, request: dict, **kwargs) -> dict:
    answer = sm.runtime(local).invoke_endpoint(
        EndpointName=name, Body=json.dumps(request), ContentType="application/json", **kwargs
    )
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    return json.loads(answer["Body"].read())


def test_the_model_in_the_archive_answers_from_a_sandboxed_container(local, tiny_url):
    sm.create_endpoint(local, "inv-sandbox", tiny_url)
    body = _invoke(
        local,
        "inv-sandbox",
        {
            "write": ["/opt/ml/model/weights.txt", "/tmp/scratch"],
            "exists": ["/work", "/root", "/opt/ml/model/code"],
        },
    )
    assert body["weights"] == "tiny-1"  # read from the archive, extracted at /opt/ml/model
    assert body["model_files"] == ["code", "weights.txt"]
    assert body["uid"] != 0
    assert body["written"] == {"/opt/ml/model/weights.txt": "Read-only file system", "/tmp/scratch": "ok"}
    assert body["exists"] == {"/work": False, "/root": False, "/opt/ml/model/code": True}


def test_first_request_is_a_cold_start_with_model_setup_time_and_the_next_is_warm(local, tiny_url):
    sm.create_endpoint(local, "inv-cold", tiny_url, environment={"TINY_SETUP_SECONDS": "0.5"})
    first = _invoke(local, "inv-cold", {"n": 1})
    second = _invoke(local, "inv-cold", {"n": 2})
    assert first["token"] == second["token"]  # the same container, warm
    setup = sm.metric_values(local, "inv-cold", "ModelSetupTime")
    assert setup and setup[0]["SampleCount"] == 1 and setup[0]["Unit"] == "Microseconds"
    assert setup[0]["Minimum"] >= 500_000  # the model's own load time is inside it
    for metric in ("Invocations", "ModelLatency", "OverheadLatency"):
        assert sm.metric_values(local, "inv-cold", metric)[0]["SampleCount"] == 2, metric
    overhead = sm.metric_values(local, "inv-cold", "OverheadLatency")[0]
    assert overhead["Maximum"] >= 500_000  # the cold start counts in OverheadLatency, as AWS documents


def test_idle_containers_scale_to_zero_and_the_next_request_is_cold_again(local, tiny_url):
    sm.create_endpoint(local, "inv-idle", tiny_url)
    first = _invoke(local, "inv-idle", {})
    time.sleep(IDLE_S * 4)  # the reaper looks every IDLE_S / 4: ample room for a loaded machine
    again = _invoke(local, "inv-idle", {})
    assert again["token"] != first["token"]
    assert sm.metric_values(local, "inv-idle", "ModelSetupTime")[0]["SampleCount"] == 2


def test_provisioned_concurrency_is_warm_from_the_start_and_never_scaled_to_zero(local, tiny_url):
    sm.create_endpoint(
        local, "inv-pc", tiny_url, provisioned=1, max_concurrency=2, environment={"TINY_SETUP_SECONDS": "0.3"}
    )
    first = _invoke(local, "inv-pc", {})
    time.sleep(IDLE_S * 2.5)
    again = _invoke(local, "inv-pc", {})
    assert again["token"] == first["token"]
    assert sm.metric_values(local, "inv-pc", "ModelSetupTime") == []  # no cold start at all


def test_concurrent_requests_scale_out_to_max_concurrency_and_beyond_it_are_throttled(local, tiny_url):
    sm.create_endpoint(local, "inv-burst", tiny_url, max_concurrency=2)
    results: list = []

    def call():
        try:
            results.append(_invoke(local, "inv-burst", {"sleep": 2.0})["token"])
        except ClientError as exc:
            results.append(exc.response["Error"]["Code"])

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
        time.sleep(0.3)
    for thread in threads:
        thread.join()
    assert results.count("ThrottlingException") == 1
    tokens = [r for r in results if r != "ThrottlingException"]
    assert len(set(tokens)) == 2  # two containers: the second request was a cold start of its own


def test_a_payload_over_4_mb_is_refused_and_4_mb_is_served(local, tiny_url):
    sm.create_endpoint(local, "inv-size", tiny_url)
    runtime = sm.runtime(local)
    ok = runtime.invoke_endpoint(
        EndpointName="inv-size", Body=b"x" * (4 * 1024 * 1024), ContentType="application/x-raw"
    )
    assert json.loads(ok["Body"].read())["echo"] == {"raw": 4 * 1024 * 1024}
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(
            EndpointName="inv-size", Body=b"x" * (4 * 1024 * 1024 + 1), ContentType="application/x-raw"
        )
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert caught.value.response["Error"]["Message"] == "HTTP content length exceeded 4194304 bytes."


def test_a_model_exception_is_a_model_error_with_the_container_status_message_and_log_stream(local, tiny_url):
    sm.create_endpoint(local, "inv-error", tiny_url)
    with pytest.raises(ClientError) as caught:
        _invoke(local, "inv-error", {"fail": "the model refuses"})
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["OriginalStatusCode"] == 500
    assert "the model refuses" in error["OriginalMessage"]
    assert error["Error"]["Message"].startswith("Received server error (500) from primary with message")
    assert ":log-group:/aws/sagemaker/Endpoints/inv-error:log-stream:AllTraffic/" in error["LogStreamArn"]
    stream = error["LogStreamArn"].split(":log-stream:")[1]
    events = local.client("logs").get_log_events(
        logGroupName="/aws/sagemaker/Endpoints/inv-error", logStreamName=stream
    )
    text = "\n".join(e["message"] for e in events["events"])
    assert "RuntimeError: the model refuses" in text  # the traceback, in the container's log


def test_an_invocation_over_the_timeout_is_a_model_error_with_status_0(local, tiny_url):
    sm.create_endpoint(local, "inv-slow", tiny_url)
    started = time.monotonic()
    with pytest.raises(ClientError) as caught:
        _invoke(local, "inv-slow", {"sleep": 60})
    assert time.monotonic() - started < 50  # cut at the timeout (and a cold start), not at the 60 s sleep
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError" and error["OriginalStatusCode"] == 0
    assert (
        "Your invocation timed out while waiting for a response from container primary"
        in error["OriginalMessage"]
    )
    assert _invoke(local, "inv-slow", {"n": 1})["echo"] == {"n": 1}  # a new container serves the next one


def test_a_model_that_cannot_load_is_a_model_error_naming_the_reason(local, tiny_url):
    sm.create_endpoint(local, "inv-noload", tiny_url, environment={"TINY_FAIL_SETUP": "weights are corrupt"})
    with pytest.raises(ClientError) as caught:
        _invoke(local, "inv-noload", {})
    assert caught.value.response["Error"]["Code"] == "ModelError"
    assert "weights are corrupt" in caught.value.response["OriginalMessage"]


def test_the_container_output_goes_to_the_endpoint_log_group(local, tiny_url):
    sm.create_endpoint(local, "inv-logs", tiny_url)
    _invoke(local, "inv-logs", {"print": "hello from the model"})
    logs = local.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/Endpoints/inv-logs")["logStreams"]
    assert [s["logStreamName"].split("/")[0] for s in streams] == ["AllTraffic"]
    deadline = time.monotonic() + 5
    while True:
        events = logs.filter_log_events(logGroupName="/aws/sagemaker/Endpoints/inv-logs")["events"]
        text = "\n".join(e["message"] for e in events)
        if "hello from the model" in text or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert "hello from the model" in text
    assert "tiny model loading from /opt/ml/model" in text


@pytest.fixture
def roomy(tmp_path):
    """A server with SageMaker's own 60 s invocation timeout. Filling 1 GB at 0.58 vCPU takes about 1 s
    on an idle 2-core machine and went past the module's 3 s timeout on a loaded CI runner."""
    handle = sm.start_server(tmp_path / "state")
    yield handle
    server.stop(handle.state_dir)


def test_container_cpu_and_memory_follow_memory_size_and_the_limit_is_enforced(roomy):
    from pathlib import Path

    local = roomy
    tiny_url = sm.upload(local, sm.tiny_archive(), "tiny/model.tar.gz")

    memory_root = Path("/sys/fs/cgroup/memory")
    if (
        not (memory_root / "cgroup.procs").exists()
        or not (Path("/sys/fs/cgroup/cpu") / "cgroup.procs").exists()
    ):
        pytest.skip("this machine has no cgroup v1 cpu and memory controllers to read the limits from")
    pid = json.loads((local.state_dir / "server.json").read_text())["pid"]
    sm.create_endpoint(local, "inv-limits", tiny_url, memory=1024)
    _invoke(local, "inv-limits", {})
    streams = local.client("logs").describe_log_streams(logGroupName="/aws/sagemaker/Endpoints/inv-limits")
    container_id = streams["logStreams"][0]["logStreamName"].split("/")[1]  # AllTraffic/<container id>
    groups = list(memory_root.glob(f"**/localaws-{pid}/sagemaker-{container_id}"))
    assert len(groups) == 1
    assert int((groups[0] / "memory.limit_in_bytes").read_text()) == 1024 * 1024 * 1024
    cpu = next(Path("/sys/fs/cgroup/cpu").glob(f"**/localaws-{pid}/{groups[0].name}"))
    assert int((cpu / "cpu.cfs_quota_us").read_text()) == int(100_000 * 1024 / 1769)  # 0.58 vCPU, as Lambda
    with pytest.raises(ClientError) as caught:
        _invoke(local, "inv-limits", {"allocate_mb": 1300})
    assert caught.value.response["Error"]["Code"] == "ModelError"
    assert "ran out of memory" in caught.value.response["OriginalMessage"]


def test_provisioned_containers_serve_first_and_overflow_spills_to_an_on_demand_cold_start(local, tiny_url):
    sm.create_endpoint(local, "inv-spill", tiny_url, provisioned=1, max_concurrency=2)
    results: list = []
    threads = [
        threading.Thread(target=lambda: results.append(_invoke(local, "inv-spill", {"sleep": 1.0})))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r["token"] for r in results}) == 2
    assert (
        sm.metric_values(local, "inv-spill", "ModelSetupTime")[0]["SampleCount"] == 1
    )  # only the spill-over


def test_without_the_sandbox_the_container_runs_on_the_host_and_its_log_says_so(tmp_path, tiny_url):
    handle = sm.start_server(tmp_path / "state", LOCALAWS_SANDBOX="off")
    try:
        url = sm.upload(handle, sm.tiny_archive(), "tiny/model.tar.gz")
        sm.create_endpoint(handle, "inv-host", url)
        body = _invoke(handle, "inv-host", {"n": 1})
        assert body["echo"] == {"n": 1} and body["model_files"] == ["code", "weights.txt"]
        events = handle.client("logs").filter_log_events(logGroupName="/aws/sagemaker/Endpoints/inv-host")[
            "events"
        ]
        assert any(
            "host process (off:" in e["message"] and "LOCALAWS_SANDBOX=off" in e["message"] for e in events
        )
    finally:
        server.stop(handle.state_dir)
