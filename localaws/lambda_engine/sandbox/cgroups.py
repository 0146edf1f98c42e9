"""Guarantee 4, CPU and memory as Lambda sizes them, and idle environments frozen, through cgroups.

- CPU: Lambda allocates CPU in proportion to memory, one vCPU's worth at 1,769 MB
  (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html). Each environment gets a CFS
  quota of ``MemorySize / 1769`` CPUs per period, capped at this machine's cores.
- Memory: capped at ``MemorySize``; the kernel, not a sampler, kills the process that goes above it
  (reported as ``Runtime.OutOfMemory``). The limit includes the page cache the environment fills, which
  the kernel reclaims before it kills.
- Freezing: between invocations Lambda freezes the environment, so a background thread does not run
  (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html). Here an idle
  environment's group is frozen while its runtime waits for the next invocation, and thawed to deliver it.
- Processes: Lambda's quota is 1,024 processes and threads per execution environment
  (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html); ``pids.max`` is 1,024, so a
  fork or a new thread past it fails with EAGAIN, as it does on Lambda. Without a pids controller the
  sandbox uses ``RLIMIT_NPROC`` instead (see :mod:`.limits`).

cgroup v1 (cpu, memory, freezer, pids hierarchies, as on this machine) and v2 (``cpu.max``,
``memory.max``, ``pids.max``, ``cgroup.freeze``, where the server's group is delegated to it; the server
moves itself into a leaf of that group to enable cpu, memory and pids for its children) are both driven;
groups live under the server's own group as ``localaws-<server pid>/<environment>``, and :func:`close`
removes the server's own when it stops. A missing or read-only controller turns its guarantee off, and
:func:`probe` says which and why.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from localaws.server import pid_alive

log = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
VCPU_MB = 1769  # Lambda: one vCPU's worth of CPU at 1,769 MB
PERIOD_US = 100_000
MAX_PROCESSES = 1024  # Lambda: processes and threads per execution environment
V1_CONTROLLERS = ("cpu", "memory", "freezer", "pids")
V2_CONTROLLERS = ("cpu", "memory", "pids")  # the freezer is cgroup.freeze, which needs no controller


def cpu_share(memory_mb: int, cores: int | None = None) -> float:
    """The CPUs an environment of ``memory_mb`` gets: memory / 1769, at most this machine's cores."""
    return min(float(cores or os.cpu_count() or 1), memory_mb / VCPU_MB)


def _own_groups() -> dict[str, str]:
    """``{controller: path}`` of this process's groups (``""`` is the v2 unified group)."""
    groups = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                groups[controller] = path
    return groups


@dataclass
class Layout:
    """Where each controller's groups go, and which guarantees are on (False: why not)."""

    version: int
    bases: dict[str, Path] = field(default_factory=dict)  # v1: controller -> base; v2: "" -> base
    off: dict[str, str] = field(default_factory=dict)  # guarantee -> reason it is off

    @property
    def cpu(self) -> bool:
        return "cpu" not in self.off

    @property
    def memory(self) -> bool:
        return "memory" not in self.off

    @property
    def freezer(self) -> bool:
        return "freezer" not in self.off

    @property
    def pids(self) -> bool:
        return "pids" not in self.off


def _writable_base(parent: Path, name: str) -> Path | None:
    base = parent / name
    try:
        base.mkdir(exist_ok=True)
    except OSError:
        return None
    return base if os.access(base, os.W_OK) else None


def probe(tag: str, root: Path = ROOT, own: dict[str, str] | None = None) -> Layout:
    """Find writable cgroup controllers for this server (groups under ``localaws-<tag>``).

    ``root`` and ``own`` (this process's groups, from ``/proc/self/cgroup``) are for tests of a fake tree.
    """
    own = _own_groups() if own is None else own
    v1 = {c: root / c for c in V1_CONTROLLERS if (root / c / "cgroup.procs").exists()}
    name = f"localaws-{tag}"
    if v1:
        layout = Layout(1)
        unwritable = []
        for controller, mount in v1.items():
            base = _writable_base(mount / own.get(controller, "/").lstrip("/"), name)
            if base is None:
                unwritable.append(controller)
            else:
                layout.bases[controller] = base
        reason = (
            f"no writable cgroup: the cgroup v1 {', '.join(unwritable)} "
            f"{'controllers are' if len(unwritable) > 1 else 'controller is'} not writable by uid {os.geteuid()}"
        )
        for controller in unwritable:
            layout.off[controller] = reason
        for controller in V1_CONTROLLERS:
            if controller not in v1:
                layout.off[controller] = f"no cgroup v1 {controller} controller"
        return layout
    layout = Layout(2)
    parent = root / own.get("", "/").lstrip("/")
    # cgroup.freeze needs no controller: any writable (delegated) group can freeze its members.
    base = _writable_base(parent, name) if (parent / "cgroup.procs").exists() else None
    if base is None:
        for guarantee in (*V2_CONTROLLERS, "freezer"):
            layout.off[guarantee] = (
                f"no writable cgroup: no cgroup v2 group is delegated to uid {os.geteuid()}"
            )
        return layout
    enabled, why_not = _delegate_v2(parent, tag)
    with contextlib.suppress(OSError):
        _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in V2_CONTROLLERS if c in enabled))
    layout.bases[""] = base
    for controller in V2_CONTROLLERS:
        if controller not in enabled:
            layout.off[controller] = why_not or (
                f"the cgroup v2 {controller} controller is not delegated to {parent} (see its cgroup.controllers)"
            )
    return layout


