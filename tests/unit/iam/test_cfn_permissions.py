"""CloudFormation as its caller: the permission table against the workshop's templates and
policies/learner-policy.json, and how a refusal reads (as CloudFormation reports a handler's failure)."""

from __future__ import annotations

import json
import re

import boto3
import pytest
from moto import mock_aws

from helpers.config import REPO_ROOT
from helpers.template_checks import load_template
from localaws.iam import Authorizer, cfn, cfn_permissions
from localaws.iam.evaluator import Policies, Request, evaluate
from localaws.iam.identity import Caller
from localaws.iam.store import MotoStore

ACCT = "123456789012"
LEARNER = (REPO_ROOT / "policies" / "learner-policy.json").read_text()


def without(policy: str, *actions: str) -> str:
    """``policy`` with ``actions`` taken out of every statement (issue 18's audit: the policy before the fix)."""
    document = json.loads(policy)
    for statement in document["Statement"]:
        named = statement.get("Action", [])
        statement["Action"] = [a for a in ([named] if isinstance(named, str) else named) if a not in actions]
    document["Statement"] = [s for s in document["Statement"] if s["Action"]]
    return json.dumps(document)


ENI = ("ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface")
LEARNER_WITHOUT_ENI = without(LEARNER, *ENI)
LEARNER_USER = Caller(f"arn:aws:iam::{ACCT}:user/learner", ACCT, "user", "learner", "AKIA", "s", "AIDA")


