"""Issue 23, the engine's part: nothing one function does reaches the server or another tenant.

Each test is the attack as a tenant would run it, through boto3 against a local server: a function that
starts more processes than Lambda allows, a handler that asks its own Runtime API for the next
invocation, a cold start of a 60,000-file zip beside another function's warm invocations, Provisioned
Concurrency past the account's unreserved concurrency, a server with more than 1,024 descriptors open,
a flood of connections to another environment's Runtime API, and a clean stop that must leave no cgroup.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import socket
import sys
import threading
import zipfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from localaws import server
from localaws.server import log_file
from tests.conftest import start_local_aws
from tests.local.test_lambda_engine import (
    _live_with,
    create_function,
    invoke,
    tail_text,
    unique,
    wait_for,
)
from tests.sandbox_support import WHOAMI

linux_root = pytest.mark.skipif(
    os.geteuid() != 0 or not sys.platform.startswith("linux"),
    reason="the sandbox's cgroups need Linux and root",
)

# --- 4. processes and threads ------------------------------------------------------------------------

SPAWNER = """
import os, threading

def handler(event, context):
    started, error = [], None
    if event["kind"] == "threads":
        threading.stack_size(128 * 1024)
        gate = threading.Event()
        try:
            while len(started) < event["n"]:
                thread = threading.Thread(target=gate.wait)
                thread.start()
                started.append(thread)
        except RuntimeError as exc:
            error = str(exc)
        gate.set()
        for thread in started:
            thread.join()
        return {"started": len(started), "error": error}
    read_end, write_end = os.pipe()
    try:
        while len(started) < event["n"]:
            pid = os.fork()
            if pid == 0:
                os.close(write_end)
                os.read(read_end, 1)  # until the parent closes its end
                os._exit(0)
            started.append(pid)
    except OSError as exc:
        error = exc.strerror
    os.close(write_end)
    for pid in started:
        os.waitpid(pid, 0)
    return {"started": len(started), "error": error}
"""


@linux_root
@pytest.mark.parametrize(
    ("kind", "refusal"),
    [("threads", "can't start new thread"), ("processes", "Resource temporarily unavailable")],
)
def test_an_environment_cannot_start_more_than_1024_processes_and_threads(local_aws, kind, refusal):
    """Lambda's quota: 1,024 processes and threads per execution environment (the runtime's own count)."""
    name = create_function(local_aws, SPAWNER, MemorySize=1024, Timeout=120)
    _, answer, _ = invoke(local_aws, name, {"kind": kind, "n": 1100})
    assert 900 < answer["started"] < 1024, answer
    assert answer["error"] == refusal or refusal in answer["error"], answer
    _, again, _ = invoke(local_aws, name, {"kind": kind, "n": 10})  # the environment goes on afterwards
    assert again == {"started": 10, "error": None}


# --- 5. a second GET /next ---------------------------------------------------------------------------

OWN_NEXT = """
import os, urllib.request

def handler(event, context):
    if not event.get("ask"):
        return {"request_id": context.aws_request_id}
    url = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/next"
    try:
        with urllib.request.urlopen(url, timeout=event["ask"]) as answer:
            return {"status": answer.status, "request_id": answer.headers["Lambda-Runtime-Aws-Request-Id"],
                    "event": answer.read().decode(), "mine": context.aws_request_id}
    except Exception as exc:
        return {"error": repr(exc)}
