"""The Lambda sandbox: each execution environment sees exactly what a Lambda environment sees.

The promise of the local backend is "if it runs here, it runs on Lambda". Each guarantee has a module
of its own, so a reader sees which ones a platform lacks:

- :mod:`.filesystem`: ``/var/task`` read-only, ``/opt`` layers, private ``/tmp`` capped at
  EphemeralStorage, EFS at its ``LocalMountPath``, nothing else of the host;
- :mod:`.runtime`: only the standard library, the runtime client and boto3 importable; AWS's
  environment variables and nothing from the host;
- :mod:`.identity`: never root (Lambda's user, or the access point's PosixUser), own PID namespace;
- :mod:`.cgroups`: CPU scaled with MemorySize, memory capped by the kernel, idle environments frozen;
- :mod:`.caller`: the Runtime API answers only its own environment;
- :mod:`.limits`: at most 1,024 processes and threads (a pids cgroup, else ``RLIMIT_NPROC``);
- :mod:`.beneath`: what a tenant put on disk (an EFS file system, an archive) is walked and written
  without ever following a link out of its folder; :mod:`.confined`: archives are extracted in a thread
  whose root is the target folder, as an unprivileged user.

It needs Linux and either root (``CAP_SYS_ADMIN`` for mount namespaces) or, for a server that is not
root, unprivileged user namespaces (:mod:`.userns`: the same root and namespaces; no cgroups unless one is
delegated, and files created on EFS belong to the server's user on the host). Where neither is
available, or with ``LOCALAWS_SANDBOX=off``, environments run as host processes as before (mount paths
rewritten in environment variables), and :meth:`Sandbox.describe` says, in one sentence, which
guarantees are off and why: the server log, every ``INIT_START`` line and the workshop's caveats repeat
it. Nothing is half-applied silently: each guarantee is either on or named off.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from localaws.lambda_engine.sandbox import (
    caller,
    cgroups,
    filesystem,
    identity,
    libc,
    limits,
    native,
    runtime,
    userns,
)

log = logging.getLogger(__name__)

GUARANTEES = (
    "filesystem", "packages", "identity", "processes", "cpu", "memory", "freezer", "pids", "runtime_api",
)  # fmt: skip
SETTING = "LOCALAWS_SANDBOX"  # auto (default) | off | python (the Python path even with a C compiler)


@dataclass
class Launch:
    """How to start one environment's process."""

    command: list[str]
    env: dict[str, str]
    cwd: str | None
    preexec: Callable[[], None] | None = None
    group: cgroups.Group | None = None
    notes: list[str] = field(default_factory=list)
    adopt: bool = False  # the server moves the started process into ``group`` (the launcher does not join)


