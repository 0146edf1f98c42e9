"""localaws.patches.efs.client_access: EFS's verdict for a role mounting through an access point, with the
workshop's own policies (storage.yaml's file-system policy, the roles of function.yaml and seeder.yaml)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from helpers import stacks
from helpers.template_checks import load_template
from localaws.patches.efs import client_access

ACCOUNT, REGION = "123456789012", "us-east-1"


def resolve(value, names: dict):
    """Substitute the templates' intrinsic functions with the values a deployed stack would give."""
    if isinstance(value, dict):
        if "Fn::ImportValue" in value:
            return names[value["Fn::ImportValue"]["Fn::Sub"].split("}-", 1)[1]]
        if "Fn::Sub" in value:
            text, variables = (
                value["Fn::Sub"] if isinstance(value["Fn::Sub"], list) else (value["Fn::Sub"], {})
            )
            known = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
            for key, replacement in {**known, **resolve(variables, names)}.items():
                text = text.replace("${" + key + "}", replacement)
            return text
        if "Fn::GetAtt" in value:
            return names["LogGroupArn"]
        return {k: resolve(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, names) for v in value]
    return value


@pytest.fixture
def workshop():
    with mock_aws():
        efs, iam = boto3.client("efs", region_name=REGION), boto3.client("iam", region_name=REGION)
        fs = efs.create_file_system(CreationToken="t", Encrypted=True)
        ap = efs.create_access_point(FileSystemId=fs["FileSystemId"], PosixUser={"Uid": 1000, "Gid": 1000})
        other = efs.create_access_point(FileSystemId=fs["FileSystemId"], RootDirectory={"Path": "/other"})
        names = {
            "FileSystemArn": fs["FileSystemArn"],
            "AccessPointArn": ap["AccessPointArn"],
            "ArtifactBucketName": "bucket",
            "LogGroupArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/x:*",
        }
        roles = {}
        for template in ("function", "seeder"):
            role = load_template(stacks.template_path(template))["Resources"]["Role"]["Properties"]
            arn = iam.create_role(
                RoleName=template, AssumeRolePolicyDocument=json.dumps(role["AssumeRolePolicyDocument"])
            )["Role"]["Arn"]
            for policy in role["Policies"]:
                iam.put_role_policy(
                    RoleName=template,
                    PolicyName=policy["PolicyName"],
                    PolicyDocument=json.dumps(resolve(policy["PolicyDocument"], names)),
                )
            roles[template] = arn
        yield {
            "efs": efs,
            "fs": fs,
            "ap": ap["AccessPointArn"],
            "other_ap": other["AccessPointArn"],
            "roles": roles,
        }


def put_storage_policy(workshop):
    storage = load_template(stacks.template_path("storage"))
    policy = resolve(storage["Resources"]["FileSystem"]["Properties"]["FileSystemPolicy"], {})
    workshop["efs"].put_file_system_policy(
        FileSystemId=workshop["fs"]["FileSystemId"], Policy=json.dumps(policy)
    )


def test_without_a_file_system_policy_every_role_has_full_access(workshop):
    assert client_access(ACCOUNT, REGION, workshop["ap"], workshop["roles"]["function"]) == {
        "mount": True,
        "write": True,
    }


def test_with_storage_yamls_policy_inference_is_read_only_and_the_seeder_writes(workshop):
    put_storage_policy(workshop)
    assert client_access(ACCOUNT, REGION, workshop["ap"], workshop["roles"]["function"]) == {
        "mount": True,
        "write": False,
    }
    assert client_access(ACCOUNT, REGION, workshop["ap"], workshop["roles"]["seeder"]) == {
        "mount": True,
        "write": True,
    }


def test_the_roles_may_not_mount_through_another_access_point(workshop):
    put_storage_policy(workshop)
    for role in workshop["roles"].values():
        assert client_access(ACCOUNT, REGION, workshop["other_ap"], role) == {"mount": False, "write": False}


def test_an_unknown_role_gets_nothing_once_a_policy_exists(workshop):
    put_storage_policy(workshop)
    stranger = f"arn:aws:iam::{ACCOUNT}:role/stranger"
    assert client_access(ACCOUNT, REGION, workshop["ap"], stranger) == {"mount": False, "write": False}