def resolve(value, template: dict, logical_ids: dict[str, str]):
    """Template values with intrinsic functions replaced by the workshop's names (``lambda-efs-...``)."""
    parameters = template.get("Parameters") or {}

    def ref(name: str) -> str:
        if name in parameters:
            return str(parameters[name].get("Default", f"lambda-efs-{name.lower()}"))
        return {"AWS::Region": "us-east-1", "AWS::AccountId": ACCT, "AWS::StackName": "lambda-efs-stack"}.get(
            name, logical_ids.get(name, f"lambda-efs-{name.lower()}")
        )

    def attribute(name: str, attr: str) -> str:
        resource = (template.get("Resources") or {}).get(name, {})
        if resource.get("Type") == "AWS::IAM::Role" and attr == "Arn":
            return f"arn:aws:iam::{ACCT}:role/{ref(name)}"
        return f"{ref(name)}-{attr.lower()}"

    if isinstance(value, list):
        return [resolve(v, template, logical_ids) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return ref(arg)
        if key == "Fn::GetAtt":
            name, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return attribute(name, attr)
        if key == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            for name in re.findall(r"\$\{([^}]+)\}", text):
                replacement = (
                    resolve(extra[name], template, logical_ids)
                    if name in extra
                    else attribute(*name.split(".", 1))
                    if "." in name and not name.startswith("AWS::")
                    else ref(name)
                )
                text = text.replace("${" + name + "}", str(replacement))
            return text
        if key == "Fn::Join":
            return arg[0].join(str(resolve(v, template, logical_ids)) for v in arg[1])
        if key == "Fn::If":
            return resolve(arg[1], template, logical_ids)
        if key.startswith("Fn::"):
            return f"lambda-efs-{key[4:].lower()}"
    return {k: resolve(v, template, logical_ids) for k, v in value.items()}


def refusals(template_name: str, policy: str) -> dict[str, list[str]]:
    """Per "<type> <operation>", the actions ``policy`` lacks for the template's resources."""
    template = load_template(REPO_ROOT / "cloudformation" / template_name)
    logical_ids = {name: f"lambda-efs-{name.lower()}" for name in template["Resources"]}
    out: dict[str, set[str]] = {}
    for logical, resource in template["Resources"].items():
        properties = resolve(resource.get("Properties") or {}, template, logical_ids)
        target = cfn_permissions.Target("us-east-1", ACCT, properties, logical_ids[logical])
        for operation in ("create", "delete"):
            for need, arn, context in cfn_permissions.needs(resource["Type"], operation, target):
                request = Request(LEARNER_USER.principal, need.action, arn, context)
                if not evaluate(request, Policies(identity=[policy])).allowed:
                    out.setdefault(f"{resource['Type']} {operation}", set()).add(need.action)
    return {k: sorted(v) for k, v in out.items()}


def test_the_storage_stacks_mount_targets_need_the_network_interface_actions():
    """Issue 18's audit: CreateMountTarget needs ec2:CreateNetworkInterface (and DeleteMountTarget
    ec2:DeleteNetworkInterface), which the learner policy lacked; nothing else of the stack is refused."""
    assert refusals("storage.yaml", LEARNER_WITHOUT_ENI) == {
        "AWS::EFS::MountTarget create": ["ec2:CreateNetworkInterface"],
        "AWS::EFS::MountTarget delete": ["ec2:DeleteNetworkInterface"],
    }


@pytest.mark.parametrize("template", ["storage.yaml", "function.yaml", "seeder.yaml", "sagemaker.yaml"])
def test_the_other_templates_are_allowed_to_the_learner_policy(template):
    assert refusals(template, LEARNER) == {}


def test_a_policy_without_pass_role_cannot_deploy_the_function():
    document = json.loads(LEARNER)
    document["Statement"] = [s for s in document["Statement"] if "iam:PassRole" not in s["Action"]]
    assert "iam:PassRole" in refusals("function.yaml", json.dumps(document))["AWS::Lambda::Function create"]


def test_every_row_cites_its_page():
    for (resource_type, operation), needs in cfn_permissions.CALLER.items():
        assert operation in ("create", "delete") and needs, resource_type
        for need in needs:
            assert need.doc.startswith("https://docs.aws.amazon.com/"), (resource_type, need)


@pytest.fixture
def account():
    with mock_aws():
        iam = boto3.client(
            "iam", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        iam.create_user(UserName="learner")
        iam.put_user_policy(UserName="learner", PolicyName="learner", PolicyDocument=LEARNER_WITHOUT_ENI)
        yield iam, Authorizer(MotoStore(ACCT), enabled=True)


def test_the_refusal_reads_as_cloudformation_reports_it(account):
    iam, authorizer = account
    props = {"FileSystemId": "fs-12345678", "SubnetId": "subnet-1", "SecurityGroups": ["sg-1"]}
    refusal = authorizer.cloudformation_may(
        LEARNER_USER, "AWS::EFS::MountTarget", "create", props, physical_id="fsmt-1"
    )
    assert refusal.action == "ec2:CreateNetworkInterface"
    assert refusal.reason.startswith(
        'Resource handler returned message: "User: arn:aws:iam::123456789012:user/learner is not authorized to perform: '
        "ec2:CreateNetworkInterface on resource: arn:aws:ec2:us-east-1:123456789012:network-interface/* because no "
        "identity-based policy allows the ec2:CreateNetworkInterface action (Service: Efs, Status Code: 403, Request ID: "
    )
    assert refusal.reason.endswith(", HandlerErrorCode: AccessDenied)")
    extra = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ec2:CreateNetworkInterface", "Resource": "*"}],
    }
    iam.put_user_policy(UserName="learner", PolicyName="eni", PolicyDocument=json.dumps(extra))
    assert authorizer.cloudformation_may(LEARNER_USER, "AWS::EFS::MountTarget", "create", props) is None


def test_a_stacks_service_role_acts_instead_of_its_caller(account):
    iam, authorizer = account
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "cloudformation.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName="cfn-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    props = {"BucketName": "lambda-efs-art"}
    assert authorizer.cloudformation_may(LEARNER_USER, "AWS::S3::Bucket", "create", props) is None
    refusal = authorizer.cloudformation_may(LEARNER_USER, "AWS::S3::Bucket", "create", props, role_arn=role)
    assert refusal.action == "s3:CreateBucket" and "assumed-role/cfn-role/AWSCloudFormation" in refusal.reason


def test_the_first_file_system_needs_the_service_linked_role(account):
    iam, authorizer = account
    document = json.loads(LEARNER)
    document["Statement"] = [
        s for s in document["Statement"] if "iam:CreateServiceLinkedRole" not in s["Action"]
    ]
    iam.put_user_policy(UserName="learner", PolicyName="learner", PolicyDocument=json.dumps(document))
    refusal = authorizer.cloudformation_may(
        LEARNER_USER, "AWS::EFS::FileSystem", "create", {"Encrypted": False}
    )
    assert refusal is not None and refusal.action == "iam:CreateServiceLinkedRole"
    iam.create_service_linked_role(AWSServiceName="elasticfilesystem.amazonaws.com")
    assert (
        authorizer.cloudformation_may(LEARNER_USER, "AWS::EFS::FileSystem", "create", {"Encrypted": False})
        is None
    )


def test_lambda_checks_the_execution_role(account):
    iam, authorizer = account
    lambda_trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    untrusted = iam.create_role(
        RoleName="no-trust", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )["Role"]["Arn"]
    role = iam.create_role(RoleName="vpc-fn", AssumeRolePolicyDocument=json.dumps(lambda_trust))["Role"][
        "Arn"
    ]
    vpc = {"VpcConfig": {"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}}
    assert authorizer.execution_role_problem(untrusted, {}) == cfn.ROLE_NOT_ASSUMABLE
    assert (
        authorizer.execution_role_problem(f"arn:aws:iam::{ACCT}:role/missing", {}) == cfn.ROLE_NOT_ASSUMABLE
    )
    assert authorizer.execution_role_problem(role, {}) is None
    assert (
        authorizer.execution_role_problem(role, vpc)
        == "The provided execution role does not have permissions to call CreateNetworkInterface on EC2"
    )
    eni = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "ec2:CreateNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DeleteNetworkInterface",
                ],
                "Resource": "*",
            }
        ],
    }
    iam.put_role_policy(RoleName="vpc-fn", PolicyName="eni", PolicyDocument=json.dumps(eni))
    assert authorizer.execution_role_problem(role, vpc) is None


def test_a_services_own_refusal_reads_in_its_own_words(account):
    iam, authorizer = account
    iam.delete_user_policy(UserName="learner", PolicyName="learner")
    vpc = authorizer.cloudformation_may(LEARNER_USER, "AWS::EC2::VPC", "create", {"CidrBlock": "10.0.0.0/16"})
    assert vpc.reason.startswith(
        'Resource handler returned message: "You are not authorized to perform this operation. User: '
    )
    assert "(Service: Ec2, Status Code: 403" in vpc.reason
    fs = authorizer.cloudformation_may(LEARNER_USER, "AWS::EFS::FileSystem", "delete", {}, physical_id="fs-1")
    assert fs.reason.startswith(
        'Resource handler returned message: "User is not authorized to perform that action on the specified resource (Service: Efs'
    )
