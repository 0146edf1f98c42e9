"""policies/learner-policy.json covers every AWS call the workshop makes and every resource its templates create.

Two walks, each failing on a missing action:

- the code's boto3 calls: an AST walk over helpers/ (the embedded AWS aside), functions/ and the notebooks'
  code cells, finding ``client("svc").method(...)``, ``x = session.client("svc")`` then ``x.method``,
  ``a, b = (session.client(s) for s in ("svc1", "svc2"))``, functions that return a client, and
  parameters conventionally named for one (``lam``, ``s3``, ``logs``, ``cfn``...); paginators and waiters
  count as their operations. Each operation becomes its IAM action (``efs`` -> ``elasticfilesystem``,
  ``Invoke`` -> ``lambda:InvokeFunction``, ``HeadObject`` -> ``s3:GetObject``, ...).
- the ``sagemaker`` SDK's resource classes (05): ``Model.get``, ``resources.Endpoint.create``, and methods of
  what they return (``endpoint.invoke``) map to the operations the SDK calls (SDK_ACTIONS, read from
  ``sagemaker/core/resources.py``); a method missing from that table fails the test until it is added.
- the templates' resource types: CloudFormation acts with the caller's permissions (no service role),
  so creating and deleting each type needs the actions listed in RESOURCE_ACTIONS (from each type's
  resource schema, https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-schema.html,
  "handlers" permissions). A type missing from that table fails the test until its actions are added.
"""

from __future__ import annotations

import ast
import json
from functools import cache
from pathlib import Path

import boto3
import pytest

from helpers.config import REPO_ROOT
from helpers.template_checks import load_template

