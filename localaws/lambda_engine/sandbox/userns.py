"""The sandbox for a server that is not root: unprivileged user namespaces.

Mount namespaces need ``CAP_SYS_ADMIN``. A server that is not root gets it, where the kernel allows
unprivileged user namespaces, inside a user namespace of each environment's own in which the server's
uid and gid are mapped to 0: there it builds the same root as a root server does (bind mounts read-only,
a tmpfs ``/tmp`` of ``EphemeralStorage`` MB, the access points at their ``LocalMountPath``, its own
PID, IPC, UTS and mount namespaces). Before the runtime starts it enters a second, nested user namespace
whose only uid and gid are the function's (Lambda's 993/990, or the access point's ``PosixUser``, such as
1000), mapped onto the first one's 0: ``os.getuid()`` shows 993 or 1000 and the runtime has no
capability at all (a uid other than 0 loses them at exec). Both paths do it: the C launcher
(:mod:`.native`, ``--userns``) and the Python path (``preexec`` here, then util-linux ``unshare``).

What cannot be had this way, and is said so in ``INIT_START``, the server log and the health document:

- cgroups: the CPU quota, the memory limit and the freezer need a writable cgroup. Without one delegated
  to the server's user (cgroup v2 delegation by systemd, for example) they are off, and the server's
  memory sampler ends an environment above ``MemorySize`` instead of the kernel;
- file ownership on EFS: files a function creates on an access point show as owned by its ``PosixUser``
  inside, but on this machine they belong to the server's uid (the only one the kernel lets an
  unprivileged process map);
- supplementary groups: an unprivileged ``gid_map`` requires ``setgroups`` denied, so an access
  point's ``SecondaryGids`` are not given, and the server's own supplementary groups stay (unmapped,
  they show as 65534);
- host files not owned by the server's user (``/usr``, for example) show as owned by 65534 (nobody).

Kernel rules: https://man7.org/linux/man-pages/man7/user_namespaces.7.html (uid_map, setgroups) and
https://man7.org/linux/man-pages/man2/unshare.2.html (a chrooted process cannot create a user namespace,
so the nested one is entered before the chroot).
"""

from __future__ import annotations

import errno
import os

from localaws.lambda_engine.sandbox import libc
from localaws.lambda_engine.sandbox.filesystem import TASK_ROOT
from localaws.lambda_engine.sandbox.identity import Identity


def needed() -> bool:
    """Whether this server must use user namespaces (it is not root)."""
    return os.geteuid() != 0


def map_lines(inner_uid: int, outer_uid: int, inner_gid: int, outer_gid: int) -> tuple[bytes, bytes]:
    """The ``uid_map`` and ``gid_map`` lines that map one outer id onto one inner id."""
    return f"{inner_uid} {outer_uid} 1\n".encode(), f"{inner_gid} {outer_gid} 1\n".encode()


def _write(path: bytes, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def write_maps(uid_map: bytes, gid_map: bytes) -> None:
    """Right after ``unshare(CLONE_NEWUSER)``: deny setgroups (an unprivileged gid_map needs it), map."""
    _write(b"/proc/self/setgroups", b"deny")
    _write(b"/proc/self/gid_map", gid_map)
    _write(b"/proc/self/uid_map", uid_map)


def enter_outer(maps: tuple[bytes, bytes]) -> None:
    """Child side: new user, mount, IPC and UTS namespaces, the server's ids mapped to 0."""
    libc.unshare(libc.CLONE_NEWUSER | libc.CLONE_NEWNS | libc.CLONE_NEWIPC | libc.CLONE_NEWUTS)
    write_maps(*maps)


def probe() -> str | None:
    """Why this kernel refuses an unprivileged user namespace with a mount namespace, or None if it allows
    it (checked in a forked child, which only makes system calls and exits)."""
    if not libc.available():
        return "the C library could not be loaded for unshare/mount"
    maps = map_lines(0, os.geteuid(), 0, os.getegid())
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            enter_outer(maps)
            libc.mount(None, b"/", None, libc.MS_REC | libc.MS_PRIVATE, None)
        except OSError as exc:
            code = exc.errno or errno.EPERM
        except BaseException:
            code = errno.EPERM
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return None
    why = os.strerror(code) if code > 0 else f"signal {-code}"
    return (
        f"the server does not run as root and this kernel refuses it an unprivileged user namespace ({why}; "
        "see /proc/sys/user/max_user_namespaces, or AppArmor's restriction on Ubuntu 23.10+)"
    )


def command_prefix(who: Identity, root: str, unshare: str, setpriv: str) -> list[str]:
    """The Python path's command after ``preexec`` built the root (in the outer user namespace): util-linux
    ``unshare`` gives the PID namespace and its ``/proc``, then the nested user namespace, the chroot and the
    working directory, and ``setpriv`` sets no_new_privs."""
    return [
        unshare, "--pid", "--fork", "--kill-child", f"--mount-proc={root}/proc",
        unshare, f"--map-user={who.uid}", f"--map-group={who.gid}", f"--root={root}", f"--wd={TASK_ROOT}",
        setpriv, "--no-new-privs", "--",
    ]  # fmt: skip


def deviations(server_uid: int) -> list[str]:
    """What a user-namespace sandbox does differently from a root one (for the summary and the health)."""
    return [
        f"files a function creates on EFS belong to the server's uid {server_uid} on this machine "
        "(its PosixUser inside)",
        "an access point's SecondaryGids are not given",
    ]
