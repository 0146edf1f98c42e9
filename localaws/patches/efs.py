"""EFS: CloudFormation attributes and references, and access point ids as AWS returns them.

Gaps of stock moto 5.2.5 filled here:

- ``Fn::GetAtt`` on ``AWS::EFS::FileSystem`` (Arn, FileSystemId), ``AWS::EFS::AccessPoint`` (Arn,
  AccessPointId) and ``AWS::EFS::MountTarget`` (Id, IpAddress) raises AttributeError, which the
  server turns into HTTP 500; one such GetAtt in a template's Outputs hides every output of the stack.
- ``Ref`` on an ``AWS::EFS::AccessPoint`` returns the Python repr of moto's object instead of the
  access point id (the model has no ``physical_resource_id``).
- Numbers in an access point's ``PosixUser`` and ``RootDirectory.CreationInfo`` that a template gives
  as strings (as CloudFormation allows) are stored and returned as strings; the EFS API returns numbers.
- ``AWS::EFS::FileSystem``'s ``FileSystemPolicy`` is dropped, so ``DescribeFileSystemPolicy`` answers
  PolicyNotFound and the file system looks as open as one without a policy (EFS then grants full access
  to any client of a mount target:
  https://docs.aws.amazon.com/efs/latest/ug/iam-access-control-nfs-efs.html). Here it is stored as the
  JSON document the EFS API returns, on create and on update.
"""

from __future__ import annotations

import json

from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.efs import models

_ATTRIBUTES = {
    models.FileSystem: {"Arn": "file_system_arn", "FileSystemId": "file_system_id"},
    models.AccessPoint: {"Arn": "access_point_arn", "AccessPointId": "access_point_id"},
    models.MountTarget: {"Id": "mount_target_id", "IpAddress": "ip_address"},
}
_NUMERIC_KEYS = ("Uid", "Gid", "OwnerUid", "OwnerGid")


def _attribute_methods(names: dict[str, str]):
    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in names

    def get_cfn_attribute(self, attribute_name: str):
        if attribute_name not in names:
            raise UnformattedGetAttTemplateException()
        return getattr(self, names[attribute_name])

    return has_cfn_attr, get_cfn_attribute


def _numbers(block: dict | None) -> dict | None:
    if not isinstance(block, dict):
        return block
    fixed = {
        k: int(v) if k in _NUMERIC_KEYS and isinstance(v, str) and v.isdigit() else v
        for k, v in block.items()
    }
    if isinstance(fixed.get("SecondaryGids"), list):
        fixed["SecondaryGids"] = [int(g) for g in fixed["SecondaryGids"]]
    if isinstance(fixed.get("CreationInfo"), dict):
        fixed["CreationInfo"] = _numbers(fixed["CreationInfo"])
    return fixed


def _wrap_access_point_init(original):
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.posix_user = _numbers(self.posix_user)
        self.root_directory = _numbers(self.root_directory)

    return __init__


def _policy_document(properties: dict) -> str | None:
    policy = properties.get("FileSystemPolicy")
    if policy is None:
        return None
    return policy if isinstance(policy, str) else json.dumps(policy)


def _wrap_create_file_system(original):
    def create_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    ):
        fs = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        fs.file_system_policy = _policy_document(cloudformation_json.get("Properties") or {})
        return fs

    return classmethod(create_from_cloudformation_json)


def _update_file_system(
    cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
):
    """In-place updates (the policy, tags aside): EFS changes a file system's policy without replacing it."""
    original_resource.file_system_policy = _policy_document(cloudformation_json.get("Properties") or {})
    return original_resource


def apply() -> None:
    models.FileSystem.create_from_cloudformation_json = _wrap_create_file_system(
        models.FileSystem.create_from_cloudformation_json
    )
    models.FileSystem.update_from_cloudformation_json = classmethod(_update_file_system)
    for model, names in _ATTRIBUTES.items():
        model.has_cfn_attr, model.get_cfn_attribute = _attribute_methods(names)
    models.AccessPoint.physical_resource_id = property(lambda self: self.access_point_id)
    models.AccessPoint.__init__ = _wrap_access_point_init(models.AccessPoint.__init__)
