"""Guarantee 3, identity: the function never runs as root, and environments cannot see each other.

- The user. On Lambda the runtime runs as ``sbx_user1051`` (uid 993, gid 990). With an EFS access point
  mounted, EFS performs every file operation as the access point's ``PosixUser``, so the files a
  function creates there are owned by it (uid/gid 1000 in this workshop):
  https://docs.aws.amazon.com/efs/latest/ug/efs-access-points.html#enforce-identity-access-points.
  Here the whole environment runs as that PosixUser instead (so ``os.getuid()`` is 1000 where Lambda
  shows 993, and file ownership on "EFS" is the same as on AWS); without an access point it runs as
  993/990. No supplementary groups but the access point's ``SecondaryGids``; ``no_new_privs`` set.
  A PosixUser of root (uid or gid 0) is not taken on: the environment runs as 993/990, since running
  as the host's root would void every other guarantee; files it creates on EFS are then owned by 993
  where AWS would make them root's (deviation).
  A server that is not root gives the same uid inside a nested user namespace (:mod:`.userns`), with no
  capabilities; deviations: no ``SecondaryGids``, and files created on EFS belong on the host to the
  server's uid (they show as the ``PosixUser`` inside).
- Processes. Each environment has its own PID namespace and its own ``/proc`` (util-linux ``unshare
  --pid --fork --mount-proc``), so it sees only its own processes: it cannot read another
  environment's ``/proc/<pid>/environ`` (where the credentials are) or signal it. The runtime is pid 1
  of its namespace; the engine signals the whole process group from outside.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

LAMBDA_UID, LAMBDA_GID, LAMBDA_USER = 993, 990, "sbx_user1051"
HOME = f"/home/{LAMBDA_USER}"


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    source: str = "Lambda's sandbox user"


def for_access_points(posix_users: list[dict]) -> Identity:
    """The identity for a function mounting access points with these ``PosixUser`` settings."""
    for user in posix_users:
        if user and "Uid" in user and "Gid" in user:
            if int(user["Uid"]) == 0 or int(user["Gid"]) == 0:
                return Identity(
                    LAMBDA_UID,
                    LAMBDA_GID,
                    (),
                    "Lambda's sandbox user (its access point's PosixUser is root, never taken on here)",
                )
            groups = tuple(int(g) for g in user.get("SecondaryGids") or () if int(g) != 0)
            return Identity(int(user["Uid"]), int(user["Gid"]), groups, "its EFS access point's PosixUser")
    return Identity(LAMBDA_UID, LAMBDA_GID)


def write_etc(folder: Path) -> Path:
    """The sandbox's ``/etc/passwd`` and ``/etc/group``: root, the Lambda user and the workshop's 1000."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "passwd").write_text(
        "root:x:0:0:root:/root:/sbin/nologin\n"
        f"{LAMBDA_USER}:x:{LAMBDA_UID}:{LAMBDA_GID}::{HOME}:/sbin/nologin\n"
        "efs-user:x:1000:1000::/tmp:/sbin/nologin\n"
    )
    (folder / "group").write_text(f"root:x:0:\n{LAMBDA_USER}:x:{LAMBDA_GID}:\nefs-user:x:1000:\n")
    return folder


def tools() -> tuple[str, str] | None:
    """Paths of util-linux ``unshare`` and ``setpriv`` (both needed for the PID namespace), or None."""
    unshare, setpriv = (
        shutil.which("unshare", path="/usr/bin:/bin"),
        shutil.which("setpriv", path="/usr/bin:/bin"),
    )
    return (unshare, setpriv) if unshare and setpriv else None


def command_prefix(identity: Identity, unshare: str, setpriv: str) -> list[str]:
    """What runs the runtime in its own PID namespace as ``identity`` (inside the new root)."""
    groups = ",".join(str(g) for g in identity.groups)
    return [
        unshare,
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        setpriv,
        f"--reuid={identity.uid}",
        f"--regid={identity.gid}",
        f"--groups={groups}" if groups else "--clear-groups",
        "--no-new-privs",
        "--",
    ]