"""


def test_a_handler_asking_its_own_runtime_api_for_the_next_invocation_gets_its_own(local_aws):
    """As Lambda's runtime API does (the Runtime Interface Emulator: a ``/next`` while an invocation runs
    renders that invocation again); the next invocation is not swallowed."""
    name = create_function(local_aws, OWN_NEXT, Timeout=10)
    _, seen, _ = invoke(local_aws, name, {"ask": 3})
    for _ in range(3):
        response, answer, _ = invoke(local_aws, name, {})
        assert "FunctionError" not in response, answer
        assert answer["request_id"] == response["ResponseMetadata"]["RequestId"]
    assert seen.get("status") == 200, seen
    assert seen["request_id"] == seen["mine"]
    assert json.loads(seen["event"]) == {"ask": 3}


# --- 7. one function's cold start never stalls another's invocations --------------------------------


def _zip_of_many_files(count: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return 'big'\n")
        for i in range(count):
            archive.writestr(f"data/{i % 100}/{i}.txt", b"")
    return buffer.getvalue()


def test_a_cold_start_extracting_a_60000_file_zip_never_holds_up_another_functions_invocations(local_aws):
    """The first invocation of a function with a 60,000-file zip extracts it (seconds); meanwhile another
    function's warm invocations are answered: all five of them before that extraction is done."""
    lam = local_aws.client("lambda")
    warm = create_function(local_aws, "def handler(event, context):\n    return 'warm'\n")
    assert invoke(local_aws, warm)[1] == "warm"
    code = _zip_of_many_files(60_000)
    big = unique("big")
    lam.create_function(
        FunctionName=big, Runtime="python3.12", Role=local_aws.lambda_role(), Handler="app.handler",
        Code={"ZipFile": code}, Timeout=300,
    )  # fmt: skip
    lam.get_waiter("function_active_v2").wait(FunctionName=big, WaiterConfig={"Delay": 0.1})
    code_root = Path(local_aws.state_dir) / "lambda" / "code"
    extracted = code_root / hashlib.sha256(code).hexdigest()
    before = set(code_root.iterdir())
    cold: dict = {}
    first = threading.Thread(target=lambda: cold.update(answer=invoke(local_aws, big)[1]))
    first.start()
    try:
        assert wait_for(lambda: set(code_root.iterdir()) - before, 120), "the extraction did not begin"
        answers = [invoke(local_aws, warm)[1] for _ in range(5)]
        done_meanwhile = extracted.exists()
    finally:
        first.join(600)
    assert answers == ["warm"] * 5
    assert not done_meanwhile, "the warm invocations waited for another function's extraction"
    assert cold["answer"] == "big"


# --- 7b. what AWS refuses is refused before anything starts; descriptors above 1,024 ----------------


@pytest.fixture
def small_account(tmp_path, monkeypatch):
    """A server of its own whose account has a concurrency of 110 (as a new account's low quota), so
    that crossing the 100 that must stay unreserved takes a few environments, not hundreds."""
    monkeypatch.setenv("LOCALAWS_LAMBDA_CONCURRENCY_LIMIT", "110")
    handle = start_local_aws(tmp_path / "state")
    yield handle
    server.stop(handle.state_dir)


def _published(handle, code: str = "def handler(event, context):\n    return 1\n") -> tuple[str, str]:
    name = create_function(handle, code)
    return name, handle.client("lambda").publish_version(FunctionName=name)["Version"]


def _refused(call, **kwargs) -> str:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    error = info.value.response["Error"]
    assert error["Code"] == "InvalidParameterValueException", error
    return error["Message"]


def _running(name: str) -> list[int]:
    return _live_with(f"AWS_LAMBDA_FUNCTION_NAME={name}".encode())


