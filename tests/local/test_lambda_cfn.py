"""Lambda and IAM through CloudFormation on the embedded backend: each gap of stock moto pinned by a test.

See the docstrings of ``localaws/patches/lambda_cfn.py`` and ``localaws/patches/iam.py``.
Each test deploys a small template, reads the result back through the service's own API, and
deletes the stack.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import lambda_zip

HANDLER = "def handler(event, context):\n    return {'echo': event}\n"
VPC_ACCESS_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"


@pytest.fixture(scope="module")
def code(local_aws) -> dict:
    """A bucket holding a tiny handler's zip, as a template's ``Code`` property."""
    bucket = f"lambda-cfn-{uuid.uuid4().hex[:8]}"
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="app.zip", Body=lambda_zip(HANDLER))
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
    # The template passes FileSystemConfigs to create_function as the API does; the function model
    # keeps them once the Lambda API patch is in.
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


def test_new_code_publishes_a_new_version_and_moves_the_alias_to_it(code, local_aws):
    name = unique("fn-new-code")
    s3 = local_aws.client("s3")
    s3.put_object(Bucket=code["S3Bucket"], Key="v2.zip", Body=lambda_zip(HANDLER + "# v2\n"))
    resources = versioned(code, name)
    resources["Function"]["Properties"]["Code"] = {"S3Bucket": code["S3Bucket"], "S3Key": {"Ref": "CodeKey"}}
    resources["Version"]["Properties"]["Description"] = {"Ref": "CodeKey"}
    resources["Alias"] = {
        "Type": "AWS::Lambda::Alias",
        "Properties": {
            "Name": "live",
            "FunctionName": {"Ref": "Function"},
            "FunctionVersion": {"Fn::GetAtt": ["Version", "Version"]},
        },
    }
    template = json.dumps(
        {
            "Parameters": {"CodeKey": {"Type": "String"}},
            "Resources": resources,
            "Outputs": {"Number": {"Value": {"Fn::GetAtt": ["Version", "Version"]}}},
        }
    )
    cfn, lam = local_aws.client("cloudformation"), local_aws.client("lambda")
    cfn.create_stack(
        StackName=name,
        TemplateBody=template,
        Parameters=[{"ParameterKey": "CodeKey", "ParameterValue": code["S3Key"]}],
    )
    try:
        cfn.update_stack(
            StackName=name,
            TemplateBody=template,
            Parameters=[{"ParameterKey": "CodeKey", "ParameterValue": "v2.zip"}],
        )
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        assert stack["StackStatus"] == "UPDATE_COMPLETE", stack
        assert stack["Outputs"][0]["OutputValue"] == "2"
        assert lam.get_alias(FunctionName=name, Name="live")["FunctionVersion"] == "2"
        assert lam.get_function(FunctionName=name, Qualifier="2")["Configuration"]["Description"] == "v2.zip"
    finally:
        cfn.delete_stack(StackName=name)


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


# --- the workshop's own templates ---------------------------------------------------------------------


def stack_outputs(cfn, name: str) -> dict:
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def empty_versioned_bucket(s3, bucket: str) -> None:
    listing = s3.list_object_versions(Bucket=bucket)
    for entry in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
        s3.delete_object(Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"])


@pytest.fixture
def function_stack(local_aws):
    """storage.yaml, then function.yaml with a tiny handler as its code; both deleted afterwards."""
    from helpers.config import REPO_ROOT

    cfn, s3 = local_aws.client("cloudformation"), local_aws.client("s3")
    storage_name, function_name = unique("cfn-storage"), unique("cfn-infer")
    cfn.create_stack(
        StackName=storage_name, TemplateBody=(REPO_ROOT / "cloudformation/storage.yaml").read_text()
    )
    storage = stack_outputs(cfn, storage_name)
    s3.put_object(Bucket=storage["ArtifactBucketName"], Key="tiny.zip", Body=lambda_zip(HANDLER))
    parameters = {
        "StorageStackName": storage_name,
        "FunctionName": function_name,
        "CodeBucket": storage["ArtifactBucketName"],
        "CodeKey": "tiny.zip",
        "MemorySize": "256",
        "Architecture": "arm64",
        "ProvisionedConcurrency": "1",
    }
    cfn.create_stack(
        StackName=function_name,
        TemplateBody=(REPO_ROOT / "cloudformation/function.yaml").read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    yield {"storage": storage, "outputs": stack_outputs(cfn, function_name), "name": function_name}
    cfn.delete_stack(StackName=function_name)
    empty_versioned_bucket(s3, storage["ArtifactBucketName"])
    cfn.delete_stack(StackName=storage_name)


def test_function_template_deploys_on_the_storage_stack_with_every_resource_as_declared(
    function_stack, local_aws
):
    storage, out, name = function_stack["storage"], function_stack["outputs"], function_stack["name"]
    lam, iam, logs = local_aws.client("lambda"), local_aws.client("iam"), local_aws.client("logs")

    config = lam.get_function_configuration(FunctionName=name)
    assert (config["MemorySize"], config["Architectures"], config["Runtime"]) == (
        256,
        ["arm64"],
        "python3.12",
    )
    assert config["VpcConfig"]["VpcId"] == storage["VpcId"]
    assert sorted(config["VpcConfig"]["SubnetIds"]) == sorted(storage["PrivateSubnetIds"].split(","))
    assert config["VpcConfig"]["SecurityGroupIds"] == [storage["LambdaSecurityGroupId"]]
    assert config["FileSystemConfigs"] == [{"Arn": storage["AccessPointArn"], "LocalMountPath": "/mnt/ml"}]

    role_name = config["Role"].rsplit("/", 1)[-1]
    [policy_name] = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    mount = next(s for s in document["Statement"] if s["Action"] == "elasticfilesystem:ClientMount")
    assert mount["Resource"] == storage["FileSystemArn"]
    assert mount["Condition"]["StringEquals"]["elasticfilesystem:AccessPointArn"] == storage["AccessPointArn"]

    [group] = logs.describe_log_groups(logGroupNamePrefix=out["LogGroupName"])["logGroups"]
    assert (group["logGroupName"], group["retentionInDays"]) == (f"/aws/lambda/{name}", 7)

    aliases = {a["Name"]: a for a in lam.list_aliases(FunctionName=name)["Aliases"]}
    assert {n: a["FunctionVersion"] for n, a in aliases.items()} == {
        "on-demand": out["VersionNumber"],
        "provisioned": out["VersionNumber"],
    }
    assert aliases["provisioned"]["AliasArn"] == out["ProvisionedAliasArn"]
    provisioned = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="provisioned")
    assert (provisioned["Status"], provisioned["RequestedProvisionedConcurrentExecutions"]) == ("READY", 1)

    policy = json.loads(lam.get_policy(FunctionName=name, Qualifier="provisioned")["Policy"])
    assert [s["Principal"] for s in policy["Statement"]] == [{"Service": "apigateway.amazonaws.com"}]

    api_id = out["HttpApiUrl"].rsplit("/", 1)[-1]
    assert out["HttpApiUrl"] == f"{local_aws.url}/_api/{api_id}"
    integration = local_aws.client("apigatewayv2").get_integrations(ApiId=api_id)["Items"][0]
    assert integration["IntegrationUri"] == out["ProvisionedAliasArn"]


def test_deleting_the_function_stack_removes_the_provisioned_alias_and_its_environments(
    function_stack, local_aws
):
    name = function_stack["name"]
    lam = local_aws.client("lambda")
    local_aws.client("cloudformation").delete_stack(StackName=name)
    assert name not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="provisioned")
    assert not local_aws.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")[
        "logGroups"
    ]
