"""How the sandbox caps an environment at Lambda's 1,024 processes and threads on each kind of machine, and
that a server's cgroups are removed when it stops.

The root server on this machine has a cgroup v1 pids controller (tests/local/test_isolation_engine.py
starts 1,100 threads and processes through boto3); here, the choice made where it has none: a server in
user namespaces uses ``RLIMIT_NPROC`` (counted in each environment's own user namespace) and says so, a
root server without pids says the limit is shared by uid.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

import pytest

from localaws.lambda_engine.sandbox import cgroups, limits, native
from localaws.lambda_engine.sandbox.identity import Identity


def test_a_pids_cgroup_needs_no_rlimit():
    layout = cgroups.Layout(1, bases={"pids": Path("/x")})
    plan = limits.plan(layout, userns=False)
    assert plan.rlimit is None and plan.off is None and "pids.max 1024" in plan.means


def test_user_namespaces_without_a_pids_cgroup_use_rlimit_nproc_and_say_so():
    layout = cgroups.Layout(1, off={"pids": "no writable cgroup"})
    plan = limits.plan(layout, userns=True)
    assert plan.rlimit == 1024 and plan.off is None
    assert "RLIMIT_NPROC 1024" in plan.means and "own user namespace" in plan.means


def test_root_without_a_pids_cgroup_names_the_limit_off_as_shared_by_uid():
    layout = cgroups.Layout(1, bases={"cpu": Path("/x")}, off={"pids": "no cgroup v1 pids controller"})
    plan = limits.plan(layout, userns=False)
    assert plan.rlimit == 1024
    assert plan.off.startswith("no cgroup v1 pids controller") and "same uid" in plan.off


def test_the_launcher_is_given_the_rlimit_only_when_asked(tmp_path):
    who = Identity(993, 990)
    assert "--nproc" not in native.command(Path("/l"), root=tmp_path, steps=[], who=who)
    args = native.command(Path("/l"), root=tmp_path, steps=[], who=who, userns=True, nproc=1024)
    assert args[args.index("--nproc") + 1] == "1024"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_NPROC as Linux counts it")
def test_the_python_paths_rlimit_is_what_the_child_gets():
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        limits.apply(1024)
        os._exit(0 if resource.getrlimit(resource.RLIMIT_NPROC) == (1024, 1024) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_close_removes_the_servers_groups_and_the_empty_ones_left_in_them(tmp_path):
    bases = {c: tmp_path / c / "localaws-42" for c in ("cpu", "pids")}
    for base in bases.values():
        (base / "env-left-empty").mkdir(parents=True)
    cgroups.close(cgroups.Layout(1, bases=bases))
    assert not any(base.exists() for base in bases.values())
