"""EFS: CloudFormation attributes and references, and access point ids as AWS returns them.

Gaps of stock moto 5.2.5 filled here:

- ``Fn::GetAtt`` on ``AWS::EFS::FileSystem`` (Arn, FileSystemId), ``AWS::EFS::AccessPoint`` (Arn,
  AccessPointId) and ``AWS::EFS::MountTarget`` (Id, IpAddress) raises AttributeError, which the
  server turns into HTTP 500; one such GetAtt in a template's Outputs hides every output of the stack.
- ``Ref`` on an ``AWS::EFS::AccessPoint`` returns the Python repr of moto's object instead of the
  access point id (the model has no ``physical_resource_id``).
- Numbers in an access point's ``PosixUser`` and ``RootDirectory.CreationInfo`` that a template gives
  as strings (as CloudFormation allows) are stored and returned as strings; the EFS API returns numbers.
- ``CreateAccessPoint`` (and ``AWS::EFS::AccessPoint``) accepts any ``RootDirectory.Path``, ``..`` included
  (``/../../..`` mounted the host's ``/`` into a function), and an unknown ``FileSystemId``. EFS refuses a
  path that does not match the pattern of its API reference (:data:`ROOT_PATH_PATTERN`), length 1 to 100
  (https://docs.aws.amazon.com/efs/latest/ug/API_RootDirectory.html: up to four components, none starting
  with a dot), with ``ValidationException`` "1 validation error detected: Value
  '...' at 'rootDirectory.path' failed to satisfy constraint: Member must satisfy regular expression
  pattern: ..." (as quoted in https://github.com/kubernetes-sigs/aws-efs-csi-driver/issues/1073), a
  ``CreationInfo.Permissions`` that is not 3 or 4 octal digits likewise
  (https://docs.aws.amazon.com/efs/latest/ug/API_CreationInfo.html), and an unknown file system with
  ``FileSystemNotFound`` (404). :func:`root_path_problems` is also what the Lambda engine checks again
  before it mounts an access point.
- ``DescribeFileSystems`` pages at 10 file systems where EFS pages at 100.
- ``AWS::EFS::FileSystem``'s ``FileSystemPolicy`` is dropped, so ``DescribeFileSystemPolicy`` answers
  PolicyNotFound and the file system looks as open as one without a policy (EFS then grants full access
  to any client of a mount target:
  https://docs.aws.amazon.com/efs/latest/ug/iam-access-control-nfs-efs.html). Here it is stored as the
  JSON document the EFS API returns, on create and on update.

:func:`client_access` evaluates, as EFS does for an NFS client with an IAM identity, whether a role may
mount a file system through an access point and whether it may write: with no file-system policy, full
access; with one, an explicit Deny in either policy wins, then an Allow in the role's policies or in the
file-system policy grants (https://docs.aws.amazon.com/efs/latest/ug/iam-access-control-nfs-efs.html).
The Lambda engine can use it to mount a function's access point read-only when its role lacks
``elasticfilesystem:ClientWrite``.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re

from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.core.exceptions import JsonRESTError
from moto.efs import models
from moto.efs.exceptions import FileSystemNotFound

_ATTRIBUTES = {
    models.FileSystem: {"Arn": "file_system_arn", "FileSystemId": "file_system_id"},
    models.AccessPoint: {"Arn": "access_point_arn", "AccessPointId": "access_point_id"},
    models.MountTarget: {"Id": "mount_target_id", "IpAddress": "ip_address"},
}
_NUMERIC_KEYS = ("Uid", "Gid", "OwnerUid", "OwnerGid")
MOUNT, WRITE = "elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"
ROOT_PATH_PATTERN = r"^(\/|(\/(?!\.)+[^$#<>;`|&?{}^*/\n]+){1,4})$"
PERMISSIONS_PATTERN = r"^[0-7]{3,4}$"
log = logging.getLogger(__name__)


class ValidationException(JsonRESTError):
    code = 400

    def __init__(self, problems: list[str]):
        count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected"
        super().__init__("ValidationException", f"{count}: {'; '.join(problems)}")


def root_path_problems(path: object, where: str = "rootDirectory.path") -> list[str]:
    """What EFS's API reference says is wrong with an access point's ``RootDirectory.Path`` ([]: nothing)."""
    text = path if isinstance(path, str) else str(path)
    shown = f"Value '{text[:200]}' at '{where}' failed to satisfy constraint: Member must"
    problems = []
    if not 1 <= len(text) <= 100:
        problems.append(
            f"{shown} have length {'less than or equal to 100' if text else 'greater than or equal to 1'}"
        )
    if not isinstance(path, str) or "\x00" in text or not re.match(ROOT_PATH_PATTERN, text):
        problems.append(f"{shown} satisfy regular expression pattern: {ROOT_PATH_PATTERN}")
    return problems


def _check_access_point(backend, file_system_id: str, root_directory: dict | None) -> None:
    root_directory = root_directory or {}
    if not isinstance(root_directory, dict):
        raise ValidationException(
            ["Value at 'rootDirectory' failed to satisfy constraint: Member must be a structure"]
        )
    problems = root_path_problems(root_directory["Path"]) if "Path" in root_directory else []
    permissions = (root_directory.get("CreationInfo") or {}).get("Permissions")
    if permissions is not None and not re.match(PERMISSIONS_PATTERN, str(permissions)):
        problems.append(
            f"Value '{str(permissions)[:20]}' at 'rootDirectory.creationInfo.permissions' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: {PERMISSIONS_PATTERN}"
        )
    if problems:
        raise ValidationException(problems)
    if file_system_id not in backend.file_systems_by_id:
        raise FileSystemNotFound(file_system_id)


def _wrap_create_access_point(original):
    def create_access_point(self, client_token, tags, file_system_id, posix_user, root_directory):
        _check_access_point(self, file_system_id, root_directory)
        return original(self, client_token, tags, file_system_id, posix_user, root_directory)

    return create_access_point


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


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _conditions_hold(condition: dict, context: dict[str, str]) -> bool:
    """The condition operators EFS client policies use; an operator we do not know never holds."""
    for operator, tests in (condition or {}).items():
        for key, expected in tests.items():
            actual = context.get(key)
            wanted = [str(v) for v in _listed(expected)]
            if operator == "StringEquals":
                held = actual in wanted
            elif operator == "StringNotEquals":
                held = actual not in wanted
            elif operator == "StringLike":
                held = actual is not None and any(fnmatch.fnmatchcase(actual, w) for w in wanted)
            elif operator == "Null":
                held = (actual is None) == (wanted[0].lower() == "true")
            elif operator == "Bool":
                held = actual is not None and actual.lower() == wanted[0].lower()
            else:
                log.warning(
                    "EFS policy condition %s is not evaluated locally: the statement does not apply", operator
                )
                return False
            if not held:
                return False
    return True


def _applies(statement: dict, action: str, resource: str, context: dict[str, str]) -> bool:
    actions = _listed(statement.get("Action", []))
    resources = _listed(statement.get("Resource", "*"))
    return (
        any(fnmatch.fnmatchcase(action, a) for a in actions)
        and any(fnmatch.fnmatchcase(resource, r) for r in resources)
        and _conditions_hold(statement.get("Condition"), context)
    )


def _principal_matches(statement: dict, role_arn: str, account_id: str, effect: str) -> bool:
    principal = statement.get("Principal", "*")
    names = (
        ["*"]
        if principal == "*"
        else _listed(principal.get("AWS", []))
        if isinstance(principal, dict)
        else []
    )
    if "*" in names or role_arn in names:
        return True
    # The account root in a resource policy delegates to the account's identity policies: it grants no
    # Allow by itself, but a Deny to it applies to every principal of the account.
    return effect == "Deny" and any(n in (account_id, f"arn:aws:iam::{account_id}:root") for n in names)


def _role_statements(account_id: str, role_arn: str) -> list[dict]:
    from moto.iam.models import iam_backends

    try:
        role = iam_backends[account_id]["global"].get_role_by_arn(role_arn)
    except Exception:  # noqa: BLE001 - an unknown role has no permissions
        return []
    documents = list(role.policies.values()) + [
        p.default_version.document
        for p in role.managed_policies.values()
        if getattr(p, "default_version", None)
    ]
    statements = []
    for document in documents:
        parsed = json.loads(document) if isinstance(document, str) else document
        statements += _listed(parsed.get("Statement", []))
    return statements


def client_access(account_id: str, region: str, access_point_arn: str, role_arn: str) -> dict[str, bool]:
    """``{"mount": bool, "write": bool}`` for ``role_arn`` mounting through ``access_point_arn``."""
    backend = models.efs_backends[account_id][region]
    access_point = backend.access_points.get(access_point_arn.rsplit("/", 1)[-1])
    if access_point is None:
        return {"mount": False, "write": False}
    fs = backend.file_systems_by_id.get(access_point.file_system_id)
    if fs is None:  # deleted since: nothing to mount
        return {"mount": False, "write": False}
    if not fs.file_system_policy:
        return {"mount": True, "write": True}  # EFS's default policy: full access for any client
    resource_policy = _listed(json.loads(fs.file_system_policy).get("Statement", []))
    identity = _role_statements(account_id, role_arn)
    context = {
        "elasticfilesystem:AccessPointArn": access_point_arn,
        "elasticfilesystem:AccessedViaMountTarget": "true",
        "aws:SecureTransport": "true",
    }

    def allowed(action: str) -> bool:
        resource = fs.file_system_arn
        denied = any(
            s.get("Effect") == "Deny" and _applies(s, action, resource, context) for s in identity
        ) or any(
            s.get("Effect") == "Deny"
            and _principal_matches(s, role_arn, account_id, "Deny")
            and _applies(s, action, resource, context)
            for s in resource_policy
        )
        granted = any(
            s.get("Effect") == "Allow" and _applies(s, action, resource, context) for s in identity
        ) or any(
            s.get("Effect") == "Allow"
            and _principal_matches(s, role_arn, account_id, "Allow")
            and _applies(s, action, resource, context)
            for s in resource_policy
        )
        return granted and not denied

    mount = allowed(MOUNT)
    return {"mount": mount, "write": mount and allowed(WRITE)}


def _describe_file_systems(self):
    """moto's EFSResponse.describe_file_systems with EFS's page size: MaxItems "is automatically set to 100"
    (https://docs.aws.amazon.com/efs/latest/ug/API_DescribeFileSystems.html); moto pages at 10, so a caller
    that reads one page missed file systems past the tenth."""
    next_marker, file_systems = self.efs_backend.describe_file_systems(
        marker=self._get_param("Marker"),
        max_items=self._get_int_param("MaxItems", 100),
        creation_token=self._get_param("CreationToken"),
        file_system_id=self._get_param("FileSystemId"),
    )
    answer: dict = {"FileSystems": [fs.info_json() for fs in file_systems]}
    if self._get_param("Marker"):
        answer["Marker"] = self._get_param("Marker")
    if next_marker:
        answer["NextMarker"] = next_marker
    return json.dumps(answer), {"Content-Type": "application/json"}


def apply() -> None:
    from moto.efs.responses import EFSResponse

    EFSResponse.describe_file_systems = _describe_file_systems
    models.FileSystem.create_from_cloudformation_json = _wrap_create_file_system(
        models.FileSystem.create_from_cloudformation_json
    )
    models.FileSystem.update_from_cloudformation_json = classmethod(_update_file_system)
    for model, names in _ATTRIBUTES.items():
        model.has_cfn_attr, model.get_cfn_attribute = _attribute_methods(names)
    models.AccessPoint.physical_resource_id = property(lambda self: self.access_point_id)
    models.AccessPoint.__init__ = _wrap_access_point_init(models.AccessPoint.__init__)
    models.EFSBackend.create_access_point = _wrap_create_access_point(models.EFSBackend.create_access_point)
