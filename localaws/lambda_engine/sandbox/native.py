"""The sandbox's fast path: ``launcher.c``, compiled once per server, builds each environment after exec.

Starting an environment with a Python ``preexec_fn`` makes ``subprocess`` fork the whole server process,
which costs 10-15 ms on some machines (measured here: 7.7 ms for a 12 MB Python process, against 0.3 ms
for a C fork), on every cold start. With a C compiler (``cc``) on the machine, the engine instead
vfork/execs this launcher, which joins the cgroups, unshares the namespaces, builds the root and drops
privileges itself, with the same steps as :mod:`.filesystem` and :mod:`.identity`. Without a compiler
the Python path is used: the same guarantees, a slower cold start.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

from localaws.lambda_engine.sandbox.filesystem import TASK_ROOT, Mount
from localaws.lambda_engine.sandbox.identity import Identity

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("launcher.c")


def build(folder: Path) -> Path | None:
    """The compiled launcher (built once per source), or None when no C compiler works here."""
    source = SOURCE.read_bytes()
    binary = Path(folder) / f"launcher-{hashlib.sha256(source).hexdigest()[:12]}"
    if binary.exists():
        return binary
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        log.info("no C compiler: environments start through the slower Python path")
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    staging = binary.with_suffix(f".{os.getpid()}.tmp")
    done = subprocess.run(
        [compiler, "-O2", "-o", str(staging), str(SOURCE)], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        log.warning("could not compile the sandbox launcher, using the Python path: %s", done.stderr[-500:])
        return None
    os.replace(staging, binary)
    return binary


def command(
    launcher: Path,
    *,
    root: Path,
    steps: list[Mount],
    who: Identity,
    userns: bool = False,
    nproc: int | None = None,
) -> list[str]:
    """The launcher's arguments for one environment (the runtime's command follows). The engine moves the
    processes into their cgroups from outside (:meth:`.cgroups.Group.adopt`), so the launcher does not.
    ``userns``: the server is not root, the launcher works in user namespaces (:mod:`.userns`);
    ``nproc``: the ``RLIMIT_NPROC`` to set where no pids cgroup caps processes (:mod:`.limits`)."""
    args = [str(launcher)]
    args += ["--root", str(root), "--pidns", "--uid", str(who.uid), "--gid", str(who.gid)]
    if nproc is not None:
        args += ["--nproc", str(nproc)]
    if userns:
        args.append("--userns")
    elif who.groups:  # a user namespace cannot give supplementary groups (setgroups is denied)
        args += ["--groups", ",".join(str(g) for g in who.groups)]
    for step in steps:
        args += [
            "--step",
            step.kind,
            step.target,
            step.source or "-",
            "1" if step.read_only else "0",
            step.data or "-",
        ]
    return [*args, "--chdir", TASK_ROOT, "--"]
