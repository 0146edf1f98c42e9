"""EFS for local functions: an access point is a folder ``<state>/efs/<fs-id>/<root dir>``.

A function's ``FileSystemConfigs`` entry ``{"Arn": access point ARN, "LocalMountPath": "/mnt/ml"}``
maps ``/mnt/ml`` to the access point's folder, shared by every function that mounts the access point.
That folder is found (and created) inside the file system's folder one component at a time, never
following a link (:mod:`.sandbox.beneath`): a function that writes ``escape -> /`` on its file system and
then names ``/escape`` as an access point's path gets ``EFSMountFailureException``, not the host's ``/``;
in the sandbox the launcher walks the same way again and mounts the descriptor it opened. The rules of
the EFS API (the root path's pattern, a file system that exists) and of Lambda (``LocalMountPath`` one
folder under ``/mnt``) are checked again here, whatever created the access point or the function.
As EFS does, the root directory is created on first use with the access point's ``CreationInfo``
owner and permissions (https://docs.aws.amazon.com/efs/latest/ug/efs-access-points.html#creating-access-points),
and the function acts as the access point's ``PosixUser``. With a file-system policy, EFS authorises each
client by its role (``elasticfilesystem:ClientMount`` / ``ClientWrite``,
https://docs.aws.amazon.com/efs/latest/ug/iam-access-control-nfs-efs.html): a role that may not mount
gets ``EFSMountFailureException``, one that may not write gets a read-only mount. In the sandbox the
folder is mounted at the ``LocalMountPath`` itself; on the fallback path nothing is mounted and environment variables whose value
is the mount path, or lies under it, are rewritten to the folder. Honest gap: EFS here is local disk,
without NFS latency or throughput limits.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from moto.efs.models import efs_backends

from localaws.lambda_engine.errors import LambdaServiceError
from localaws.lambda_engine.sandbox import beneath
from localaws.patches.efs import client_access, root_path_problems

log = logging.getLogger(__name__)

# Lambda's FileSystemConfig.LocalMountPath (https://docs.aws.amazon.com/lambda/latest/api/API_FileSystemConfig.html)
LOCAL_MOUNT_PATH = re.compile(r"^/mnt/[a-zA-Z0-9-_.]+$")


@dataclass(frozen=True)
class EfsMount:
    path: str  # LocalMountPath
    folder: Path  # the access point's folder on this machine (file_system / relative)
    posix_user: dict = field(default_factory=dict)
    read_only: bool = False
    file_system: Path | None = None  # the file system's folder, <state>/efs/<fs-id>
    relative: str = ""  # the access point's folder inside it, checked component by component


def _mount_failure(arn: str, why: str) -> LambdaServiceError:
    log.warning("cannot mount %s: %s", arn, why)
    return LambdaServiceError(
        403,
        "EFSMountFailureException",
        f"The function couldn't mount the Amazon EFS file system with access point {arn}.",
    )


def local_mount_path_ok(path: str) -> bool:
    """Whether ``path`` is a LocalMountPath Lambda accepts and one folder under /mnt (not ``.`` or ``..``)."""
    return bool(LOCAL_MOUNT_PATH.match(path)) and path.rsplit("/", 1)[-1] not in (".", "..")


def _prepare_folder(root: Path, names: list[str], creation: dict) -> None:
    """Create the access point's folder as EFS creates it, never following a link (:mod:`.sandbox.beneath`)."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        owner = (int(creation["OwnerUid"]), int(creation["OwnerGid"]))
        mode = int(str(creation["Permissions"]), 8)
    except (KeyError, TypeError, ValueError):
        owner, mode = None, None
    beneath.make_dirs(root, names, owner=owner, mode=mode)


def local_mounts(
    file_systems: list[dict[str, str]], *, state_dir: Path, account_id: str, region: str, role_arn: str = ""
) -> list[EfsMount]:
    """The function's FileSystemConfigs as folders (created as EFS creates an access point's root).

    EFSMountFailureException (403) for what EFS or Lambda would not mount: an unknown access point or file
    system, a root path EFS would have refused, a LocalMountPath Lambda would have refused, a role the
    file-system policy denies, or a folder that cannot be reached without following a link."""
    backend = efs_backends[account_id][region]
    mounts = []
    for config in file_systems:
        arn = config.get("Arn", "")
        access_point = backend.access_points.get(arn.rsplit("/", 1)[-1])
        if access_point is None:
            raise _mount_failure(arn, "no such access point")
        if access_point.file_system_id not in backend.file_systems_by_id:
            raise _mount_failure(arn, f"its file system {access_point.file_system_id} does not exist")
        path = str(config.get("LocalMountPath", "")).rstrip("/")
        if not local_mount_path_ok(path):
            raise _mount_failure(arn, f"LocalMountPath {path!r} is not one folder under /mnt")
        access = (
            client_access(account_id, region, arn, role_arn) if role_arn else {"mount": True, "write": True}
        )
        if not access["mount"]:
            raise _mount_failure(
                arn, f"its file system policy does not allow elasticfilesystem:ClientMount for {role_arn}"
            )
        if not access["write"]:
            log.info("%s mounts %s read-only: its file system policy denies ClientWrite", role_arn, arn)
        root_directory = access_point.root_directory or {}
        root_path = root_directory.get("Path") or "/"
        if root_path_problems(root_path):
            raise _mount_failure(arn, f"its root directory {root_path[:120]!r} is not a path EFS accepts")
        file_system = Path(state_dir) / "efs" / access_point.file_system_id
        names = beneath.parts(root_path)
        try:
            _prepare_folder(file_system, names, root_directory.get("CreationInfo") or {})
        except OSError as exc:  # a link or a file where a folder should be: never followed
            why = f"{root_path} cannot be reached inside the file system ({exc.strerror})"
            raise _mount_failure(arn, why) from None
        mounts.append(
            EfsMount(
                path,
                file_system.joinpath(*names),
                dict(access_point.posix_user or {}),
                read_only=not access["write"],
                file_system=file_system,
                relative="/".join(names),
            )
        )
    return mounts


def rewrite_paths(variables: dict[str, str], mounts: list[EfsMount]) -> dict[str, str]:
    """Variables whose value is a mount path or under one, pointed at the local folder instead."""
    rewritten = {}
    for name, value in variables.items():
        for mount in mounts:
            if value == mount.path or value.startswith(mount.path + "/"):
                value = str(mount.folder) + value[len(mount.path) :]
                break
        rewritten[name] = value
    return rewritten
