"""Lambda in CloudFormation: functions as the template says, versions, aliases and Provisioned Concurrency.

Gaps of stock moto 5.2.5 filled here:

- A stack update of a function with inline code (``Code.ZipFile``) fails ("Incorrect padding"):
  moto hands the plain text to the code update as if it were base64. Here it is zipped as on create.
- ``AWS::Lambda::Function`` passes only a few properties to the function: ``FileSystemConfigs``,
  ``EphemeralStorage``, ``Architectures``, ``Tags`` (and ``Layers``, ``TracingConfig``, ``KmsKeyArn``)
  are dropped, so a function meant to mount EFS is created without its mount.
- Every function with a ``VpcConfig`` (API or template) reports ``VpcId: vpc-123abc``; AWS reports
  the VPC of its subnets.
- ``Ref`` on an ``AWS::Lambda::Version`` returns the logical id instead of the version ARN, and
  ``Fn::GetAtt Version.Version`` fails with HTTP 500 (the model has no attributes); the version's
  ``Description`` is dropped. Deleting the stack keeps the version. An update that changes the
  version (new code: its Description names the code key) leaves ``None`` in its place, so every
  later GetAtt on it fails; and what refers to it (the aliases) is not updated, since moto only
  updates resources whose own template or parameters changed. Here the update publishes a new version
  and then updates the resources that refer to it, so the aliases move to the new version.
- ``AWS::Lambda::Version``'s ``ProvisionedConcurrencyConfig`` is ignored. Here it is configured on
  the published version like the alias form (waiting for READY; FAILED fails the resource), changed
  or removed in place by an update that changes only it (AWS: "No interruption",
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-lambda-version.html),
  and removed with the version.
- ``AWS::Lambda::Permission`` on an alias (``FunctionName`` = the alias ARN, as an HTTP API's
  permission is) puts the template's ``FunctionName`` into the statement and the unqualified function
  ARN as its ``Resource``; AWS's statement has the alias ARN as ``Resource``. Deleting the stack keeps
  the statement.
- ``AWS::Lambda::Alias`` is not supported at all: it is skipped and the stack still says
  CREATE_COMPLETE, so no alias exists and its ``ProvisionedConcurrencyConfig`` is never applied.
  Here the alias is created, updated and deleted, and Provisioned Concurrency is configured on the
  local Lambda engine. As on AWS, the alias is complete only once its environments are READY (or
  after ``PROVISIONING_WAIT_S``, since moto creates stacks inside the CreateStack call); a FAILED
  configuration fails the resource with the engine's reason, and the stack rolls back.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

from moto.awslambda import models
from moto.awslambda.exceptions import UnknownFunctionException
from moto.awslambda.utils import get_backend
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.core.common_models import CloudFormationModel
from moto.ec2.exceptions import InvalidSubnetIdError
from moto.ec2.models import ec2_backends

log = logging.getLogger(__name__)

# Seconds an alias with Provisioned Concurrency waits for READY before the stack goes on without it
# (boto3 gives up on a call after 60 s, and moto creates the whole stack inside CreateStack).
PROVISIONING_WAIT_S = 45.0
_POLL_S = 0.1

# Template property -> create_function parameter, for what stock moto drops.
_FUNCTION_PROPERTIES = {
    "Description": "Description",
    "MemorySize": "MemorySize",
    "Timeout": "Timeout",
    "Publish": "Publish",
    "VpcConfig": "VpcConfig",
    "Environment": "Environment",
    "ReservedConcurrentExecutions": "ReservedConcurrentExecutions",
    "FileSystemConfigs": "FileSystemConfigs",
    "EphemeralStorage": "EphemeralStorage",
    "Architectures": "Architectures",
    "Layers": "Layers",
    "TracingConfig": "TracingConfig",
    "KmsKeyArn": "KMSKeyArn",
    "PackageType": "PackageType",
    "ImageConfig": "ImageConfig",
    "LoggingConfig": "LoggingConfig",
    "DeadLetterConfig": "DeadLetterConfig",
}


def _tags(tags: list[dict[str, str]] | dict[str, str] | None) -> dict[str, str]:
    """CloudFormation's ``[{Key, Value}]`` as the Lambda API's ``{key: value}``."""
    if isinstance(tags, dict):
        return dict(tags)
    return {tag["Key"]: tag["Value"] for tag in tags or []}


def _create_function(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    properties = cloudformation_json["Properties"]
    spec: dict[str, Any] = {
        "Code": dict(properties["Code"]),
        "FunctionName": resource_name,
        "Handler": properties.get("Handler"),
        "Role": properties["Role"],
        "Runtime": properties.get("Runtime"),
    }
    spec.update({api: properties[cfn] for cfn, api in _FUNCTION_PROPERTIES.items() if cfn in properties})
    if "Tags" in properties:
        spec["Tags"] = _tags(properties["Tags"])
    if "ZipFile" in spec["Code"]:  # inline code: plain text that CloudFormation zips as index.py
        spec["Code"]["ZipFile"] = base64.b64encode(
            cls._create_zipfile_from_plaintext_code(spec["Code"]["ZipFile"])
        )
    return get_backend(account_id, region_name).create_function(spec)


def _wrap_update_function(original):
    def update_from_cloudformation_json(
        cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
    ):
        from localaws.patches.lambda_validation import check_cloudformation_update

        check_cloudformation_update(cloudformation_json["Properties"])  # as the API validates
        code = cloudformation_json["Properties"].get("Code", {})
        if "ZipFile" in code:  # inline code is plain text, zipped as index.py (as on create)
            zipped = base64.b64encode(cls._create_zipfile_from_plaintext_code(code["ZipFile"]))
            properties = {**cloudformation_json["Properties"], "Code": {**code, "ZipFile": zipped}}
            cloudformation_json = {**cloudformation_json, "Properties": properties}
        fn = original.__func__(
            cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
        )
        properties = cloudformation_json["Properties"]
        if "Architectures" in properties:
            fn.architectures = properties["Architectures"]
        fn.ephemeral_storage = properties.get("EphemeralStorage", {}).get("Size", 512)
        fn.tags = _tags(properties.get("Tags"))
        return fn

    return update_from_cloudformation_json


def _vpc_config(self) -> dict[str, Any] | None:
    """The function's VpcConfig with the VpcId of its subnets, as AWS reports it."""
    if not self._vpc_config:
        return None
    config = dict(self._vpc_config)
    subnet_ids = config.get("SubnetIds") or []
    try:
        config["VpcId"] = ec2_backends[self.account_id][self.region].get_subnet(subnet_ids[0]).vpc_id
    except (IndexError, InvalidSubnetIdError):
        config["VpcId"] = ""
    return config


