"""Lambda and IAM through CloudFormation on the embedded backend: each gap of stock moto pinned by a test.

See the docstrings of ``helpers/local/patches/lambda_cfn.py`` and ``helpers/local/patches/iam.py``.
Each test deploys a small template, reads the result back through the service's own API, and
deletes the stack.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile

import pytest

HANDLER = "def handler(event, context):\n    return {'echo': event}\n"
VPC_ACCESS_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"


def function_zip(source: str = HANDLER) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def code(local_aws) -> dict:
    """A bucket holding a tiny handler's zip, as a template's ``Code`` property."""
    bucket = f"lambda-cfn-{uuid.uuid4().hex[:8]}"
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="app.zip", Body=function_zip())
    return {"S3Bucket": bucket, "S3Key": "app.zip"}


@pytest.fixture
def deploy(local_aws):
    """Create a stack from resources and outputs (asserting CREATE_COMPLETE); returns its outputs.

    Stacks still standing at the end of the test are deleted."""
    cfn = local_aws.client("cloudformation")
    created: list[str] = []

    def _deploy(resources: dict, outputs: dict) -> dict:
        name = f"lambda-cfn-{uuid.uuid4().hex[:8]}"
        body = {"Resources": resources, "Outputs": {k: {"Value": v} for k, v in outputs.items()}}
        created.append(cfn.create_stack(StackName=name, TemplateBody=json.dumps(body))["StackId"])
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack
        return {"StackName": name} | {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    yield _deploy
    for stack_id in created:
        cfn.delete_stack(StackName=stack_id)


def role() -> dict:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        },
    }


def function(code: dict, name: str, **properties) -> dict:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "FunctionName": name,
            "Runtime": "python3.12",
            "Handler": "app.handler",
            "Code": code,
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            **properties,
        },
    }


def versioned(code: dict, name: str) -> dict:
    """Role, function and a published version with a description."""
    return {
        "Role": role(),
        "Function": function(code, name),
        "Version": {
            "Type": "AWS::Lambda::Version",
            "Properties": {"FunctionName": {"Ref": "Function"}, "Description": "first"},
        },
    }


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_function_keeps_ephemeral_storage_architectures_tags_and_the_vpc_of_its_subnets(
    deploy, code, local_aws
):
    name = unique("fn-props")
    resources = {
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.40.0.0/16"}},
        "Subnet": {
            "Type": "AWS::EC2::Subnet",
            "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.40.1.0/24"},
        },
        "Sg": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {"GroupDescription": "lambda", "VpcId": {"Ref": "Vpc"}},
        },
        "Role": role(),
        "Function": function(
            code,
            name,
            Architectures=["arm64"],
            EphemeralStorage={"Size": 2048},
            Tags=[{"Key": "Name", "Value": name}],
            VpcConfig={"SubnetIds": [{"Ref": "Subnet"}], "SecurityGroupIds": [{"Ref": "Sg"}]},
        ),
    }
    out = deploy(resources, {"Vpc": {"Ref": "Vpc"}})
    got = local_aws.client("lambda").get_function(FunctionName=name)
    config = got["Configuration"]
    assert config["Architectures"] == ["arm64"]
    assert config["EphemeralStorage"] == {"Size": 2048}
    assert config["VpcConfig"]["VpcId"] == out["Vpc"]
    assert got["Tags"] == {"Name": name}


def test_function_keeps_file_system_configs(deploy, code, local_aws):
    name = unique("fn-efs")
    mount = [
        {
            "Arn": "arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-0123456789abcdef0",
            "LocalMountPath": "/mnt/ml",
        }
    ]
    deploy({"Role": role(), "Function": function(code, name, FileSystemConfigs=mount)}, {})
    config = local_aws.client("lambda").get_function_configuration(FunctionName=name)
    assert config["FileSystemConfigs"] == mount


def test_version_ref_is_the_version_arn_and_getatt_version_is_its_number(deploy, code, local_aws):
    name = unique("fn-version")
    out = deploy(
        versioned(code, name),
        {"Ref": {"Ref": "Version"}, "Number": {"Fn::GetAtt": ["Version", "Version"]}},
    )
    versions = local_aws.client("lambda").list_versions_by_function(FunctionName=name)["Versions"]
    published = [v for v in versions if v["Version"] != "$LATEST"]
    assert [(v["FunctionArn"], v["Version"], v["Description"]) for v in published] == [
        (out["Ref"], out["Number"], "first")
    ]
    assert out["Ref"].endswith(f":function:{name}:1")


def test_alias_is_created_on_the_version_and_deleted_with_the_stack(deploy, code, local_aws):
    name = unique("fn-alias")
    resources = versioned(code, name) | {
        "Alias": {
            "Type": "AWS::Lambda::Alias",
            "Properties": {
                "Name": "live",
                "Description": "the published version",
                "FunctionName": {"Ref": "Function"},
                "FunctionVersion": {"Fn::GetAtt": ["Version", "Version"]},
            },
        }
    }
    out = deploy(resources, {"Ref": {"Ref": "Alias"}, "Arn": {"Fn::GetAtt": ["Alias", "AliasArn"]}})
    lam = local_aws.client("lambda")
    alias = lam.get_alias(FunctionName=name, Name="live")
    assert (alias["AliasArn"], alias["FunctionVersion"], alias["Description"]) == (
        out["Ref"],
        "1",
        "the published version",
    )
    assert out["Arn"] == out["Ref"] and out["Ref"].endswith(f":function:{name}:live")
    local_aws.client("cloudformation").delete_stack(StackName=out["StackName"])
    assert not [f for f in lam.list_functions()["Functions"] if f["FunctionName"] == name]


def test_alias_removed_from_the_template_is_deleted_by_an_update(deploy, code, local_aws):
    name = unique("fn-alias-update")
    alias = {
        "Type": "AWS::Lambda::Alias",
        "Properties": {
            "Name": "live",
            "FunctionName": {"Ref": "Function"},
            "FunctionVersion": {"Fn::GetAtt": ["Version", "Version"]},
        },
    }
    out = deploy(versioned(code, name) | {"Alias": alias}, {})
    cfn, lam = local_aws.client("cloudformation"), local_aws.client("lambda")
    assert [a["Name"] for a in lam.list_aliases(FunctionName=name)["Aliases"]] == ["live"]
    cfn.update_stack(
        StackName=out["StackName"], TemplateBody=json.dumps({"Resources": versioned(code, name)})
    )
    assert cfn.describe_stacks(StackName=out["StackName"])["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    assert lam.list_aliases(FunctionName=name)["Aliases"] == []


def test_api_gateway_permission_on_an_alias_is_a_statement_about_that_alias(deploy, code, local_aws):
    name = unique("fn-permission")
    source_arn = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/*"
    resources = versioned(code, name) | {
        "Alias": {
            "Type": "AWS::Lambda::Alias",
            "Properties": {
                "Name": "live",
                "FunctionName": {"Ref": "Function"},
                "FunctionVersion": {"Fn::GetAtt": ["Version", "Version"]},
            },
        },
        "Permission": {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Ref": "Alias"},
                "Principal": "apigateway.amazonaws.com",
                "SourceArn": source_arn,
            },
        },
    }
    out = deploy(resources, {"Alias": {"Ref": "Alias"}})
    policy = json.loads(local_aws.client("lambda").get_policy(FunctionName=name, Qualifier="live")["Policy"])
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Resource"] == out["Alias"]
    assert statement["Condition"] == {"ArnLike": {"AWS:SourceArn": source_arn}}
    assert "FunctionName" not in statement


def test_role_gets_its_managed_policies_and_inline_policies_as_json(deploy, local_aws):
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}],
    }
    resources = {"Role": role()}
    resources["Role"]["Properties"] |= {
        "RoleName": unique("role"),
        "ManagedPolicyArns": [VPC_ACCESS_POLICY],
        "Policies": [{"PolicyName": "logs", "PolicyDocument": document}],
    }
    out = deploy(resources, {"Role": {"Ref": "Role"}})
    iam = local_aws.client("iam")
    attached = iam.list_attached_role_policies(RoleName=out["Role"])["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [VPC_ACCESS_POLICY]
    assert iam.get_role_policy(RoleName=out["Role"], PolicyName="logs")["PolicyDocument"] == document
    details = iam.get_account_authorization_details(Filter=["Role"])["RoleDetailList"]
    [mine] = [r for r in details if r["RoleName"] == out["Role"]]
    assert mine["RolePolicyList"] == [{"PolicyName": "logs", "PolicyDocument": document}]
    local_aws.client("cloudformation").delete_stack(StackName=out["StackName"])
    assert out["Role"] not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