def _words(path: Path) -> list[str]:
    with contextlib.suppress(OSError):
        return path.read_text().split()
    return []


def _delegate_v2(parent: Path, tag: str) -> tuple[list[str], str | None]:
    """Enable cpu, memory and pids for the children of the server's own v2 group: ``(enabled, why not)``.

    cgroup v2's "no internal processes" rule: a group that holds processes cannot enable controllers for
    its children (EBUSY), and a delegated group (systemd's ``Delegate=yes``) holds the server itself. So
    the server moves itself into a leaf of its own, ``localaws-server-<pid>``, and enables them then; if
    the group holds other processes too, it leaves everything as it was and says so.
    https://docs.kernel.org/admin-guide/cgroup-v2.html#no-internal-process-constraint
    """
    subtree = parent / "cgroup.subtree_control"
    enabled = _words(subtree)
    wanted = [c for c in V2_CONTROLLERS if c in _words(parent / "cgroup.controllers") and c not in enabled]
    if not wanted:
        return enabled, None
    line = " ".join(f"+{c}" for c in wanted)
    try:
        _write(subtree, line)
        return enabled + wanted, None
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            return (
                enabled,
                f"the cgroup v2 {', '.join(wanted)} controller could not be enabled in {subtree}: {exc}",
            )
    me = str(os.getpid())
    if _words(parent / "cgroup.procs") != [me]:
        return enabled, (
            f"the cgroup v2 {', '.join(wanted)} controller cannot be enabled: {parent} holds other processes "
            "than this server (start it in a cgroup of its own)"
        )
    leaf = parent / f"localaws-server-{tag}"
    try:
        leaf.mkdir(exist_ok=True)
        _write(leaf / "cgroup.procs", me)
        _write(subtree, line)
        return enabled + wanted, None
    except OSError as exc:
        with contextlib.suppress(OSError):
            _write(parent / "cgroup.procs", me)
            leaf.rmdir()
        return (
            enabled,
            f"the cgroup v2 {', '.join(wanted)} controller could not be enabled in {subtree}: {exc}",
        )


