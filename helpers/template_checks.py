"""Static checks for Lambda mistakes in CloudFormation templates that cfn-lint 1.58 lets through.

Each check takes a decoded template and returns findings: one sentence each, naming the resource,
what is wrong and how to fix it. An empty list means the template passes. Values that are
intrinsic functions are checked where they can be decided statically: a literal, or a ``Ref`` to a
parameter (its Default, AllowedValues and MinValue/MaxValue); anything else is left alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Template = dict[str, Any]

MEMORY_MB = (128, 10240)
TIMEOUT_S = (1, 900)
EPHEMERAL_MB = (512, 10240)
MOUNT_PATH = re.compile(r"^/mnt/[A-Za-z0-9._-]+$")


def parse_template(text: str, name: str = "template") -> Template:
    """Decode a YAML or JSON template, short tags (``!Ref``, ``!Sub``, ...) included."""
    from cfnlint.decode import decode_str

    template, problems = decode_str(text)
    if problems or not isinstance(template, dict):
        reason = problems[0].message if problems else "it is not a mapping"
        raise ValueError(f"{name} cannot be decoded ({reason}): fix its syntax, then check it again.")
    return template


def load_template(path: str | Path) -> Template:
    """Read and decode the template at ``path``."""
    path = Path(path)
    return parse_template(path.read_text(), name=str(path))


def _resources(template: Template, resource_type: str) -> Iterator[tuple[str, dict, dict]]:
    """``(logical id, resource, properties)`` of every resource of ``resource_type``."""
    for logical, resource in (template.get("Resources") or {}).items():
        if isinstance(resource, dict) and resource.get("Type") == resource_type:
            properties = resource.get("Properties")
            yield logical, resource, properties if isinstance(properties, dict) else {}


def _parameter(template: Template, value: Any) -> tuple[str, dict] | None:
    """The template parameter that ``value`` is a ``Ref`` to, if it is one."""
    if isinstance(value, dict) and list(value) == ["Ref"]:
        name = value["Ref"]
        param = (template.get("Parameters") or {}).get(name)
        if isinstance(param, dict):
            return name, param
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _range_findings(
    template: Template, where: str, value: Any, bounds: tuple[int, int], unit: str
) -> list[str]:
    """Findings when ``value`` (a literal or a parameter) can fall outside ``bounds``."""
    low, high = bounds
    ref = _parameter(template, value)
    if ref is None:
        number = _number(value)
        if number is None or low <= number <= high:
            return []
        return [f"{where} is {number:g} {unit}, outside {low}-{high}: set it within that range."]
    name, param = ref
    if "AllowedValues" in param:
        candidates = [("an allowed value", v) for v in param["AllowedValues"]]
    elif "MinValue" in param and "MaxValue" in param:
        candidates = [("MinValue", param["MinValue"]), ("MaxValue", param["MaxValue"])]
    else:
        return [
            f"{where} comes from parameter {name}, which has no bounds: "
            f"give it MinValue {low} and MaxValue {high} (or AllowedValues within them)."
        ]
    if "Default" in param:
        candidates.append(("the Default", param["Default"]))
    findings = []
    for label, candidate in candidates:
        number = _number(candidate)
        if number is not None and not low <= number <= high:
            findings.append(
                f"{where} comes from parameter {name}, whose {label} {number:g} {unit} is outside "
                f"{low}-{high}: keep the parameter within that range."
            )
    return findings


def check_efs_functions(template: Template) -> list[str]:
    """A function that mounts EFS needs a VpcConfig with subnets, and must wait for mount targets
    defined in the same template (Lambda fails to create it while they are still being created)."""
    mount_targets = [logical for logical, _, _ in _resources(template, "AWS::EFS::MountTarget")]
    findings = []
    for logical, resource, props in _resources(template, "AWS::Lambda::Function"):
        if not props.get("FileSystemConfigs"):
            continue
        vpc = props.get("VpcConfig")
        if not isinstance(vpc, dict) or not vpc.get("SubnetIds"):
            findings.append(
                f"{logical} mounts EFS (FileSystemConfigs) but has no VpcConfig with SubnetIds: "
                "attach it to subnets that can reach the file system's mount targets."
            )
        depends = resource.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else list(depends)
        missing = [target for target in mount_targets if target not in depends]
        if missing:
            findings.append(
                f"{logical} mounts EFS but does not depend on the mount targets {', '.join(missing)}: "
                "add them to its DependsOn."
            )
    return findings


def _admits_latest(template: Template, version: Any) -> bool:
    if version == "$LATEST":
        return True
    ref = _parameter(template, version)
    if ref is None:
        return False
    _, param = ref
    return param.get("Default") == "$LATEST" or "$LATEST" in (param.get("AllowedValues") or [])


def check_aliases_on_versions(template: Template) -> list[str]:
    """An alias must point at a published version: ``$LATEST`` moves with every update, and AWS
    refuses Provisioned Concurrency on it."""
    findings = []
    for logical, _, props in _resources(template, "AWS::Lambda::Alias"):
        if not _admits_latest(template, props.get("FunctionVersion")):
            continue
        if props.get("ProvisionedConcurrencyConfig"):
            problem = "has Provisioned Concurrency on $LATEST, which AWS rejects"
        else:
            problem = "points at $LATEST, so it changes with every code update"
        findings.append(
            f"{logical} {problem}: set FunctionVersion to !GetAtt <an AWS::Lambda::Version>.Version."
        )
    return findings


def check_mount_paths(template: Template) -> list[str]:
    """Lambda mounts file systems only at ``/mnt/<name>``."""
    findings = []
    for logical, _, props in _resources(template, "AWS::Lambda::Function"):
        for config in props.get("FileSystemConfigs") or []:
            path = config.get("LocalMountPath") if isinstance(config, dict) else None
            if isinstance(path, str) and not MOUNT_PATH.match(path):
                findings.append(
                    f"{logical} mounts a file system at {path!r}: "
                    "Lambda only mounts at /mnt/<name> (letters, digits, '.', '_' or '-')."
                )
    return findings


def check_memory_size(template: Template) -> list[str]:
    """MemorySize is 128 to 10240 MB."""
    return [
        finding
        for logical, _, props in _resources(template, "AWS::Lambda::Function")
        for finding in _range_findings(
            template, f"{logical} MemorySize", props.get("MemorySize"), MEMORY_MB, "MB"
        )
    ]


def check_timeout(template: Template) -> list[str]:
    """Timeout is 1 to 900 seconds."""
    return [
        finding
        for logical, _, props in _resources(template, "AWS::Lambda::Function")
        for finding in _range_findings(template, f"{logical} Timeout", props.get("Timeout"), TIMEOUT_S, "s")
    ]


def check_ephemeral_storage(template: Template) -> list[str]:
    """EphemeralStorage.Size (/tmp) is 512 to 10240 MB."""
    findings = []
    for logical, _, props in _resources(template, "AWS::Lambda::Function"):
        storage = props.get("EphemeralStorage")
        if isinstance(storage, dict):
            where = f"{logical} EphemeralStorage.Size"
            findings += _range_findings(template, where, storage.get("Size"), EPHEMERAL_MB, "MB")
    return findings


def check_file_system_policies(template: Template) -> list[str]:
    """Every EFS file system has a FileSystemPolicy: without one EFS grants full access to any client of
    a mount target and never consults the roles' elasticfilesystem permissions
    (https://docs.aws.amazon.com/efs/latest/ug/iam-access-control-nfs-efs.html)."""
    return [
        f"{logical} has no FileSystemPolicy, so EFS grants every client full access and ignores the roles' "
        "ClientMount/ClientWrite: add one (see storage.yaml's)."
        for logical, _, props in _resources(template, "AWS::EFS::FileSystem")
        if not props.get("FileSystemPolicy")
    ]


def check_http_api_throttles(template: Template) -> list[str]:
    """A quick-created HTTP API (Target set) is public: its $default stage needs a throttle, set through
    AWS::ApiGatewayV2::ApiGatewayManagedOverrides (rate and burst), or a leaked URL can run up the bill
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-throttling.html)."""
    throttled = set()
    for _, _, props in _resources(template, "AWS::ApiGatewayV2::ApiGatewayManagedOverrides"):
        settings = (props.get("Stage") or {}).get("DefaultRouteSettings") or {}
        api = props.get("ApiId")
        if isinstance(api, dict) and "ThrottlingRateLimit" in settings and "ThrottlingBurstLimit" in settings:
            throttled.add(api.get("Ref"))
    return [
        f"{logical} is a public HTTP API without a throttle: add an AWS::ApiGatewayV2::ApiGatewayManagedOverrides "
        "whose Stage.DefaultRouteSettings set ThrottlingRateLimit and ThrottlingBurstLimit."
        for logical, _, props in _resources(template, "AWS::ApiGatewayV2::Api")
        if props.get("Target") and logical not in throttled
    ]


CHECKS: tuple[Callable[[Template], list[str]], ...] = (
    check_efs_functions,
    check_aliases_on_versions,
    check_mount_paths,
    check_memory_size,
    check_timeout,
    check_ephemeral_storage,
    check_file_system_policies,
    check_http_api_throttles,
)


def run_checks(template: Template) -> list[str]:
    """Every check's findings for ``template``, in the order of ``CHECKS``."""
    findings = [finding for check in CHECKS for finding in check(template)]
    for finding in findings:
        log.debug("template check: %s", finding)
    return findings


def check_file(path: str | Path) -> list[str]:
    """Every check's findings for the template at ``path``."""
    return run_checks(load_template(path))
