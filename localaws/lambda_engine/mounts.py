"""EFS for local functions: an access point is a folder ``<state>/efs/<fs-id>/<root dir>``.

A function's ``FileSystemConfigs`` entry ``{"Arn": access point ARN, "LocalMountPath": "/mnt/ml"}``
maps ``/mnt/ml`` to the access point's folder, shared by every function that mounts the access point.
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

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from moto.efs.models import efs_backends

from localaws.lambda_engine.errors import LambdaServiceError
from localaws.patches.efs import client_access

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EfsMount:
    path: str  # LocalMountPath
    folder: Path  # the access point's folder on this machine
    posix_user: dict = field(default_factory=dict)
    read_only: bool = False


def local_mounts(
    file_systems: list[dict[str, str]], *, state_dir: Path, account_id: str, region: str, role_arn: str = ""
) -> list[EfsMount]:
    """The function's FileSystemConfigs as folders (created as EFS creates an access point's root)."""
    backend = efs_backends[account_id][region]
    mounts = []
    for config in file_systems:
        arn = config.get("Arn", "")
        access_point_id = arn.rsplit("/", 1)[-1]
        access_point = backend.access_points.get(access_point_id)
        if access_point is None:
            raise LambdaServiceError(
                502,
                "EFSMountFailureException",
                f"The function could not mount {arn}: no such access point; create it (01_setup_efs) first.",
            )
        access = (
            client_access(account_id, region, arn, role_arn) if role_arn else {"mount": True, "write": True}
        )
        if not access["mount"]:
            raise LambdaServiceError(
                502,
                "EFSMountFailureException",
                f"The function could not mount {arn}: its file system policy does not allow "
                f"elasticfilesystem:ClientMount for the role {role_arn}.",
            )
        if not access["write"]:
            log.info("%s mounts %s read-only: its file system policy denies ClientWrite", role_arn, arn)
        root_directory = access_point.root_directory or {}
        root = (root_directory.get("Path") or "/").lstrip("/")
        folder = Path(state_dir) / "efs" / access_point.file_system_id / root
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            creation = root_directory.get("CreationInfo") or {}
            with contextlib.suppress(OSError, ValueError, KeyError):  # not root: the folder stays ours
                os.chown(folder, int(creation["OwnerUid"]), int(creation["OwnerGid"]))
                os.chmod(folder, int(str(creation["Permissions"]), 8))
        path = config["LocalMountPath"].rstrip("/")
        mounts.append(
            EfsMount(path, folder, dict(access_point.posix_user or {}), read_only=not access["write"])
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
