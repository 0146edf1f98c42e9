"""The user-namespace sandbox's pieces: the probe, its honest fallback, and the commands it builds.

The whole path (a server run as an unprivileged user, checked through the AWS CLI) is tested in
tests/local/test_lambda_sandbox_unprivileged.py; here, what that test cannot reach on a machine that
allows user namespaces: what a server that is not root says when the kernel refuses them.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from localaws.lambda_engine import launcher
from localaws.lambda_engine.sandbox import GUARANTEES, Sandbox, userns
from localaws.lambda_engine.sandbox.identity import Identity

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="user namespaces are Linux's")


def _kernel_allows_user_namespaces() -> bool:
    unshare = shutil.which("unshare")
    return bool(unshare) and subprocess.run([unshare, "--user", "--mount", "true"]).returncode == 0


@linux_only
def test_the_probe_says_why_when_the_kernel_refuses_a_user_namespace(monkeypatch):
    def refuse(maps):  # what unshare(CLONE_NEWUSER) raises with max_user_namespaces at 0
        raise OSError(errno.ENOSPC, "unshare: No space left on device")

    monkeypatch.setattr(userns, "enter_outer", refuse)  # the forked child inherits the patch
    reason = userns.probe()
    assert reason is not None
    assert "does not run as root" in reason and "refuses it an unprivileged user namespace" in reason
    assert "No space left on device" in reason and "max_user_namespaces" in reason


@linux_only
def test_the_probe_passes_where_the_kernel_allows_them():
    if not _kernel_allows_user_namespaces():
        pytest.skip("this kernel refuses user namespaces")
    assert userns.probe() is None


@linux_only
def test_a_server_that_is_not_root_without_user_namespaces_runs_host_processes_and_says_why(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("LOCALAWS_SANDBOX", raising=False)
    monkeypatch.setattr(userns, "needed", lambda: True)
    monkeypatch.setattr(userns, "probe", lambda: "the server does not run as root and this kernel refuses it")
    sandbox = Sandbox(tmp_path, launcher.BOOTSTRAP)
    assert not sandbox.enabled
    described = sandbox.describe()
    assert described["mode"] == "host processes" and described["deviations"] == []
    assert set(described["guarantees"]) == set(GUARANTEES)
    off = {g for g, v in described["guarantees"].items() if v is not True}
    assert off >= {"filesystem", "packages", "identity", "processes", "cpu", "memory", "freezer"}
    assert sandbox.summary().startswith("off: ") and "refuses it" in sandbox.summary()


def test_the_maps_map_one_outer_id_onto_one_inner_id():
    assert userns.map_lines(993, 0, 990, 0) == (b"993 0 1\n", b"990 0 1\n")
    assert userns.map_lines(0, 65534, 0, 65534) == (b"0 65534 1\n", b"0 65534 1\n")


def test_the_python_paths_command_enters_the_nested_namespace_then_the_root():
    prefix = userns.command_prefix(
        Identity(1000, 1000), "/state/root", "/usr/bin/unshare", "/usr/bin/setpriv"
    )
    first, second = prefix.index("/usr/bin/unshare"), prefix.index("/usr/bin/unshare", 1)
    assert {"--pid", "--fork", "--kill-child", "--mount-proc=/state/root/proc"} <= set(prefix[first:second])
    nested = prefix[second:]
    assert {"--map-user=1000", "--map-group=1000", "--root=/state/root", "--wd=/var/task"} <= set(nested)
    assert nested[-3:] == ["/usr/bin/setpriv", "--no-new-privs", "--"]


def test_the_deviations_name_the_servers_uid():
    text = " ".join(userns.deviations(4242))
    assert "uid 4242" in text and "EFS" in text and "SecondaryGids" in text


def test_the_launcher_is_told_to_use_user_namespaces_and_gives_no_groups(tmp_path):
    from localaws.lambda_engine.sandbox import native

    args = native.command(Path("/l"), root=tmp_path, steps=[], who=Identity(1000, 1000, (5,)), userns=True)
    assert "--userns" in args and "--groups" not in args
    args = native.command(Path("/l"), root=tmp_path, steps=[], who=Identity(1000, 1000, (5,)))
    assert "--userns" not in args and args[args.index("--groups") + 1] == "5"
