"""Work done on a tenant's archive, confined to one folder and run as an unprivileged user.

Extracting a function zip, a layer or a SageMaker model archive is the server writing what a tenant
chose. :class:`~.beneath.Tree` never follows a link while it writes; this module adds a second wall
that does not depend on getting every path right: :func:`run` does the work in a thread of its own
which, before it starts, takes a private root and working directory (``unshare(CLONE_FS)``), makes the
target folder its root (``chroot``), and drops to Lambda's sandbox user (uid 993, gid 990, no
supplementary groups) with the raw ``setresuid``/``setresgid``/``setgroups`` system calls, which on
Linux change the calling thread only (the C library's wrappers would change every thread of the
server). From then on that thread can write nothing but the target folder, which it owns, and cannot
take its privileges back; it ends when the work is done. Linux keeps credentials and the root
directory per thread: https://man7.org/linux/man-pages/man2/unshare.2.html (CLONE_FS) and
https://man7.org/linux/man-pages/man7/credentials.7.html ("per-thread" credentials at the kernel level).

Nothing is imported or looked up inside the confined thread (the interpreter's files are outside its
root): callers parse the archive before and hand in plain data and bytes.

Where this cannot be had (a server that is not root, which may not chroot, or another system than
Linux x86_64/aarch64) the work runs unconfined in the server's own thread, as the server's user, with
:class:`~.beneath.Tree`'s guarantee alone: :func:`unavailable` says why.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from localaws.lambda_engine.sandbox.identity import LAMBDA_GID, LAMBDA_UID

log = logging.getLogger(__name__)

T = TypeVar("T")
CLONE_FS = 0x00000200
_SYSCALLS = {  # (setgroups, setresgid, setresuid): the thread-only system calls
    "x86_64": (116, 119, 117),
    "aarch64": (159, 149, 147),
}
_libc = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _libc.syscall.restype = ctypes.c_long
        _libc.unshare.argtypes = [ctypes.c_int]
    except OSError:
        _libc = None
_warned = False


def unavailable() -> str | None:
    """Why archives are extracted unconfined here, or None when :func:`run` confines them."""
    if _libc is None:
        return f"{sys.platform} has no per-thread root and credentials"
    if platform.machine() not in _SYSCALLS:
        return f"the thread-only credential calls are not known for {platform.machine()}"
    if os.geteuid() != 0:
        return "the server is not root and may not chroot or change user"
    return None


def _call(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _confine(folder: str, uid: int, gid: int) -> None:
    """This thread only: root and working directory ``folder``, user ``uid``/``gid``, no groups."""
    setgroups, setresgid, setresuid = _SYSCALLS[platform.machine()]
    _call(_libc.unshare(CLONE_FS), "unshare(CLONE_FS)")
    os.chroot(folder)
    os.chdir("/")
    _call(_libc.syscall(setgroups, 0, None), "setgroups")
    _call(_libc.syscall(setresgid, gid, gid, gid), "setresgid")
    _call(_libc.syscall(setresuid, uid, uid, uid), "setresuid")
    if os.getuid() != uid or os.geteuid() != uid:  # never go on with the server's rights
        raise OSError(f"the extraction thread is still uid {os.geteuid()}")


def run(folder: Path, work: Callable[[str], T], *, uid: int = LAMBDA_UID, gid: int = LAMBDA_GID) -> T:
    """``work(root)`` confined to ``folder`` (an empty folder, handed to ``uid``), as ``uid``; ``root`` is
    the path under which to write (``/`` when confined). Its exception, if any, is raised here."""
    global _warned
    reason = unavailable()
    if reason is not None:
        if not _warned:
            log.info(
                "archives are extracted without a confined thread (%s); links are never followed", reason
            )
            _warned = True
        return work(str(folder))
    os.chown(folder, uid, gid)
    outcome: dict[str, object] = {}

    def confined() -> None:
        try:
            _confine(str(folder), uid, gid)
            outcome["value"] = work("/")
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=confined, name="confined-extract", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[return-value]