POLICY = REPO_ROOT / "policies" / "learner-policy.json"
PREFIX = {
    "efs": "elasticfilesystem",
    "apigatewayv2": "apigateway",
    "sagemaker-runtime": "sagemaker",
    "service-quotas": "servicequotas",
}
VARIABLE_SERVICES = {
    "lam": "lambda",
    "lambda_client": "lambda",
    "s3": "s3",
    "logs": "logs",
    "cfn": "cloudformation",
    "efs": "efs",
    "ec2": "ec2",
    "iam": "iam",
    "sts": "sts",
}
OPERATION_ACTIONS = {
    ("lambda", "Invoke"): ["lambda:InvokeFunction"],
    ("s3", "HeadObject"): ["s3:GetObject"],
    ("s3", "HeadBucket"): ["s3:ListBucket"],
    ("s3", "ListObjectsV2"): ["s3:ListBucket"],
    ("s3", "ListObjects"): ["s3:ListBucket"],
    ("s3", "ListObjectVersions"): ["s3:ListBucketVersions"],
    ("s3", "ListBuckets"): ["s3:ListAllMyBuckets"],
    ("s3", "DeleteObjects"): ["s3:DeleteObject", "s3:DeleteObjectVersion"],
    ("s3", "GetPublicAccessBlock"): ["s3:GetBucketPublicAccessBlock"],
    ("s3", "GetBucketEncryption"): ["s3:GetEncryptionConfiguration"],
    ("s3", "GetBucketLifecycleConfiguration"): ["s3:GetLifecycleConfiguration"],
    ("s3", "upload_file"): ["s3:PutObject"],
    ("s3", "upload_fileobj"): ["s3:PutObject"],
    ("s3", "download_file"): ["s3:GetObject"],
    ("s3", "download_fileobj"): ["s3:GetObject"],
}
SDK = "sagemaker-sdk"  # calls through sagemaker.core.resources, which makes its own boto3 clients
# What each SDK method calls (sagemaker 3.27.0's sagemaker/core/resources.py): create calls get after it.
SDK_ACTIONS = {
    "Model.get": ["sagemaker:DescribeModel"],
    "Model.create": ["sagemaker:CreateModel", "sagemaker:DescribeModel", "iam:PassRole"],
    "EndpointConfig.get": ["sagemaker:DescribeEndpointConfig"],
    "EndpointConfig.create": ["sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig"],
    "Endpoint.get": ["sagemaker:DescribeEndpoint"],
    "Endpoint.create": ["sagemaker:CreateEndpoint", "sagemaker:DescribeEndpoint"],
    "Endpoint.invoke": ["sagemaker:InvokeEndpoint"],
    "Endpoint.refresh": ["sagemaker:DescribeEndpoint"],
}
SDK_CLASSES = {key.split(".")[0] for key in SDK_ACTIONS}
RESOURCE_ACTIONS = {
    "AWS::EC2::VPC": [
        "ec2:CreateVpc",
        "ec2:ModifyVpcAttribute",
        "ec2:DescribeVpcs",
        "ec2:DeleteVpc",
        "ec2:CreateTags",
    ],
    "AWS::EC2::Subnet": [
        "ec2:CreateSubnet",
        "ec2:ModifySubnetAttribute",
        "ec2:DescribeSubnets",
        "ec2:DeleteSubnet",
        "ec2:DescribeAvailabilityZones",
    ],
    "AWS::EC2::RouteTable": ["ec2:CreateRouteTable", "ec2:DescribeRouteTables", "ec2:DeleteRouteTable"],
    "AWS::EC2::SubnetRouteTableAssociation": ["ec2:AssociateRouteTable", "ec2:DisassociateRouteTable"],
    "AWS::EC2::VPCEndpoint": [
        "ec2:CreateVpcEndpoint",
        "ec2:DescribeVpcEndpoints",
        "ec2:ModifyVpcEndpoint",
        "ec2:DeleteVpcEndpoints",
        "ec2:DescribePrefixLists",
    ],
    "AWS::EC2::SecurityGroup": [
        "ec2:CreateSecurityGroup",
        "ec2:DescribeSecurityGroups",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:DeleteSecurityGroup",
    ],
    "AWS::EC2::SecurityGroupEgress": [
        "ec2:AuthorizeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:DescribeSecurityGroupRules",
    ],
    "AWS::EFS::FileSystem": [
        "elasticfilesystem:CreateFileSystem",
        "elasticfilesystem:DescribeFileSystems",
        "elasticfilesystem:PutFileSystemPolicy",
        "elasticfilesystem:PutBackupPolicy",
        "elasticfilesystem:TagResource",
        "elasticfilesystem:DeleteFileSystem",
        "kms:DescribeKey",
    ],
    "AWS::EFS::MountTarget": [
        "elasticfilesystem:CreateMountTarget",
        "elasticfilesystem:DescribeMountTargets",
        "elasticfilesystem:DeleteMountTarget",
        "ec2:DescribeSubnets",
        "ec2:DescribeNetworkInterfaces",
        # EFS creates (and deletes) the mount target's network interface with the caller's permissions:
        # https://docs.aws.amazon.com/efs/latest/ug/API_CreateMountTarget.html,
        # https://docs.aws.amazon.com/efs/latest/ug/API_DeleteMountTarget.html
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
    ],
    "AWS::EFS::AccessPoint": [
        "elasticfilesystem:CreateAccessPoint",
        "elasticfilesystem:DescribeAccessPoints",
        "elasticfilesystem:DeleteAccessPoint",
        "elasticfilesystem:TagResource",
    ],
    "AWS::S3::Bucket": [
        "s3:CreateBucket",
        "s3:PutEncryptionConfiguration",
        "s3:PutBucketPublicAccessBlock",
        "s3:PutBucketVersioning",
        "s3:PutBucketOwnershipControls",
        "s3:PutLifecycleConfiguration",
        "s3:PutBucketTagging",
        "s3:DeleteBucket",
    ],
    "AWS::Logs::LogGroup": [
        "logs:CreateLogGroup",
        "logs:PutRetentionPolicy",
        "logs:DescribeLogGroups",
        "logs:DeleteLogGroup",
        "logs:TagResource",
    ],
    "AWS::IAM::Role": [
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "iam:GetRole",
        "iam:TagRole",
        "iam:DeleteRolePolicy",
        "iam:DeleteRole",
        "iam:PassRole",
    ],
    "AWS::Lambda::Function": [
        "lambda:CreateFunction",
        "lambda:GetFunction",
        "lambda:UpdateFunctionConfiguration",
        "lambda:UpdateFunctionCode",
        "lambda:TagResource",
        "lambda:DeleteFunction",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcs",
        # without it CloudFormation does not wait for a deleted VPC function's network interfaces, and the
        # storage stack's subnets and security groups then fail to delete:
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-lambda-function-vpcconfig.html
        "ec2:DescribeNetworkInterfaces",
        "elasticfilesystem:DescribeMountTargets",
        "s3:GetObject",
    ],
    "AWS::Lambda::Version": [
        "lambda:PublishVersion",
        "lambda:ListVersionsByFunction",
        "lambda:GetFunctionConfiguration",
    ],
    "AWS::Lambda::Alias": [
        "lambda:CreateAlias",
        "lambda:UpdateAlias",
        "lambda:GetAlias",
        "lambda:DeleteAlias",
        "lambda:PutProvisionedConcurrencyConfig",
        "lambda:GetProvisionedConcurrencyConfig",
        "lambda:DeleteProvisionedConcurrencyConfig",
    ],
    "AWS::Lambda::Permission": ["lambda:AddPermission", "lambda:RemovePermission", "lambda:GetPolicy"],
    "AWS::ApiGatewayV2::Api": [
        "apigateway:POST",
        "apigateway:GET",
        "apigateway:PATCH",
        "apigateway:DELETE",
        "apigateway:PUT",
    ],
    "AWS::ApiGatewayV2::ApiGatewayManagedOverrides": [
        "apigateway:GET",
        "apigateway:PATCH",
        "apigateway:DELETE",
    ],
    # cloudformation/sagemaker.yaml: the AWS::SageMaker::* resource schemas' handler permissions
    "AWS::SageMaker::Model": [
        "sagemaker:CreateModel",
        "sagemaker:DescribeModel",
        "sagemaker:DeleteModel",
        "sagemaker:AddTags",
        "iam:PassRole",
    ],
    "AWS::SageMaker::EndpointConfig": [
        "sagemaker:CreateEndpointConfig",
        "sagemaker:DescribeEndpointConfig",
        "sagemaker:DeleteEndpointConfig",
        "sagemaker:AddTags",
    ],
    "AWS::SageMaker::Endpoint": [
        "sagemaker:CreateEndpoint",
        "sagemaker:DescribeEndpoint",
        "sagemaker:DeleteEndpoint",
        "sagemaker:AddTags",
    ],
}


