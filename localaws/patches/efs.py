"""EFS: CloudFormation attributes and references, and access point ids as AWS returns them.

Gaps of stock moto 5.2.5 filled here:

- ``Fn::GetAtt`` on ``AWS::EFS::FileSystem`` (Arn, FileSystemId), ``AWS::EFS::AccessPoint`` (Arn,
  AccessPointId) and ``AWS::EFS::MountTarget`` (Id, IpAddress) raises AttributeError, which the
  server turns into HTTP 500; one such GetAtt in a template's Outputs hides every output of the stack.
- ``Ref`` on an ``AWS::EFS::AccessPoint`` returns the Python repr of moto's object instead of the
  access point id (the model has no ``physical_resource_id``).
- Numbers in an access point's ``PosixUser`` and ``RootDirectory.CreationInfo`` that a template gives
  as strings (as CloudFormation allows) are stored and returned as strings; the EFS API returns numbers.
"""

from __future__ import annotations

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


def apply() -> None:
    for model, names in _ATTRIBUTES.items():
        model.has_cfn_attr, model.get_cfn_attribute = _attribute_methods(names)
    models.AccessPoint.physical_resource_id = property(lambda self: self.access_point_id)
    models.AccessPoint.__init__ = _wrap_access_point_init(models.AccessPoint.__init__)
