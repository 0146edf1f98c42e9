"""EFS for local functions: an access point is a folder ``<state>/efs/<fs-id>/<root dir>``.

A function's ``FileSystemConfigs`` entry ``{"Arn": access point ARN, "LocalMountPath": "/mnt/ml"}``
maps ``/mnt/ml`` to the access point's folder (created on first use and shared by every function
that mounts the access point). Nothing is mounted for real: environment variables whose value is the
mount path or lies under it are rewritten to the local folder, so handlers that read their paths from
the environment (as the workshop's do) run unchanged. Honest gap: EFS here is local disk, without
NFS latency or throughput limits.
"""

from __future__ import annotations

from pathlib import Path

from moto.efs.models import efs_backends

from localaws.lambda_engine.errors import LambdaServiceError


def local_mounts(
    file_systems: list[dict[str, str]], *, state_dir: Path, account_id: str, region: str
) -> dict[str, Path]:
    """``{LocalMountPath: local folder}`` for a function's FileSystemConfigs; folders are created."""
    backend = efs_backends[account_id][region]
    mounts: dict[str, Path] = {}
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
        root = ((access_point.root_directory or {}).get("Path") or "/").lstrip("/")
        folder = Path(state_dir) / "efs" / access_point.file_system_id / root
        folder.mkdir(parents=True, exist_ok=True)
        mounts[config["LocalMountPath"].rstrip("/")] = folder
    return mounts


def rewrite_paths(variables: dict[str, str], mounts: dict[str, Path]) -> dict[str, str]:
    """Variables whose value is a mount path or under one, pointed at the local folder instead."""
    rewritten = {}
    for name, value in variables.items():
        for mount, folder in mounts.items():
            if value == mount or value.startswith(mount + "/"):
                value = str(folder) + value[len(mount) :]
                break
        rewritten[name] = value
    return rewritten
