"""ListImports on the local AWS: the stacks that import an export, as CloudFormation answers it
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ListImports.html)."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError


def exporter(name: str) -> str:
    return json.dumps(
        {
            "Resources": {
                "Group": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": f"/x/{name}"}}
            },
            "Outputs": {"Thing": {"Value": "42", "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-Thing"}}}},
        }
    )


def importer() -> str:
    return json.dumps(
        {
            "Parameters": {"StorageStackName": {"Type": "String"}},
            "Resources": {
                "Group": {
                    "Type": "AWS::Logs::LogGroup",
                    "Properties": {
                        "LogGroupName": {
                            "Fn::Join": [
                                "-",
                                ["/y", {"Fn::ImportValue": {"Fn::Sub": "${StorageStackName}-Thing"}}],
                            ]
                        }
                    },
                }
            },
        }
    )


@pytest.fixture
def exported(local_aws):
    cfn = local_aws.client("cloudformation")
    name = f"exp-{uuid.uuid4().hex[:8]}"
    cfn.create_stack(StackName=name, TemplateBody=exporter(name))
    yield cfn, name
    cfn.delete_stack(StackName=name)


def test_list_imports_names_the_importing_stacks_until_they_are_deleted(exported):
    cfn, name = exported
    users = [f"imp-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for user in users:
        cfn.create_stack(
            StackName=user,
            TemplateBody=importer(),
            Parameters=[{"ParameterKey": "StorageStackName", "ParameterValue": name}],
        )
    assert sorted(cfn.list_imports(ExportName=f"{name}-Thing")["Imports"]) == sorted(users)
    for user in users:
        cfn.delete_stack(StackName=user)
    with pytest.raises(ClientError, match=rf"Export '{name}-Thing' is not imported by any stack"):
        cfn.list_imports(ExportName=f"{name}-Thing")


def test_list_imports_of_an_unknown_export_is_a_validation_error(local_aws):
    with pytest.raises(ClientError, match="No export named nope-Thing found") as raised:
        local_aws.client("cloudformation").list_imports(ExportName="nope-Thing")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
