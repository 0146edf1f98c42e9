"""localaws.lambda_engine.mounts: the rules of the EFS and Lambda APIs checked again when a mount is
prepared, for access points and functions that reached the engine some other way (an older state, a
moto path that skipped the API's checks)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from moto.efs import models

from localaws.lambda_engine.errors import LambdaServiceError
from localaws.lambda_engine.mounts import local_mounts

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture
def file_system():
    with mock_aws():
        efs = boto3.client("efs", region_name=REGION)
        yield efs.create_file_system(CreationToken="t")["FileSystemId"]


def _planted(fs_id: str, path: str) -> str:
    """An access point put straight into moto's backend, past CreateAccessPoint's checks."""
    backend = models.efs_backends[ACCOUNT][REGION]
    point = models.AccessPoint(ACCOUNT, REGION, "token", fs_id, None, {}, {"Path": path}, context=backend)
    backend.access_points[point.access_point_id] = point
    return point.access_point_arn


def _mount(tmp_path, arn: str, mount_path: str = "/mnt/ml"):
    configs = [{"Arn": arn, "LocalMountPath": mount_path}]
    return local_mounts(configs, state_dir=tmp_path, account_id=ACCOUNT, region=REGION)


@pytest.mark.parametrize("path", ["/../../../../..", "/a/../../..", "/.x", "/a/b/c/d/e"])
def test_a_root_path_efs_refuses_is_never_mounted(file_system, tmp_path, path):
    with pytest.raises(LambdaServiceError) as caught:
        _mount(tmp_path, _planted(file_system, path))
    assert (caught.value.status, caught.value.error_type) == (403, "EFSMountFailureException")
    assert not (tmp_path / "efs").exists() or not any((tmp_path / "efs").rglob("*"))


@pytest.mark.parametrize("mount_path", ["/mnt/..", "/mnt/.", "/mnt/../../etc", "/etc", "/mnt"])
def test_a_local_mount_path_outside_one_folder_of_mnt_is_never_mounted(file_system, tmp_path, mount_path):
    with pytest.raises(LambdaServiceError) as caught:
        _mount(tmp_path, _planted(file_system, "/ml"), mount_path)
    assert caught.value.error_type == "EFSMountFailureException"


def test_a_valid_access_point_mounts_its_folder_inside_the_file_system(file_system, tmp_path):
    (mount,) = _mount(tmp_path, _planted(file_system, "/a/ml"))
    assert mount.path == "/mnt/ml"
    assert (mount.file_system, mount.relative) == (tmp_path / "efs" / file_system, "a/ml")
    assert mount.folder == tmp_path / "efs" / file_system / "a" / "ml" and mount.folder.is_dir()
