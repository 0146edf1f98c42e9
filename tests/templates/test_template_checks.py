"""The checks cfn-lint misses: each one flags a small broken template, and the real templates pass them all."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import template_checks as checks
from helpers.config import REPO_ROOT

TEMPLATES = sorted((REPO_ROOT / "cloudformation").glob("*.yaml"))

SOUND = """
Parameters:
  Memory: {Type: Number, Default: 1024, MinValue: 128, MaxValue: 10240}
Resources:
  MountTarget:
    Type: AWS::EFS::MountTarget
    Properties: {FileSystemId: fs-1, SubnetId: subnet-1, SecurityGroups: [sg-1]}
  Fn:
    Type: AWS::Lambda::Function
    DependsOn: MountTarget
    Properties:
      MemorySize: !Ref Memory
      Timeout: 900
      EphemeralStorage: {Size: 512}
      VpcConfig: {SubnetIds: [subnet-1], SecurityGroupIds: [sg-1]}
      FileSystemConfigs:
        - {Arn: !Sub "arn:${AWS::Partition}:elasticfilesystem:::access-point/fsap-1", LocalMountPath: /mnt/ml}
  Version:
    Type: AWS::Lambda::Version
    Properties: {FunctionName: !Ref Fn}
  Live:
    Type: AWS::Lambda::Alias
    Properties:
      Name: live
      FunctionName: !Ref Fn
      FunctionVersion: !GetAtt Version.Version
      ProvisionedConcurrencyConfig: {ProvisionedConcurrentExecutions: 1}
