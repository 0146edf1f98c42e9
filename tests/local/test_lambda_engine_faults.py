"""Faults as Lambda reports them, each followed by a successful invocation (the engine keeps serving)."""

from __future__ import annotations

import os
import signal

import pytest

from tests.conftest import lambda_zip
from tests.local.test_lambda_engine import ECHO, create_function, host_pids, invoke, tail_text, wait_for

FAULTY = """
import os, time

def handler(event, context):
    mode = event.get("mode")
    if mode == "raise":
        raise ValueError("bad input")
    if mode == "sleep":
        time.sleep(30)
    if mode == "memory":
        hog = bytearray(200 * 1024 * 1024)
        for i in range(0, len(hog), 4096):
            hog[i] = 1
        time.sleep(5)
    if mode == "exit":
        os._exit(3)
    return {"env_id": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]}
"""


@pytest.fixture(scope="module")
def faulty(local_aws) -> str:
    return create_function(local_aws, FAULTY, Timeout=1, MemorySize=128)


def test_handler_exception_is_unhandled_function_error(local_aws, faulty):
    response, payload, report = invoke(local_aws, faulty, {"mode": "raise"})
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "bad input"
    assert payload["stackTrace"]
    assert report.status is None
    assert "env_id" in invoke(local_aws, faulty)[1]


def test_timeout_kills_the_environment_and_reports_status_timeout(local_aws, faulty):
    _, before, _ = invoke(local_aws, faulty)
    response, payload, report = invoke(local_aws, faulty, {"mode": "sleep"})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]
    assert "Task timed out after 1.00 seconds" in tail_text(response)
    assert report.status == "timeout"
    assert tail_text(response).splitlines()[-1].endswith("\tStatus: timeout")
    assert 1000 <= report.duration_ms < 1100
    _, after, cold = invoke(local_aws, faulty)
    assert after["env_id"] != before["env_id"] and cold.init_duration_ms is not None


def test_memory_above_memory_size_is_runtime_out_of_memory(local_aws):
    name = create_function(local_aws, FAULTY, Timeout=60, MemorySize=128)  # 0.07 vCPU: slow under load
    response, payload, report = invoke(local_aws, name, {"mode": "memory"})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.OutOfMemory"
    assert report.status == "error" and report.error_type == "Runtime.OutOfMemory"
    assert report.max_memory_used_mb == 128
    assert "env_id" in invoke(local_aws, name)[1]


def test_runtime_exit_during_an_invocation_is_runtime_exit_error(local_aws, faulty):
    response, payload, report = invoke(local_aws, faulty, {"mode": "exit"})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in payload["errorMessage"]
    assert report.error_type == "Runtime.ExitError"
    assert "env_id" in invoke(local_aws, faulty)[1]


def test_environment_dying_between_invocations_is_replaced(local_aws):
    name = create_function(local_aws, ECHO)
    _, first, _ = invoke(local_aws, name)
    for pid in host_pids(first["env_id"]):
        os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not host_pids(first["env_id"]), 30)
    response, second, report = invoke(local_aws, name)
    assert "FunctionError" not in response
    assert second["env_id"] != first["env_id"] and report.init_duration_ms is not None


@pytest.mark.parametrize(
    ("files", "handler", "error_type"),
    [
        ({"app.py": "import not_a_module_anywhere\n"}, "app.handler", "Runtime.ImportModuleError"),
        ({"app.py": "x = 1\n"}, "app.handler", "Runtime.HandlerNotFound"),
        ({"app.py": "raise RuntimeError('broken at import')\n"}, "app.handler", "RuntimeError"),
    ],
    ids=["import-error", "missing-handler", "module-scope-exception"],
)
def test_init_failure_is_reported_then_fixed_code_runs(local_aws, files, handler, error_type):
    name = create_function(local_aws, files, Handler=handler)
    response, payload, report = invoke(local_aws, name)
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == error_type
    assert report.status == "error"
    assert "INIT_REPORT Init Duration" in tail_text(response)
    lam = local_aws.client("lambda")
    lam.update_function_code(FunctionName=name, ZipFile=lambda_zip({"app.py": ECHO}))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    response, payload, _ = invoke(local_aws, name)
    assert "FunctionError" not in response and "env_id" in payload