# --- AWS::Lambda::Version ----------------------------------------------------------------------------


def _create_version(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    properties = cloudformation_json["Properties"]
    backend = get_backend(account_id, region_name)
    published = backend.publish_version(properties["FunctionName"], properties.get("Description", ""))
    version = cls({"Version": published.version})
    version.function_name = published.function_name
    version.arn = published.function_arn
    version.account_id, version.region = account_id, region_name
    version.cfn_properties, version.provisioned = dict(properties), 0
    try:
        _configure_version_provisioned(version, properties)
    except Exception:
        backend.delete_function(version.function_name, str(version.version))
        raise
    return version


def _version_provisioned_count(properties: dict[str, Any]) -> int:
    return int(properties.get("ProvisionedConcurrencyConfig", {}).get("ProvisionedConcurrentExecutions", 0))


def _configure_version_provisioned(version, properties: dict[str, Any]) -> None:
    """Provisioned Concurrency on the version as its ``ProvisionedConcurrencyConfig`` says."""
    count = _version_provisioned_count(properties)
    where = (version.account_id, version.region)
    if count and count != getattr(version, "provisioned", 0):
        _provision(version.function_name, str(version.version), count, *where)
    elif not count and getattr(version, "provisioned", 0):
        _unprovision(version.function_name, str(version.version), *where)
    version.provisioned = count


def _replace_version(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
    """Only ``ProvisionedConcurrencyConfig`` changes in place; every other property is create-only, so
    an update publishes a new version, as AWS does (the old one's Provisioned Concurrency ends)."""
    properties = cloudformation_json["Properties"]
    before = dict(getattr(original_resource, "cfn_properties", {}) or {})
    same = {k: v for k, v in before.items() if k != "ProvisionedConcurrencyConfig"} == {
        k: v for k, v in properties.items() if k != "ProvisionedConcurrencyConfig"
    }
    if before and same:
        _configure_version_provisioned(original_resource, properties)
        original_resource.cfn_properties = dict(properties)
        return original_resource
    if getattr(original_resource, "provisioned", 0):
        _unprovision(original_resource.function_name, str(original_resource.version), account_id, region_name)
        original_resource.provisioned = 0
    return _create_version(cls, new_resource_name, cloudformation_json, account_id, region_name)


def _refers_to(resource_json: Any, logical_ids: set[str]) -> bool:
    if isinstance(resource_json, dict):
        if resource_json.get("Ref") in logical_ids:
            return True
        get_att = resource_json.get("Fn::GetAtt")
        if isinstance(get_att, list) and get_att and get_att[0] in logical_ids:
            return True
        return any(_refers_to(value, logical_ids) for value in resource_json.values())
    if isinstance(resource_json, list):
        return any(_refers_to(item, logical_ids) for item in resource_json)
    return False


def _wrap_build_resource_diff(original):
    """Also update what refers to a replaced version (its ARN and number change), after the version."""

    def build_resource_diff(self, other_template, parameters=None):
        actions = original(self, other_template, parameters)
        new = other_template["Resources"]
        versions = {
            n for n in actions["Modify"] if new[n].get("Type") == models.LambdaVersion.cloudformation_type()
        }
        if versions:
            dependents = [
                n
                for n, resource in new.items()
                if n not in actions["Modify"] and n not in actions["Add"] and _refers_to(resource, versions)
            ]
            actions["Modify"] = sorted(actions["Modify"], key=lambda n: list(new).index(n)) + dependents
        return actions

    return build_resource_diff


def _version_attribute(self, attribute_name: str) -> str:
    if attribute_name == "Version":
        return str(self.version)
    raise UnformattedGetAttTemplateException()


def _delete_version(self, account_id: str, region: str) -> None:
    if getattr(self, "provisioned", 0):
        _unprovision(self.function_name, str(self.version), account_id, region)
        self.provisioned = 0
    try:
        get_backend(account_id, region).delete_function(self.function_name, str(self.version))
    except UnknownFunctionException:
        log.debug("version %s is already gone with its function", self.arn)


# --- AWS::Lambda::Permission ------------------------------------------------------------------------


def _split_qualifier(name_or_arn: str) -> tuple[str, str | None]:
    """``f``, ``f:q``, or a full or partial ARN with or without ``:q`` -> (``f``, ``q`` or None)."""
    tail = name_or_arn.split(":function:", 1)[1] if ":function:" in name_or_arn else name_or_arn
    name, _, qualifier = tail.partition(":")
    return name, qualifier or None


def _create_permission(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    properties = dict(cloudformation_json["Properties"])
    function_name, qualifier = _split_qualifier(properties.pop("FunctionName"))
    backend = get_backend(account_id, region_name)
    statement = backend.add_permission(function_name, qualifier, json.dumps(properties))
    permission = cls(region=region_name)
    permission.function_name, permission.sid = function_name, statement["Sid"]
    return permission


def _delete_permission(self, account_id: str, region: str) -> None:
    try:
        get_backend(account_id, region).remove_permission(self.function_name, self.sid)
    except UnknownFunctionException:
        log.debug("permission %s is already gone with its function", self.sid)


# --- AWS::Lambda::Alias ------------------------------------------------------------------------------


def _engine():
    try:
        from localaws.lambda_engine import get_engine

        return get_engine()
    except (ImportError, RuntimeError) as exc:
        raise RuntimeError(
            "Provisioned Concurrency needs the local Lambda engine (localaws.lambda_engine), which "
            "this server is not running; see server.log in the local state folder for why."
        ) from exc


def _provision(function_name: str, qualifier: str, count: int, account_id: str, region: str) -> dict:
    """Configure ``count`` provisioned environments and wait for READY, as CloudFormation does."""
    engine = _engine()
    where = {"account_id": account_id, "region": region}
    config = engine.put_provisioned_concurrency(function_name, qualifier, count, **where)
    deadline = time.monotonic() + PROVISIONING_WAIT_S
    while config.get("Status") == "IN_PROGRESS" and time.monotonic() < deadline:
        time.sleep(_POLL_S)
        config = engine.get_provisioned_concurrency(function_name, qualifier, **where)
    if config.get("Status") == "FAILED":
        engine.delete_provisioned_concurrency(function_name, qualifier, **where)
        raise RuntimeError(
            f"Provisioned Concurrency on {function_name}:{qualifier} failed: {config.get('StatusReason')}"
        )
    if config.get("Status") != "READY":
        log.warning(
            "Provisioned Concurrency on %s:%s is still %s after %.0f s; the stack goes on without waiting",
            function_name,
            qualifier,
            config.get("Status"),
            PROVISIONING_WAIT_S,
        )
    return config


def _unprovision(function_name: str, qualifier: str, account_id: str, region: str) -> None:
    try:
        _engine().delete_provisioned_concurrency(
            function_name, qualifier, account_id=account_id, region=region
        )
    except Exception as exc:  # noqa: BLE001 - the function may be gone already; deletion goes on
        log.info("no Provisioned Concurrency removed from %s:%s (%s)", function_name, qualifier, exc)


class LambdaAliasResource(CloudFormationModel):
    """``AWS::Lambda::Alias``: Ref is the alias ARN; GetAtt ``AliasArn``."""

    def __init__(self, alias: models.LambdaAlias, function_name: str, account_id: str, region: str):
        self.alias = alias
        self.function_name = function_name
        self.account_id = account_id
        self.region = region
        self.provisioned = 0

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::Alias"

    @property
    def physical_resource_id(self) -> str:
        return self.alias.arn

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "AliasArn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "AliasArn":
            return self.alias.arn
        raise UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> LambdaAliasResource:
        properties = cloudformation_json["Properties"]
        backend = get_backend(account_id, region_name)
        function = backend.get_function(properties["FunctionName"])
        alias = backend.create_alias(
            name=properties.get("Name", resource_name),
            function_name=function.function_name,
            function_version=str(properties["FunctionVersion"]),
            description=properties.get("Description", ""),
            routing_config=properties.get("RoutingConfig"),
        )
        resource = cls(alias, function.function_name, account_id, region_name)
        try:
            resource._configure_provisioned(properties)
        except Exception:
            backend.delete_alias(alias.name, function.function_name)
            raise
        return resource

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: LambdaAliasResource,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> LambdaAliasResource:
        properties = cloudformation_json["Properties"]
        backend = get_backend(account_id, region_name)
        function = backend.get_function(properties["FunctionName"])
        name = properties.get("Name", new_resource_name)
        if (name, function.function_name) != (original_resource.alias.name, original_resource.function_name):
            original_resource.delete(account_id, region_name)  # both are create-only: replace
            return cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
        moved = original_resource.alias.function_version != str(properties["FunctionVersion"])
        backend.update_alias(
            name=name,
            function_name=function.function_name,
            function_version=str(properties["FunctionVersion"]),
            description=properties.get("Description", ""),
            routing_config=properties.get("RoutingConfig"),
        )
        original_resource._configure_provisioned(properties, moved=moved)
        return original_resource

    def _configure_provisioned(self, properties: dict[str, Any], moved: bool = False) -> None:
        count = int(
            properties.get("ProvisionedConcurrencyConfig", {}).get("ProvisionedConcurrentExecutions", 0)
        )
        if count and (count != self.provisioned or moved):
            _provision(self.function_name, self.alias.name, count, self.account_id, self.region)
        elif not count and self.provisioned:
            _unprovision(self.function_name, self.alias.name, self.account_id, self.region)
        self.provisioned = count

    def delete(self, account_id: str, region: str) -> None:
        if self.provisioned:
            _unprovision(self.function_name, self.alias.name, account_id, region)
            self.provisioned = 0
        try:
            get_backend(account_id, region).delete_alias(self.alias.name, self.function_name)
        except UnknownFunctionException:
            log.debug("alias %s is already gone with its function", self.alias.arn)


def apply() -> None:
    models.LambdaFunction.create_from_cloudformation_json = classmethod(_create_function)
    models.LambdaFunction.update_from_cloudformation_json = classmethod(
        _wrap_update_function(models.LambdaFunction.update_from_cloudformation_json)
    )
    models.LambdaFunction.vpc_config = property(_vpc_config)
    models.LambdaVersion.create_from_cloudformation_json = classmethod(_create_version)
    models.LambdaVersion.update_from_cloudformation_json = classmethod(_replace_version)
    parsing.ResourceMap.build_resource_diff = _wrap_build_resource_diff(
        parsing.ResourceMap.build_resource_diff
    )
    models.LambdaVersion.physical_resource_id = property(lambda self: self.arn)
    models.LambdaVersion.has_cfn_attr = classmethod(lambda cls, attr: attr == "Version")
    models.LambdaVersion.get_cfn_attribute = _version_attribute
    models.LambdaVersion.delete = _delete_version
    models.Permission.create_from_cloudformation_json = classmethod(_create_permission)
    models.Permission.physical_resource_id = property(lambda self: self.sid)
    models.Permission.delete = _delete_permission