class Group:
    """One environment's groups: join (child side), limits, freeze/thaw, OOM count, removal."""

    def __init__(self, layout: Layout, name: str, memory_mb: int):
        self.layout = layout
        self.paths: list[Path] = []
        self.procs: list[bytes] = []  # cgroup.procs files the child writes "0" to (itself)
        self._freeze: Path | None = None
        self._memory: Path | None = None
        self.frozen = False
        bases = layout.bases
        for base in bases.values():
            path = base / name
            path.mkdir(exist_ok=True)
            self.paths.append(path)
            self.procs.append(str(path / "cgroup.procs").encode())
        quota = int(PERIOD_US * cpu_share(memory_mb))
        limit = memory_mb * 1024 * 1024
        if layout.version == 1:
            if layout.cpu:
                _write(bases["cpu"] / name / "cpu.cfs_period_us", PERIOD_US)
                _write(bases["cpu"] / name / "cpu.cfs_quota_us", quota)
            if layout.memory:
                self._memory = bases["memory"] / name
                _write(self._memory / "memory.limit_in_bytes", limit)
                with contextlib.suppress(OSError):  # no swap: the limit is the limit
                    _write(self._memory / "memory.swappiness", 0)
            if layout.freezer:
                self._freeze = bases["freezer"] / name / "freezer.state"
            if layout.pids:
                _write(bases["pids"] / name / "pids.max", MAX_PROCESSES)
        elif bases:
            path = bases[""] / name
            if layout.cpu:
                _write(path / "cpu.max", f"{quota} {PERIOD_US}")
            if layout.memory:
                self._memory = path
                _write(path / "memory.max", limit)
                with contextlib.suppress(OSError):
                    _write(path / "memory.swap.max", 0)
            if layout.pids:
                _write(path / "pids.max", MAX_PROCESSES)
            self._freeze = path / "cgroup.freeze"

    def join(self) -> None:
        """Child side, between fork and exec: move this process into every group."""
        for procs in self.procs:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)

    def adopt(self, pid: int, timeout: float = 2.0) -> None:
        """Move a started launcher and the child it forks into every group, from the server's side.

        Moving a process between cgroup v1 groups waits for an RCU grace period: 2 to 150 ms on a busy
        machine. Done here, in a thread of the server, it does not delay the environment's start (which
        runs unthrottled for those few milliseconds); the launcher forks its PID namespace's first process
        at once, so the child is waited for and moved too (anything it starts later inherits the groups).
        """
        deadline = time.monotonic() + timeout
        children: list[str] = []
        while time.monotonic() < deadline and not children:
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                return  # gone already
            if not children:
                time.sleep(0.0005)
        for procs in self.procs:
            for member in [str(pid), *children]:
                with contextlib.suppress(OSError):  # it may have exited meanwhile
                    Path(procs.decode()).write_text(member)

    def freeze(self) -> None:
        if self._freeze is not None and not self.frozen:
            self.frozen = True
            with contextlib.suppress(OSError):
                self._freeze.write_text("FROZEN" if self.layout.version == 1 else "1")

    def thaw(self) -> None:
        if self._freeze is not None and self.frozen:
            self.frozen = False
            with contextlib.suppress(OSError):
                self._freeze.write_text("THAWED" if self.layout.version == 1 else "0")

    def oom_kills(self) -> int:
        """How many processes the kernel killed for going above the memory limit."""
        if self._memory is None:
            return 0
        name = "memory.oom_control" if self.layout.version == 1 else "memory.events"
        with contextlib.suppress(OSError, ValueError):
            for line in (self._memory / name).read_text().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        return 0

    def destroy(self) -> None:
        """End whatever is still in the groups (a process that left its process group), then remove them."""
        for path in self.paths:
            _end_orphans(path)
        self.remove()

    def remove(self) -> None:
        """Remove the groups once their processes are gone (retried briefly: exits are asynchronous)."""
        self.thaw()
        for path in self.paths:
            if not _rmdir(path):
                log.warning("could not remove cgroup %s", path)


def close(layout: Layout) -> None:
    """At the server's clean stop, once its environments have ended: remove ``localaws-<pid>`` and any
    empty group still in it, in every hierarchy (a non-empty one is left to the next server's
    :func:`remove_stale`, which ends what it holds)."""
    for base in layout.bases.values():
        for child in _children(base):
            _rmdir(child)
        _rmdir(base)


def _children(folder: Path) -> list[Path]:
    with contextlib.suppress(OSError):
        return [c for c in folder.iterdir() if c.is_dir()]
    return []


def _rmdir(path: Path, attempts: int = 50) -> bool:
    """Remove an empty group, retried briefly (a process that just exited leaves it a moment later)."""
    for _ in range(attempts):
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            time.sleep(0.02)
    return False


def remove_stale(layout: Layout) -> None:
    """Remove ``localaws-<pid>`` groups of servers that are gone, ending the environments a crashed server
    left behind (frozen ones would otherwise wait forever)."""
    for base in layout.bases.values():
        for other in base.parent.glob("localaws-*"):
            pid = other.name.rsplit("-", 1)[-1]
            if other == base or not pid.isdigit() or pid_alive(int(pid)):
                continue
            for child in other.iterdir():
                if child.is_dir():
                    _end_orphans(child)
                    with contextlib.suppress(OSError):
                        child.rmdir()
            with contextlib.suppress(OSError):
                other.rmdir()


def _end_orphans(group: Path) -> None:
    """Kill what a dead server left in an environment's group: its processes, frozen (v1) until thawed."""
    with contextlib.suppress(OSError, ValueError):
        for pid in (group / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid), signal.SIGKILL)
    for name, value in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
        if (group / name).exists():
            with contextlib.suppress(OSError):
                (group / name).write_text(value)
    for _ in range(50):  # the kernel ends them once thawed
        try:
            if not (group / "cgroup.procs").read_text().split():
                return
        except OSError:
            return
        time.sleep(0.02)


def _write(path: Path, value) -> None:
    path.write_text(str(value))
