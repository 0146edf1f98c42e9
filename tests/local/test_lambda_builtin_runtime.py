"""The built-in runtime loop (for platforms where awslambdaric has no wheel) behaves like awslambdaric."""

from __future__ import annotations

from pathlib import Path

import pytest

from localaws import server
from tests.conftest import start_local_aws
from tests.local.test_lambda_engine import ECHO, create_function, environment_pids, invoke


@pytest.fixture(scope="module")
def builtin_aws(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("LOCALAWS_LAMBDA_RUNTIME_CLIENT", "builtin")  # the server inherits it and passes it on
    handle = start_local_aws(tmp_path_factory.mktemp("builtin-state"))
    mp.undo()
    yield handle
    server.stop(handle.state_dir)


def runtime_of(state_dir: Path) -> set[str]:
    """Which runtime client each environment runs: "bootstrap.py" (built-in) or "awslambdaric"."""
    commands = set()
    for pid in environment_pids(state_dir):
        args = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
        environ = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
        if b"/var/runtime/bootstrap.py" in args:  # the sandbox's bootstrap starts either client
            commands.add("bootstrap.py" if b"LOCALAWS_BUILTIN_CLIENT=1" in environ else "awslambdaric")
        else:
            commands.add(
                "bootstrap.py" if any(a.endswith(b"bootstrap.py") for a in args) else args[2].decode()
            )
    return commands


def test_invocations_run_through_the_builtin_loop_cold_then_warm(builtin_aws):
    name = create_function(builtin_aws, ECHO)
    _, first, cold = invoke(builtin_aws, name, {"say": "hi"})
    _, second, warm = invoke(builtin_aws, name, {"say": "again"})
    assert runtime_of(builtin_aws.state_dir) == {"bootstrap.py"}
    assert first["event"] == {"say": "hi"} and first["env_id"] == second["env_id"]
    assert cold.init_duration_ms > 0 and warm.init_duration_ms is None
    assert second["request_id"] == warm.request_id


def test_a_handler_exception_is_reported_as_awslambdaric_does(builtin_aws):
    name = create_function(builtin_aws, "def handler(event, context):\n    raise KeyError('missing')\n")
    response, payload, report = invoke(builtin_aws, name)
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "KeyError" and payload["errorMessage"] == "'missing'"
    assert isinstance(payload["stackTrace"], list) and report.status is None


@pytest.mark.parametrize(
    ("code", "handler", "error_type"),
    [
        ("import no_such_module_here\n", "app.handler", "Runtime.ImportModuleError"),
        ("x = 1\n", "app.handler", "Runtime.HandlerNotFound"),
        ("raise ValueError('at import')\n", "app.handler", "ValueError"),
    ],
)
def test_init_failures_are_reported_and_the_next_good_function_works(builtin_aws, code, handler, error_type):
    name = create_function(builtin_aws, code, Handler=handler)
    response, payload, _ = invoke(builtin_aws, name)
    assert response["FunctionError"] == "Unhandled" and payload["errorType"] == error_type
    good = create_function(builtin_aws, ECHO)
    assert invoke(builtin_aws, good, {"say": "ok"})[1]["event"] == {"say": "ok"}