"""


@pytest.fixture
def template() -> checks.Template:
    """A small template that passes every check; each test breaks one thing in it."""
    return checks.parse_template(SOUND)


def fn(template: checks.Template) -> dict:
    return template["Resources"]["Fn"]["Properties"]


def test_the_sound_snippet_passes_every_check(template):
    assert checks.run_checks(template) == []


def test_short_tags_are_decoded_as_intrinsic_functions(template):
    assert fn(template)["MemorySize"] == {"Ref": "Memory"}
    assert template["Resources"]["Live"]["Properties"]["FunctionVersion"] == {
        "Fn::GetAtt": ["Version", "Version"]
    }
    assert "Fn::Sub" in fn(template)["FileSystemConfigs"][0]["Arn"]


def test_an_undecodable_template_is_named_in_the_error(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("Resources:\n  Fn: {Type: [\n")
    with pytest.raises(ValueError, match=r"broken\.yaml cannot be decoded .*fix its syntax"):
        checks.load_template(broken)


def test_a_function_that_mounts_efs_without_a_vpc_config_is_reported(template):
    del fn(template)["VpcConfig"]
    [finding] = checks.check_efs_functions(template)
    assert finding.startswith("Fn mounts EFS") and "VpcConfig" in finding


def test_a_vpc_config_without_subnets_is_reported(template):
    fn(template)["VpcConfig"] = {"SecurityGroupIds": ["sg-1"]}
    [finding] = checks.check_efs_functions(template)
    assert "SubnetIds" in finding


def test_a_function_that_does_not_wait_for_the_mount_targets_is_reported(template):
    del template["Resources"]["Fn"]["DependsOn"]
    [finding] = checks.check_efs_functions(template)
    assert "MountTarget" in finding and "DependsOn" in finding


def test_provisioned_concurrency_on_latest_is_reported(template):
    template["Resources"]["Live"]["Properties"]["FunctionVersion"] = "$LATEST"
    [finding] = checks.check_aliases_on_versions(template)
    assert finding.startswith("Live has Provisioned Concurrency on $LATEST")


def test_an_alias_on_latest_without_provisioned_concurrency_is_reported(template):
    alias = template["Resources"]["Live"]["Properties"]
    alias["FunctionVersion"] = "$LATEST"
    del alias["ProvisionedConcurrencyConfig"]
    [finding] = checks.check_aliases_on_versions(template)
    assert finding.startswith("Live points at $LATEST") and "AWS::Lambda::Version" in finding


def test_an_alias_version_parameter_that_defaults_to_latest_is_reported(template):
    template["Parameters"]["AliasVersion"] = {"Type": "String", "Default": "$LATEST"}
    template["Resources"]["Live"]["Properties"]["FunctionVersion"] = {"Ref": "AliasVersion"}
    assert len(checks.check_aliases_on_versions(template)) == 1


@pytest.mark.parametrize("path", ["/efs", "/mnt", "/mnt/", "/mnt/a/b", "/tmp/ml"])
def test_a_mount_path_outside_mnt_is_reported(template, path):
    fn(template)["FileSystemConfigs"][0]["LocalMountPath"] = path
    [finding] = checks.check_mount_paths(template)
    assert repr(path) in finding and "/mnt/<name>" in finding


@pytest.mark.parametrize("memory", [64, 127, 10241, "20000"])
def test_memory_size_outside_128_to_10240_is_reported(template, memory):
    fn(template)["MemorySize"] = memory
    [finding] = checks.check_memory_size(template)
    assert finding.startswith("Fn MemorySize") and "128-10240" in finding


@pytest.mark.parametrize("memory", [128, 10240])
def test_memory_size_at_the_limits_passes(template, memory):
    fn(template)["MemorySize"] = memory
    assert checks.check_memory_size(template) == []


def test_a_memory_parameter_without_bounds_is_reported(template):
    template["Parameters"]["Memory"] = {"Type": "Number", "Default": 1024}
    [finding] = checks.check_memory_size(template)
    assert "parameter Memory" in finding and "MinValue 128 and MaxValue 10240" in finding


@pytest.mark.parametrize(
    "parameter",
    [
        {"Type": "Number", "Default": 1024, "MinValue": 64, "MaxValue": 10240},
        {"Type": "Number", "Default": 1024, "MinValue": 128, "MaxValue": 20480},
        {"Type": "Number", "Default": 1024, "AllowedValues": [1024, 16384]},
        {"Type": "Number", "Default": 64, "AllowedValues": [128, 1024]},
    ],
    ids=["min", "max", "allowed", "default"],
)
def test_a_memory_parameter_that_allows_an_invalid_size_is_reported(template, parameter):
    template["Parameters"]["Memory"] = parameter
    [finding] = checks.check_memory_size(template)
    assert "parameter Memory" in finding and "outside 128-10240" in finding


@pytest.mark.parametrize("timeout", [0, 901, 3600])
def test_a_timeout_outside_1_to_900_seconds_is_reported(template, timeout):
    fn(template)["Timeout"] = timeout
    [finding] = checks.check_timeout(template)
    assert finding.startswith(f"Fn Timeout is {timeout} s")


@pytest.mark.parametrize("size", [256, 511, 10241])
def test_ephemeral_storage_outside_512_to_10240_mb_is_reported(template, size):
    fn(template)["EphemeralStorage"]["Size"] = size
    [finding] = checks.check_ephemeral_storage(template)
    assert finding.startswith("Fn EphemeralStorage.Size") and "512-10240" in finding


def test_values_that_cannot_be_decided_statically_are_left_alone(template):
    fn(template)["MemorySize"] = {"Fn::If": ["Big", 20000, 1024]}
    fn(template)["Timeout"] = {"Ref": "AWS::NoValue"}
    assert checks.run_checks(template) == []


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: path.name)
def test_every_workshop_template_passes_every_check(path: Path):
    assert checks.check_file(path) == []


def test_function_yaml_aliases_point_at_its_published_version_never_latest():
    template = checks.load_template(REPO_ROOT / "cloudformation" / "function.yaml")
    aliases = {
        resource["Properties"]["Name"]: resource["Properties"]["FunctionVersion"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Alias"
    }
    assert aliases == {
        "on-demand": {"Fn::GetAtt": ["Version", "Version"]},
        "provisioned": {"Fn::GetAtt": ["Version", "Version"]},
    }
    assert checks.check_aliases_on_versions(template) == []
    template["Resources"]["ProvisionedAlias"]["Properties"]["FunctionVersion"] = "$LATEST"
    assert checks.check_aliases_on_versions(template) == [
        "ProvisionedAlias has Provisioned Concurrency on $LATEST, which AWS rejects: "
        "set FunctionVersion to !GetAtt <an AWS::Lambda::Version>.Version."
    ]