def test_provisioned_and_reserved_concurrency_past_the_unreserved_minimum_are_refused_before_starting(
    small_account,
):
    lam = small_account.client("lambda")
    greedy, version = _published(small_account)
    put = lam.put_provisioned_concurrency_config
    message = _refused(put, FunctionName=greedy, Qualifier=version, ProvisionedConcurrentExecutions=11)
    assert message == (
        "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
        "below its minimum value of [100]."
    )
    message = _refused(put, FunctionName=greedy, Qualifier=version, ProvisionedConcurrentExecutions=111)
    assert (
        message
        == "Specified ConcurrentExecutions for function is greater than account's unreserved concurrency [110]."
    )
    assert not _running(greedy), "an environment started for a refused request"
    with pytest.raises(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        lam.get_provisioned_concurrency_config(FunctionName=greedy, Qualifier=version)
    # Provisioned Concurrency claims account concurrency: it and reservations leave 100 unreserved together.
    put(FunctionName=greedy, Qualifier=version, ProvisionedConcurrentExecutions=2)
    other, other_version = _published(small_account)
    reserve = lam.put_function_concurrency
    assert "below its minimum value of [100]" in _refused(
        reserve, FunctionName=other, ReservedConcurrentExecutions=9
    )
    reserve(FunctionName=other, ReservedConcurrentExecutions=8)
    message = _refused(put, FunctionName=other, Qualifier=other_version, ProvisionedConcurrentExecutions=9)
    assert message == (
        "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution "
        "for function"
    )
    third, third_version = _published(small_account)
    assert "below its minimum value of [100]" in _refused(
        put, FunctionName=third, Qualifier=third_version, ProvisionedConcurrentExecutions=1
    )
    assert not _running(other) and not _running(third)


PRINTER = """
import os

def handler(event, context):
    print("said by the handler", event["n"])
    if event.get("exit"):
        os._exit(3)
    return event["n"]
"""


def test_a_server_holding_more_than_1024_descriptors_still_reads_its_environments(own_local_aws):
    """``select()`` cannot watch a descriptor above 1,024: the environments started once the server held
    1,100 connections lost their output and their exit."""
    pid = json.loads((own_local_aws.state_dir / "server.json").read_text())["pid"]
    host, port = "127.0.0.1", own_local_aws.port
    held = []
    try:
        for _ in range(1100):
            held.append(socket.create_connection((host, port), timeout=30))
        assert wait_for(lambda: len(os.listdir(f"/proc/{pid}/fd")) > 1100, 60)
        name = create_function(own_local_aws, PRINTER, Timeout=10)
        response, answer, _ = invoke(own_local_aws, name, {"n": 1})
        assert answer == 1 and "said by the handler 1" in tail_text(response)
        response, answer, _ = invoke(own_local_aws, name, {"n": 2, "exit": True})
        assert answer["errorType"] == "Runtime.ExitError", answer
        assert "said by the handler 2" in tail_text(response)
    finally:
        for conn in held:
            conn.close()
    assert "out of range in select" not in log_file(own_local_aws.state_dir).read_text()


def _environment_groups(pid: int) -> list[Path]:
    """The cgroups of a server's environments, in every hierarchy (read while it runs)."""
    groups = []
    for base in _server_bases(pid):
        groups += [child for child in base.iterdir() if child.is_dir()] if base.is_dir() else []
    return groups


def _server_bases(pid: int) -> list[Path]:
    """Where a server's ``localaws-<pid>`` groups are (or were), from its /proc/<pid>/cgroup."""
    bases = []
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else ["unified"]:
            bases.append(Path("/sys/fs/cgroup", controller, path.lstrip("/"), f"localaws-{pid}"))
    return [b for b in bases if b.parent.is_dir()]


def _empty(group: Path) -> bool:
    try:
        return not (group / "cgroup.procs").read_text().split()
    except OSError:
        return False  # removed meanwhile


@linux_root
def test_environments_that_fail_to_start_leave_no_cgroup_behind(own_local_aws):
    """Provisioned Concurrency starting environments until the server runs out of descriptors: the
    configuration fails, and no environment's cgroup outlives it."""
    state = own_local_aws.state_dir
    pid = json.loads((state / "server.json").read_text())["pid"]
    name, version = _published(own_local_aws)
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (len(os.listdir(f"/proc/{pid}/fd")) + 30, hard))
    try:
        own_local_aws.client("lambda").put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=40
        )
        assert wait_for(lambda: f"provisioning {name}:{version}" in log_file(state).read_text(), 120)
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    config = own_local_aws.client("lambda").get_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version
    )
    assert config["Status"] == "FAILED" and "could not start an environment" in config["StatusReason"]
    assert wait_for(lambda: not [g for g in _environment_groups(pid) if _empty(g)], 30), [
        g for g in _environment_groups(pid) if _empty(g)
    ]


# --- 11. noise and leftovers -------------------------------------------------------------------------


@linux_root
def test_a_flood_of_connections_to_another_environments_runtime_api_is_refused_quietly(own_local_aws):
    victim = create_function(own_local_aws, WHOAMI)
    address = invoke(own_local_aws, victim)[1]["runtime_api"]
    host, port = address.split(":")
    for _ in range(500):
        with socket.create_connection((host, int(port)), timeout=30) as conn:
            conn.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.recv(100).startswith(b"HTTP/1.1 403")
    warnings = [
        line for line in log_file(own_local_aws.state_dir).read_text().splitlines() if "refused a" in line
    ]
    assert 1 <= len(warnings) <= 3, warnings
    assert invoke(own_local_aws, victim)[1]["runtime_api"] == address  # still served


@linux_root
def test_a_clean_stop_leaves_no_cgroup(tmp_path):
    handle = start_local_aws(tmp_path / "state")
    try:
        pid = json.loads((handle.state_dir / "server.json").read_text())["pid"]
        bases = _server_bases(pid)
        name = create_function(handle, "def handler(event, context):\n    return 1\n")
        assert invoke(handle, name)[1] == 1
        assert [b for b in bases if b.is_dir()], "the sandbox made no cgroup: nothing to check"
    finally:
        server.stop(handle.state_dir)
    assert [b for b in bases if b.exists()] == []
