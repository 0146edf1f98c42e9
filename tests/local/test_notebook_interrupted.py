"""A kernel killed in the middle of a long cell, then the notebook run again from the top: it works (issue 21).

Each long cell leaves something behind when its kernel dies mid-way, where no ``finally`` runs: 04's
provisioned burst its ``bench-burst`` alias with its Provisioned Concurrency (billing; the next run's
``create_alias`` failed), 05's benchmark its fresh endpoints (holding the account's serverless quota, which
the embedded SageMaker enforces), 06's sweep ``$LATEST`` with another memory size. The test kills the kernel
at the moment that state exists (watched through the API, not timed), checks it is there, and runs the
notebook again from the top, as a learner does after "Restart kernel and run all".
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from localaws import server
from tests.conftest import free_port
from tests.local.test_notebook_reruns import run_notebook

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "intr"


def _kill_when(name: str, ready: Callable[[], bool], timeout: float = 600) -> bool:
    """Run ``name`` in a kernel, kill the kernel once ``ready()`` holds; True if it was killed mid-run."""
    nb = nbformat.read(ROOT / name, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    failure: list[BaseException] = []

    def execute():
        try:
            client.execute()
        except BaseException as exc:  # noqa: BLE001  (a dead kernel is the expected end)
            failure.append(exc)

    thread = threading.Thread(target=execute, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    killed = False
    while thread.is_alive() and time.monotonic() < deadline:
        if ready():
            # SIGKILL, so no finally runs: as a kernel that crashed or was restarted in the middle of the cell
            os.kill(client.km.provisioner.process.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.2)
    thread.join(timeout=120)
    return killed


@pytest.fixture(scope="module")
def workshop(tmp_path_factory):
    state = tmp_path_factory.mktemp("interrupted-state")
    env = {
        "WORKSHOP_BACKEND": "local",
        "WORKSHOP_STATE_DIR": str(state),
        "WORKSHOP_LOCAL_PORT": str(free_port()),
        "WORKSHOP_PREFIX": PREFIX,
        "WORKSHOP_RESULTS_DIR": str(tmp_path_factory.mktemp("interrupted-results")),
        "WORKSHOP_QUICK": "1",
        "MPLBACKEND": "Agg",
    }
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    try:
        for name in ("01_setup_efs.ipynb", "02_seed_model.ipynb", "03_deploy_lambda.ipynb"):
            run_notebook(name)
        from helpers import session

        yield session
        run_notebook("99_cleanup.ipynb")
    finally:
        server.stop(state)
        mp.undo()


def _aliases(session) -> set[str]:
    lam = session.client("lambda")
    return {a["Name"] for a in lam.list_aliases(FunctionName=f"{PREFIX}-inference")["Aliases"]}


def test_04_killed_during_its_provisioned_burst_runs_again(workshop):
    assert _kill_when("04_benchmark.ipynb", lambda: "bench-burst" in _aliases(workshop))
    assert "bench-burst" in _aliases(workshop)  # left behind, with its Provisioned Concurrency
    run_notebook("04_benchmark.ipynb")  # failed before: create_alias ResourceConflictException
    assert "bench-burst" not in _aliases(workshop)


def test_05_killed_with_fresh_endpoints_alive_runs_again_within_the_quota(workshop):
    sm = workshop.client("sagemaker")

    def fresh() -> list[str]:
        names = [e["EndpointName"] for e in sm.list_endpoints(NameContains=f"{PREFIX}-effnet-")["Endpoints"]]
        return [n for n in names if "-cold-" in n or "-burst-" in n or "-spill-" in n]

    logs = workshop.client("logs")

    def served() -> bool:  # a fresh endpoint has started its container: it would not be cold again
        groups = logs.describe_log_groups(
            logGroupNamePrefix=f"/aws/sagemaker/Endpoints/{PREFIX}-effnet-cold-"
        )
        return bool(groups["logGroups"]) and bool(fresh())

    assert _kill_when("05_sagemaker_serverless.ipynb", served)
    assert fresh()  # left behind, holding serverless concurrency, one of them warm
    run_notebook("05_sagemaker_serverless.ipynb")
    assert not fresh()
    (latest,) = sorted(Path(os.environ["WORKSHOP_RESULTS_DIR"]).glob("sagemaker-*.json"))[-1:]
    cold = [r for r in json.loads(latest.read_text())["records"] if r["scenario"] == "cold"]
    assert cold and all(r["cold"] in (True, "True") for r in cold)  # fresh endpoints, not the leftovers


def test_06_killed_during_the_memory_sweep_runs_again(workshop):
    lam = workshop.client("lambda")

    def sweeping() -> bool:
        return lam.get_function_configuration(FunctionName=f"{PREFIX}-inference")["MemorySize"] != 2048

    assert _kill_when("06_deep_dives.ipynb", sweeping)
    assert sweeping()  # $LATEST left at another memory size
    run_notebook("06_deep_dives.ipynb")
    assert not sweeping()  # back to what CloudFormation deployed, not to what the dead run left