@cache
def allowed_actions() -> frozenset[str]:
    policy = json.loads(POLICY.read_text())
    actions = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and set(statement.get("Condition", {})) <= {"StringEquals"}, (
            "keep the learner policy to Allow statements, conditions only StringEquals (the preflight simulates "
            "them with matching context entries)"
        )
        actions.update([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    return frozenset(actions)


@cache
def api_methods(service: str) -> dict[str, str]:
    """``{python method name: operation name}`` of a boto3 client (no network: the model ships with botocore)."""
    client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return dict(client.meta.method_to_api_mapping)


def waiter_operation(service: str, waiter: str) -> str:
    client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client.get_waiter(waiter).config.operation


def to_actions(service: str, operation: str) -> list[str]:
    if service == SDK:
        assert operation in SDK_ACTIONS, f"add the sagemaker SDK's {operation} to SDK_ACTIONS (what it calls)"
        return SDK_ACTIONS[operation]
    if (service, operation) in OPERATION_ACTIONS:
        return OPERATION_ACTIONS[(service, operation)]
    if service == "apigatewayv2":  # HTTP APIs are authorised by HTTP verb on the API's path
        verb = {"Get": "GET", "Create": "POST", "Update": "PATCH", "Delete": "DELETE", "Tag": "POST"}
        return [f"apigateway:{v}" for k, v in verb.items() if operation.startswith(k)][:1]
    return [f"{PREFIX.get(service, service)}:{operation}"]


def _client_service(node: ast.AST, known: dict[str, str], factories: dict[str, str]) -> str | None:
    """The service of an expression that makes or names a client, if it is one."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "client":
        if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            return node.args[0].value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in factories:
        return factories[node.func.id]
    if isinstance(node, ast.Name):
        return known.get(node.id) or VARIABLE_SERVICES.get(node.id)
    if isinstance(node, ast.BoolOp):  # lam = client or session.client("lambda")
        return next((s for s in (_client_service(v, known, factories) for v in node.values) if s), None)
    return None


def calls_in(source: str) -> set[tuple[str, str]]:
    """``{(service, operation or helper method)}`` of the boto3 calls in one module or notebook."""
    tree = ast.parse(source)
    factories: dict[str, str] = {}
    for fn in ast.walk(
        tree
    ):  # functions that return a client: def _cfn(): return session.client("cloudformation")
        if isinstance(fn, ast.FunctionDef):
            for ret in ast.walk(fn):
                if isinstance(ret, ast.Return) and ret.value is not None:
                    service = _client_service(ret.value, {}, {})
                    if service:
                        factories[fn.name] = service
    known: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            service = _client_service(node.value, known, factories)
            for target in node.targets:
                if isinstance(target, ast.Name) and service:
                    known[target.id] = service
                if (
                    isinstance(target, ast.Tuple)
                    and isinstance(node.value, ast.GeneratorExp)
                    and isinstance(node.value.generators[0].iter, ast.Tuple)
                ):
                    services = [
                        e.value for e in node.value.generators[0].iter.elts if isinstance(e, ast.Constant)
                    ]
                    for name, svc in zip(target.elts, services, strict=False):
                        if isinstance(name, ast.Name):
                            known[name.id] = svc
    found = _sdk_calls(tree) if "sagemaker.core" in source else set()
    calls = {id(n.func): n for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):  # client.method, called or passed on (retry(s3.head_object, ...))
        if not isinstance(node, ast.Attribute):
            continue
        service = _client_service(node.value, known, factories)
        if service is None:
            continue
        method, call = node.attr, calls.get(id(node))
        args = call.args if call is not None else []
        argument = args[0].value if args and isinstance(args[0], ast.Constant) else None
        if method == "get_paginator" and isinstance(argument, str):
            found.add((service, api_methods(service).get(argument, argument)))
        elif method == "get_waiter" and isinstance(argument, str):
            found.add((service, waiter_operation(service, argument)))
        elif method in api_methods(service):
            found.add((service, api_methods(service)[method]))
        elif (service, method) in OPERATION_ACTIONS:
            found.add((service, method))
    return found


def _sdk_class(node: ast.AST, instances: dict[str, str]) -> tuple[str, bool] | None:
    """(class, is_instance) of an SDK resource class (``Model``, ``resources.Model``) or of a variable
    holding what one returned (``endpoint = Endpoint.get(...)``)."""
    if isinstance(node, ast.Name) and node.id in SDK_CLASSES:
        return node.id, False
    if isinstance(node, ast.Attribute) and node.attr in SDK_CLASSES:
        return node.attr, False
    if isinstance(node, ast.Name) and node.id in instances:
        return instances[node.id], True
    return None


def _sdk_calls(tree: ast.AST) -> set[tuple[str, str]]:
    instances: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            made = _sdk_class(func.value, {}) if isinstance(func, ast.Attribute) else None
            if made and func.attr in ("get", "create"):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        instances[target.id] = made[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = _sdk_class(node.func.value, instances)
            if owner:
                found.add((SDK, f"{owner[0]}.{node.func.attr}"))
    return found


def workshop_sources() -> dict[str, str]:
    sources = {}
    for path in sorted((REPO_ROOT / "helpers").rglob("*.py")) + sorted(
        (REPO_ROOT / "functions").rglob("*.py")
    ):
        if (
            "local" not in path.relative_to(REPO_ROOT / "helpers").parts
            if path.is_relative_to(REPO_ROOT / "helpers")
            else True
        ):
            sources[str(path.relative_to(REPO_ROOT))] = path.read_text()
    for notebook in sorted(REPO_ROOT.glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        lines = [
            line for cell in code for line in cell.splitlines() if not line.lstrip().startswith(("%", "!"))
        ]
        sources[notebook.name] = "\n".join(lines)
    return sources


def test_the_walk_finds_the_calls_it_must_see():
    """The walker itself: every pattern the workshop uses is recognised (else the next test proves nothing)."""
    source = """
from helpers import session
def _cfn():
    return session.client("cloudformation")
def waits(lam, name):
    lam.get_waiter("function_updated").wait(FunctionName=name)
cfn, s3 = (session.client(s) for s in ("cloudformation", "s3"))
logs = session.client("logs")
logs.get_paginator("describe_log_groups").paginate()
_cfn().delete_stack(StackName="x")
s3.upload_file("a", "b", "c")
session.client("lambda").invoke(FunctionName="f")
"""
    assert calls_in(source) == {
        ("lambda", "GetFunctionConfiguration"),
        ("logs", "DescribeLogGroups"),
        ("cloudformation", "DeleteStack"),
        ("s3", "upload_file"),
        ("lambda", "Invoke"),
    }


def test_the_walk_finds_the_sagemaker_sdks_calls():
    source = """
from sagemaker.core import resources
from sagemaker.core.resources import Endpoint
model = resources.Model.create(model_name="m")
endpoint = Endpoint.get(endpoint_name="e")
endpoint.invoke(body=b"x")
"""
    assert {c for c in calls_in(source) if c[0] == SDK} == {
        (SDK, "Model.create"),
        (SDK, "Endpoint.get"),
        (SDK, "Endpoint.invoke"),
    }
    with pytest.raises(AssertionError, match="add the sagemaker SDK's Endpoint.delete to SDK_ACTIONS"):
        to_actions(SDK, "Endpoint.delete")


def test_every_boto3_call_of_the_workshop_is_allowed_by_the_learner_policy():
    missing, seen = {}, set()
    for name, source in workshop_sources().items():
        for service, operation in calls_in(source):
            seen.add((service, operation))
            for action in to_actions(service, operation):
                if action not in allowed_actions() and action != "sts:GetCallerIdentity":
                    missing.setdefault(action, []).append(name)
    assert len(seen) >= 25, f"the walk found only {sorted(seen)}: it lost track of the workshop's calls"
    assert {(SDK, "Model.create"), (SDK, "Endpoint.invoke")} <= seen, "the walk lost 05's sagemaker SDK calls"
    assert not missing, f"add these actions to {POLICY.name}: " + "; ".join(
        f"{action} (used in {', '.join(sorted(set(files)))})" for action, files in sorted(missing.items())
    )


@pytest.mark.parametrize(
    "template", sorted((REPO_ROOT / "cloudformation").glob("*.yaml")), ids=lambda p: p.name
)
def test_every_resource_type_of_the_templates_can_be_created_and_deleted(template: Path):
    types = {res["Type"] for res in load_template(template)["Resources"].values()}
    unknown = sorted(types - set(RESOURCE_ACTIONS))
    assert not unknown, (
        f"{template.name} creates {unknown}: add their actions to RESOURCE_ACTIONS and the policy"
    )
    missing = sorted({a for t in types for a in RESOURCE_ACTIONS[t] if a not in allowed_actions()})
    assert not missing, f"add these actions to {POLICY.name} for {template.name}: {', '.join(missing)}"


def test_the_policy_fits_a_managed_policy_and_scopes_iam_to_the_workshops_roles():
    text = json.dumps(json.loads(POLICY.read_text()), separators=(",", ":"))
    assert len(text) <= 6144  # IAM's managed policy size limit, whitespace excluded
    iam = [
        s
        for s in json.loads(POLICY.read_text())["Statement"]
        if any(a.startswith("iam:") and a != "iam:SimulatePrincipalPolicy" for a in s["Action"])
        and s["Action"] != ["iam:CreateServiceLinkedRole"]
    ]
    assert iam and all(s["Resource"] == "arn:aws:iam::*:role/lambda-efs-*" for s in iam)


# The first file system and the first API of a fresh account make their service's service-linked role, with the
# caller's iam:CreateServiceLinkedRole: https://docs.aws.amazon.com/efs/latest/ug/using-service-linked-roles.html,
# https://docs.aws.amazon.com/apigateway/latest/developerguide/using-service-linked-roles.html
SERVICE_LINKED = {
    "AWS::EFS::FileSystem": "elasticfilesystem.amazonaws.com",
    "AWS::ApiGatewayV2::Api": "ops.apigateway.amazonaws.com",
}


def test_a_fresh_account_may_create_the_service_linked_roles_of_efs_and_api_gateway_and_no_other():
    types = {
        res["Type"]
        for path in (REPO_ROOT / "cloudformation").glob("*.yaml")
        for res in load_template(path)["Resources"].values()
    }
    assert set(SERVICE_LINKED) <= types
    [statement] = [
        s for s in json.loads(POLICY.read_text())["Statement"] if "iam:CreateServiceLinkedRole" in s["Action"]
    ]
    assert statement["Action"] == ["iam:CreateServiceLinkedRole"]
    assert statement["Resource"] == "arn:aws:iam::*:role/aws-service-role/*"
    assert statement["Condition"] == {"StringEquals": {"iam:AWSServiceName": sorted(SERVICE_LINKED.values())}}