class Sandbox:
    """Probes once what this machine allows, then prepares each environment's launch."""

    def __init__(self, state_dir: Path, builtin_client: Path):
        self.state_dir = Path(state_dir)
        self.builtin_client = builtin_client
        self.off: dict[str, str] = {}
        self.userns = sys.platform.startswith("linux") and userns.needed()  # not root: user namespaces
        self.deviations: list[str] = []  # what differs from a root server's sandbox (user namespaces)
        self.layout: cgroups.Layout | None = None
        self.process_limit = limits.ProcessLimit(None, "none (host processes)")
        self._tools: tuple[str, str] | None = None
        reason = self._namespaces_unavailable()
        if reason:
            self.off = {g: reason for g in GUARANTEES}
        else:
            self._setup()
        if not caller.available():
            self.off.setdefault("runtime_api", "there is no /proc/net/tcp to tell who calls the Runtime API")
        log.info("Lambda sandbox: %s", self.summary())

    # --- probing -----------------------------------------------------------------------------------

    def _namespaces_unavailable(self) -> str | None:
        if os.environ.get(SETTING, "auto").lower() in ("off", "0", "false", "no"):
            return f"{SETTING}=off"
        if not sys.platform.startswith("linux"):
            return f"{sys.platform} has no Linux namespaces"
        if not libc.available():
            return "the C library could not be loaded for unshare/mount"
        if self.userns:
            reason = userns.probe()
            if reason:
                return reason
        return runtime.interpreter_available()

    def _setup(self) -> None:
        sandbox_dir = self.state_dir / "lambda" / "sandbox"
        self.root = sandbox_dir / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.etc = identity.write_etc(sandbox_dir / "etc")
        self.runtime_dir = runtime.build_runtime_dir(sandbox_dir / "runtime", self.builtin_client)
        self.launcher = None if os.environ.get(SETTING) == "python" else native.build(sandbox_dir)
        self._tools = identity.tools()
        if self._tools is None and (self.userns or self.launcher is None):
            if self.userns:  # its Python path (SageMaker's containers use it) needs util-linux
                reason = "util-linux unshare and setpriv, needed in user namespaces, are not installed"
                self.off = dict.fromkeys(GUARANTEES, reason)
                return
            self.off["processes"] = "util-linux unshare and setpriv are not installed"
        if self.userns:
            self.deviations = userns.deviations(os.geteuid())
        self.layout = cgroups.probe(str(os.getpid()))
        cgroups.remove_stale(self.layout)
        self.off.update(self.layout.off)
        self.process_limit = limits.plan(self.layout, self.userns)
        self.off.pop("pids", None)
        if self.process_limit.off:
            self.off["pids"] = self.process_limit.off
        elif self.process_limit.rlimit is not None:  # user namespaces: the same quota, counted otherwise
            self.deviations.append(f"processes and threads are capped by {self.process_limit.means}")
        failure = self._trial()
        if failure:
            self.off = {g: f"a trial sandbox failed: {failure}" for g in GUARANTEES}
            self.layout = None
            self.deviations = []
            self.process_limit = limits.ProcessLimit(None, "none (host processes)")

    def _trial(self) -> str | None:
        """Start ``true`` in a full sandbox once: the kernel may refuse what the checks above allowed."""
        with tempfile.TemporaryDirectory(dir=self.state_dir) as empty:
            launch = self.prepare(
                task_root=Path(empty), opt_dir=None, efs={}, posix_users=[], tmp_mb=1, memory_mb=128,
                runtime_name="", architectures=[], user_variables={}, builtin=True, name="trial",
            )  # fmt: skip
            launch.command = [*launch.command[: launch.command.index(runtime.PYTHON)], "/bin/true"]
            try:
                done = subprocess.run(
                    launch.command, env=launch.env, preexec_fn=launch.preexec, capture_output=True, timeout=20
                )
            except (OSError, subprocess.SubprocessError) as exc:
                return str(exc)
            finally:
                if launch.group:
                    launch.group.remove()
            return (
                None
                if done.returncode == 0
                else (done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}")
            )

    def close(self) -> None:
        """Remove this server's cgroups, once every process it started has ended (at a clean stop)."""
        if self.layout is not None:
            cgroups.close(self.layout)

    # --- describing --------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return "filesystem" not in self.off

    def describe(self) -> dict:
        """``{"enabled", "mode", "guarantees": {name: True | reason off}, "process_limit": how the 1,024
        processes and threads are capped, "deviations", "summary"}`` (for health and caveats)."""
        return {
            "enabled": self.enabled,
            "mode": ("user namespaces" if self.userns else "root") if self.enabled else "host processes",
            "guarantees": {g: self.off.get(g, True) for g in GUARANTEES},
            "process_limit": self.process_limit.means,
            "deviations": list(self.deviations),
            "summary": self.summary(),
        }

    def summary(self) -> str:
        """One sentence: all guarantees on, or which are off and why (and, in user namespaces, what differs)."""
        unprivileged = (
            f"; unprivileged (user namespaces): {'; '.join(self.deviations)}" if self.deviations else ""
        )
        if not self.off:
            return "on: every guarantee of the Lambda sandbox is enforced" + unprivileged
        reasons: dict[str, list[str]] = {}
        for guarantee, reason in self.off.items():
            reasons.setdefault(reason, []).append(guarantee)
        parts = [f"{', '.join(names)} not enforced ({reason})" for reason, names in reasons.items()]
        return ("on, but " if self.enabled else "off: ") + "; ".join(parts) + unprivileged

    # --- launching ---------------------------------------------------------------------------------

    def prepare(
        self,
        *,
        task_root: Path,
        opt_dir: Path | None,
        efs: dict[str, Path | filesystem.Beneath],
        posix_users: list[dict],
        efs_read_only: set[str] | frozenset[str] = frozenset(),
        tmp_mb: int,
        memory_mb: int,
        runtime_name: str,
        architectures: list[str],
        user_variables: dict[str, str],
        builtin: bool,
        name: str,
    ) -> Launch:
        """The launch of one environment in the sandbox (call only when :attr:`enabled`)."""
        steps = filesystem.plan(
            task_root=task_root,
            opt_dir=opt_dir,
            runtime_dir=self.runtime_dir,
            etc_dir=self.etc,
            lang_prefix=runtime.lang_prefix(),
            lang_masks=runtime.lang_masks(),
            efs=efs,
            efs_read_only=efs_read_only,
            tmp_mb=tmp_mb,
        )
        who = identity.for_access_points(posix_users)
        group = cgroups.Group(self.layout, name, memory_mb) if self.layout and self.layout.bases else None
        notes = [f"runs as uid {who.uid} ({who.source})"]
        if self.userns:
            notes[0] += f" in a user namespace, uid {os.geteuid()} on this machine"
            if who.groups:
                notes.append("its access point's SecondaryGids are not given (user namespace)")
        if group is not None and self.layout.cpu:
            notes.append(f"cpu: {cgroups.cpu_share(memory_mb):.2f} vCPU (scaled with MemorySize)")
        mismatch = runtime.describe_interpreter(runtime_name, architectures)
        if mismatch:
            notes.append(mismatch)
        env = runtime.variables(runtime_name, user_variables, builtin=builtin)
        if self.launcher is not None:  # the fast path: vfork/exec the C launcher, which does it all
            prefix = native.command(
                self.launcher, root=self.root, steps=steps, who=who, userns=self.userns,
                nproc=self.process_limit.rlimit,
            )  # fmt: skip
            return Launch(
                command=prefix + runtime.COMMAND, env=env, cwd=None, group=group, notes=notes, adopt=True
            )
        prefix, preexec = self.isolation(steps, who, group)
        return Launch(
            command=prefix + runtime.COMMAND, env=env, cwd=None, preexec=preexec, group=group, notes=notes
        )

    def isolation(
        self, steps: list[filesystem.Mount], who: identity.Identity, group: cgroups.Group | None
    ) -> tuple[list[str], Callable[[], None]]:
        """``(command prefix, preexec)`` that run a command in the root ``steps`` build, as ``who``, in its own
        namespaces, without the C launcher (the Python path; SageMaker's containers use it too).

        As root, ``preexec`` unshares the namespaces, builds the root and chroots, and util-linux ``unshare``
        and ``setpriv`` add the PID namespace and drop to ``who``. In user namespaces (a server that is not
        root), ``preexec`` builds the root as 0 of the outer one, and util-linux ``unshare`` adds the PID
        namespace, the nested user namespace and the chroot (see :mod:`.userns`).
        """
        root = str(self.root).encode()
        nproc = self.process_limit.rlimit
        if self.userns:
            maps = userns.map_lines(0, os.geteuid(), 0, os.getegid())
            prefix = userns.command_prefix(who, root.decode(), *self._tools)

            def preexec() -> None:  # in the child, between fork and exec: system calls on prebuilt data only
                if group is not None:
                    group.join()
                userns.enter_outer(maps)
                filesystem.apply(root, steps, enter=False)
                if nproc is not None:  # before util-linux unshare makes the nested user namespace
                    limits.apply(nproc)

            return prefix, preexec
        prefix = identity.command_prefix(who, *self._tools) if self._tools else []

        def preexec() -> None:  # in the child, between fork and exec: system calls on prebuilt data only
            if group is not None:
                group.join()
            libc.unshare(libc.CLONE_NEWNS | libc.CLONE_NEWIPC | libc.CLONE_NEWUTS)
            filesystem.apply(root, steps)
            if nproc is not None:
                limits.apply(nproc)
            if not prefix:  # no util-linux: drop to the identity here, without a PID namespace
                os.setgroups(list(who.groups))
                os.setresgid(who.gid, who.gid, who.gid)
                os.setresuid(who.uid, who.uid, who.uid)

        return prefix, preexec
