"""The cgroup v2 path of the sandbox's cgroups module, against a fake cgroup v2 tree in a tmp folder.

This machine has cgroup v1 controllers only, so the v2 code never runs on it for real. Here
:func:`cgroups.probe` and :class:`cgroups.Group` are pointed at a folder laid out like a delegated v2
hierarchy (``cgroup.procs``, ``cgroup.subtree_control``) and the test reads back the values the module
writes (``cpu.max``, ``memory.max``, ``cgroup.freeze``...). It checks what the module writes, not what a
v2 kernel does with it: that is not a run on a real v2 kernel.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from localaws.lambda_engine.sandbox import cgroups

OWN = "/user.slice/user-1000.slice/user@1000.service/app.slice/localaws.scope"


def fake_v2(
    tmp_path: Path, subtree: str = "cpu memory pids", controllers: str = "cpu memory pids"
) -> tuple[Path, Path]:
    """A v2 root with the server's own group (holding the server): ``controllers`` delegated to it,
    ``subtree`` already enabled for its children."""
    root = tmp_path / "cgroup"
    own = root / OWN.lstrip("/")
    own.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (own / "cgroup.controllers").write_text(controllers + "\n")
    (own / "cgroup.procs").write_text(f"{os.getpid()}\n")
    (own / "cgroup.subtree_control").write_text(subtree + "\n")
    return root, own


def test_a_delegated_v2_group_gets_cpu_max_memory_max_and_the_freezer(tmp_path):
    root, own = fake_v2(tmp_path)
    layout = cgroups.probe("1234", root=root, own={"": OWN})
    assert layout.version == 2 and layout.off == {}
    base = own / "localaws-1234"
    assert layout.bases == {"": base}
    assert (base / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"

    group = cgroups.Group(layout, "env1", memory_mb=128)
    path = base / "env1"
    # Lambda: one vCPU per 1769 MB; 128 MB gets 128/1769 of a 100 ms period.
    assert (path / "cpu.max").read_text() == f"{int(100_000 * 128 / 1769)} 100000"
    assert (path / "memory.max").read_text() == str(128 * 1024 * 1024)
    assert (path / "memory.swap.max").read_text() == "0"
    assert (path / "pids.max").read_text() == "1024"  # Lambda: 1,024 processes and threads
    assert group.procs == [str(path / "cgroup.procs").encode()]

    group.freeze()
    assert (path / "cgroup.freeze").read_text() == "1" and group.frozen
    group.thaw()
    assert (path / "cgroup.freeze").read_text() == "0" and not group.frozen

    (path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert group.oom_kills() == 1


def test_cpu_is_capped_at_the_machines_cores_in_v2(tmp_path):
    root, own = fake_v2(tmp_path)
    layout = cgroups.probe("1", root=root, own={"": OWN})
    cgroups.Group(layout, "big", memory_mb=10240)
    cores = os.cpu_count() or 1
    quota = int(100_000 * min(cores, 10240 / 1769))
    assert (own / "localaws-1" / "big" / "cpu.max").read_text() == f"{quota} 100000"


def test_v2_without_delegated_controllers_says_which_are_off_and_still_freezes(tmp_path):
    root, own = fake_v2(tmp_path, subtree="pids", controllers="pids")
    layout = cgroups.probe("7", root=root, own={"": OWN})
    assert set(layout.off) == {"cpu", "memory"}
    assert "not delegated" in layout.off["cpu"] and "cgroup.controllers" in layout.off["memory"]
    assert layout.freezer  # cgroup.freeze needs no controller
    group = cgroups.Group(layout, "env", memory_mb=256)
    path = own / "localaws-7" / "env"
    assert not (path / "cpu.max").exists() and not (path / "memory.max").exists()
    group.freeze()
    assert (path / "cgroup.freeze").read_text() == "1"
    assert group.oom_kills() == 0  # no memory limit: nothing to count


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write a read-only folder")
def test_v2_not_writable_is_reported_as_no_writable_cgroup(tmp_path):
    root, own = fake_v2(tmp_path)
    own.chmod(0o555)
    try:
        layout = cgroups.probe("9", root=root, own={"": OWN})
    finally:
        own.chmod(0o755)
    assert layout.bases == {}
    assert all(layout.off[g].startswith("no writable cgroup") for g in ("cpu", "memory", "freezer"))


def test_v2_with_no_group_of_ours_is_reported_as_no_writable_cgroup(tmp_path):
    root = tmp_path / "cgroup"
    root.mkdir()  # a v2 mount without the server's group (nothing delegated, or /proc/self/cgroup elsewhere)
    layout = cgroups.probe("9", root=root, own={"": "/not/here"})
    assert layout.version == 2 and layout.bases == {}
    assert all(layout.off[g].startswith("no writable cgroup") for g in ("cpu", "memory", "freezer"))


def test_a_dead_servers_v2_groups_are_removed_and_its_frozen_environment_thawed(tmp_path):
    root, own = fake_v2(tmp_path)
    dead = own / "localaws-999999999"  # no such pid
    (dead / "env").mkdir(parents=True)
    (dead / "env" / "cgroup.procs").write_text("")
    (dead / "env" / "cgroup.freeze").write_text("1")
    layout = cgroups.probe("2", root=root, own={"": OWN})
    cgroups.remove_stale(layout)
    # A real cgroupfs removes a group's files with it; a fake tree keeps them, so rmdir fails and the
    # thaw written before it is what is left to check.
    assert (dead / "env" / "cgroup.freeze").read_text() == "0"


def test_delegated_controllers_not_yet_enabled_are_enabled_for_the_servers_children(tmp_path):
    root, own = fake_v2(tmp_path, subtree="", controllers="cpu memory pids")
    layout = cgroups.probe("5", root=root, own={"": OWN})
    assert layout.off == {}
    assert (own / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert (own / "localaws-5" / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"


class NoInternalProcesses:
    """A model of the kernel's cgroup v2 rules the module must cope with (not a kernel): writing a pid to
    a group's cgroup.procs moves it out of every other group; enabling controllers in the
    cgroup.subtree_control of a group that holds processes fails with EBUSY."""

    def __init__(self, root: Path):
        self.root = root

    def __call__(self, path: Path, value) -> None:
        path = Path(path)
        if path.name == "cgroup.procs":
            for procs in self.root.rglob("cgroup.procs"):
                procs.write_text("".join(f"{p}\n" for p in procs.read_text().split() if p != str(value)))
            path.write_text(path.read_text() + f"{value}\n" if path.exists() else f"{value}\n")
        elif path.name == "cgroup.subtree_control" and (path.parent / "cgroup.procs").read_text().split():
            raise OSError(errno.EBUSY, "Device or resource busy")
        else:
            path.write_text(str(value))


def test_the_server_moves_into_a_leaf_of_its_group_to_enable_controllers(tmp_path, monkeypatch):
    root, own = fake_v2(tmp_path, subtree="", controllers="cpu memory pids")
    monkeypatch.setattr(cgroups, "_write", NoInternalProcesses(root))
    layout = cgroups.probe("6", root=root, own={"": OWN})
    assert layout.off == {}
    assert (own / "localaws-server-6" / "cgroup.procs").read_text().split() == [str(os.getpid())]
    assert (own / "cgroup.procs").read_text().split() == []
    assert (own / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"


def test_a_group_shared_with_other_processes_is_left_as_it_was_and_said_so(tmp_path, monkeypatch):
    root, own = fake_v2(tmp_path, subtree="", controllers="cpu memory pids")
    (own / "cgroup.procs").write_text(f"{os.getpid()}\n1\n")  # and, say, the shell that started it
    monkeypatch.setattr(cgroups, "_write", NoInternalProcesses(root))
    layout = cgroups.probe("8", root=root, own={"": OWN})
    assert set(layout.off) == {"cpu", "memory", "pids"} and layout.freezer
    assert "holds other processes" in layout.off["cpu"]
    assert (own / "cgroup.procs").read_text().split() == [str(os.getpid()), "1"]
    assert not (own / "localaws-server-8").exists()
