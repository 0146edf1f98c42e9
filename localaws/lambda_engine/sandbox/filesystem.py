"""Guarantee 1, the file system: an execution environment sees Lambda's view of the world, and only it.

In its own mount namespace, on an empty tmpfs that becomes its root (read-only once built):

- ``/var/task``: the extracted code, read-only, and the working directory;
- ``/opt``: the function's layers merged in order, read-only (``/opt/python`` importable);
- ``/var/lang``: the interpreter (this machine's base Python, its site-packages masked empty) and
  ``/var/runtime``: the runtime client and boto3 (see :mod:`.runtime`), both read-only;
- ``/tmp``: a private tmpfs of ``EphemeralStorage`` MB, empty at each cold start (a write past it
  fails with ENOSPC);
- each ``FileSystemConfigs`` entry: its access point's folder bind-mounted at its ``LocalMountPath``
  (read-only where the file-system policy denies the role ``ClientWrite``), so hard-coded paths such as
  ``/mnt/ml`` work and nothing reaches the host's ``/mnt``. The folder is a :class:`Beneath`: opened inside
  its file system's folder one component at a time, never following a link (:mod:`.beneath`), and the
  descriptor opened is what is mounted (``/proc/self/fd/N``), so a link a function put on its file
  system can never make the mount show the host;
- the system folders (``/usr`` and the ``/bin``, ``/lib`` links), a few ``/etc`` files (name
  resolution, the dynamic linker's cache, CA certificates, and a passwd naming the sandbox user) and
  the ``/dev`` nodes Lambda has (null, zero, full, random, urandom; no ``/dev/shm``, as on Lambda);
  ``/proc`` is the environment's own (:mod:`.identity`).

Nothing else of the host is visible: not the repository, the server's state folder, other functions'
code or EFS folders, nor ``/root``. Filesystem layout as documented for Lambda:
https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
(``LAMBDA_TASK_ROOT``, ``LAMBDA_RUNTIME_DIR``) and
https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html#packaging-layers-paths (``/opt``).

:func:`plan` runs in the server and only computes; :func:`apply` runs in the child between fork and exec,
as root (or as 0 of a user namespace, see :mod:`.userns`), with nothing but prebuilt data and system calls.
A bind mount keeps the flags its source has (read with statvfs): in a user namespace the kernel locks
them, and a remount that dropped one would fail with EPERM.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from localaws.lambda_engine.sandbox import beneath, libc

TASK_ROOT = "/var/task"
RUNTIME_DIR = "/var/runtime"
LANG_DIR = "/var/lang"
OPT_DIR = "/opt"
ETC_FILES = (
    "hosts",
    "resolv.conf",
    "nsswitch.conf",
    "host.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "ssl",
    "ca-certificates",
    "pki",
    "localtime",
    "mime.types",
)
DEVICES = ("null", "zero", "full", "random", "urandom")
SYSTEM = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
_RO = libc.MS_NOSUID | libc.MS_NODEV
_LOCKED = (  # statvfs flag -> mount flag, for the flags a user namespace locks on a bind mount's source
    (os.ST_RDONLY, libc.MS_RDONLY),
    (os.ST_NOSUID, libc.MS_NOSUID),
    (os.ST_NODEV, libc.MS_NODEV),
    (os.ST_NOEXEC, libc.MS_NOEXEC),
    (os.ST_NOATIME, libc.MS_NOATIME),
    (os.ST_NODIRATIME, libc.MS_NODIRATIME),
    (os.ST_RELATIME, libc.MS_RELATIME),
)


@dataclass(frozen=True)
class Mount:
    """One step of building the root: ``kind`` is bind, beneath, tmpfs, symlink or dir."""

    target: str  # inside the sandbox
    kind: str
    source: str = ""  # host path (bind; beneath: the root to walk from) or link text (symlink)
    read_only: bool = True
    data: str = ""  # tmpfs options; beneath: the folder's path inside ``source``


@dataclass(frozen=True)
class Beneath:
    """A folder to mount that is reached inside ``root`` without following links (an access point's)."""

    root: Path
    relative: str = ""


def plan(
    *,
    task_root: Path,
    opt_dir: Path | None,
    runtime_dir: Path,
    etc_dir: Path,
    lang_prefix: Path,
    lang_masks: list[str],
    efs: dict[str, Path | Beneath],
    tmp_mb: int,
    efs_read_only: set[str] | frozenset[str] = frozenset(),
) -> list[Mount]:
    """The mounts that make an environment's root, in order (parents before children)."""
    steps: list[Mount] = []
    for name in SYSTEM:
        host = Path("/", name)
        if host.is_symlink():
            steps.append(Mount(f"/{name}", "symlink", os.readlink(host)))
        elif host.is_dir():
            steps.append(Mount(f"/{name}", "bind", str(host)))
    steps.append(Mount("/etc", "tmpfs", data="size=1m,mode=755"))
    for name in ETC_FILES:
        if os.path.lexists(f"/etc/{name}") and not Path("/etc", name).is_symlink():
            steps.append(Mount(f"/etc/{name}", "bind", f"/etc/{name}"))
    steps += [Mount(f"/etc/{name}", "bind", str(etc_dir / name)) for name in ("passwd", "group")]
    steps.append(Mount("/dev", "tmpfs", data="size=64k,mode=755"))
    steps += [Mount(f"/dev/{name}", "bind", f"/dev/{name}", read_only=False) for name in DEVICES]
    steps += [
        Mount(f"/dev/{link}", "symlink", f"/proc/self/fd/{fd}")
        for fd, link in enumerate(("stdin", "stdout", "stderr"))
    ]
    steps.append(Mount("/dev/fd", "symlink", "/proc/self/fd"))
    steps.append(Mount(LANG_DIR, "bind", str(lang_prefix)))
    steps += [Mount(f"{LANG_DIR}/{mask}", "tmpfs", data="size=4k,mode=755") for mask in lang_masks]
    steps.append(Mount(RUNTIME_DIR, "bind", str(runtime_dir)))
    steps.append(Mount(TASK_ROOT, "bind", str(task_root)))
    if opt_dir is not None:
        steps.append(Mount(OPT_DIR, "bind", str(opt_dir)))
    else:
        steps.append(Mount(OPT_DIR, "dir"))
    steps.append(Mount("/tmp", "tmpfs", read_only=False, data=f"size={int(tmp_mb)}m,mode=1777"))
    steps.append(Mount("/proc", "dir"))
    for mount_path, folder in sorted(efs.items()):
        read_only = mount_path in efs_read_only
        if isinstance(folder, Beneath):
            steps.append(Mount(mount_path, "beneath", str(folder.root), read_only, data=folder.relative))
        else:
            steps.append(Mount(mount_path, "bind", str(folder), read_only=read_only))
    return steps


def _make_target(path: bytes, is_file: bool) -> None:
    parent = os.path.dirname(path)
    if parent and not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
    if is_file:
        if not os.path.exists(path):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
    elif not os.path.isdir(path):
        os.makedirs(path, exist_ok=True)


def _locked(target: bytes) -> int:
    have = os.statvfs(target).f_flag
    flags = 0
    for st_flag, ms_flag in _LOCKED:
        if have & st_flag:
            flags |= ms_flag
    return flags


def _bind(source: bytes, target: bytes, step: Mount) -> None:
    _make_target(target, not os.path.isdir(source))
    libc.mount(source, target, None, libc.MS_BIND | libc.MS_REC, None)
    flags = libc.MS_REMOUNT | libc.MS_BIND | libc.MS_NOSUID | _locked(target)
    if step.read_only:
        flags |= libc.MS_RDONLY
    if not step.target.startswith("/dev/"):
        flags |= libc.MS_NODEV
    libc.mount(None, target, None, flags, None)


def apply(root: bytes, steps: list[Mount], *, enter: bool = True) -> None:
    """Build the root at ``root`` (an empty host folder) in this process's own mount namespace, then
    (``enter``) chroot into it with ``/var/task`` as the working directory. Child side: call after unshare."""
    libc.mount(None, b"/", None, libc.MS_REC | libc.MS_PRIVATE, None)
    libc.mount(b"tmpfs", root, b"tmpfs", libc.MS_NOSUID | libc.MS_NODEV, b"size=1m,mode=755")
    for step in steps:
        target = root + step.target.encode()
        if step.kind == "symlink":
            _make_target(os.path.dirname(target), False)
            os.symlink(step.source.encode(), target)
        elif step.kind == "dir":
            _make_target(target, False)
        elif step.kind == "tmpfs":
            _make_target(target, False)
            libc.mount(b"tmpfs", target, b"tmpfs", _RO, step.data.encode())
            if step.read_only and step.target != "/etc" and step.target != "/dev":
                libc.mount(None, target, None, libc.MS_REMOUNT | libc.MS_RDONLY | _RO, None)
        elif step.kind == "beneath":
            fd = beneath.open_dir(step.source, beneath.parts(step.data))
            try:
                _bind(f"/proc/self/fd/{fd}".encode(), target, step)
            finally:
                os.close(fd)
        else:
            _bind(step.source.encode(), target, step)
    for folder in (b"/etc", b"/dev"):  # filled above; now read-only like the rest
        libc.mount(None, root + folder, None, libc.MS_REMOUNT | libc.MS_RDONLY | _RO, None)
    libc.mount(None, root, None, libc.MS_REMOUNT | libc.MS_RDONLY | _RO, None)
    if enter:
        os.chroot(root)
        os.chdir(TASK_ROOT)
