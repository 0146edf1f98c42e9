"""Issue 23, the engine's part: nothing one function does reaches the server or another tenant.

Each test is the attack as a tenant would run it, through boto3 against a local server: a function that
starts more processes than Lambda allows, a handler that asks its own Runtime API for the next
invocation, a cold start of a 60,000-file zip beside another function's warm invocations, Provisioned
Concurrency past the account's unreserved concurrency, a server with more than 1,024 descriptors open,
a flood of connections to another environment's Runtime API, and a clean stop that must leave no cgroup.
"""

from __future__ import annotations

import os
import sys

import pytest

from tests.local.test_lambda_engine import create_function, invoke

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
