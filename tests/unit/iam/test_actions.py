"""Real boto3 requests of the workshop -> operation -> IAM action(s) and resource ARN(s).

Each request is built by boto3 itself and captured before it is sent, so the routing reads exactly what
the server would receive."""

from __future__ import annotations

import boto3
import pytest

from localaws.iam import reference, sigv4
from localaws.iam.actions import Check, checks
from localaws.iam.operations import Operation, model, route
from tests.unit.test_learner_policy import SDK, calls_in, to_actions, workshop_sources

REGION, ACCT = "us-east-1", "123456789012"
FN = f"arn:aws:lambda:{REGION}:{ACCT}:function:lambda-efs-infer"
ROLE = f"arn:aws:iam::{ACCT}:role/lambda-efs-infer-role"


class Captured(Exception):
    pass


def environ_of(service: str, method: str, **kwargs) -> tuple[dict, bytes]:
    """The WSGI environ the server would see for this boto3 call (captured, never sent)."""
    client = boto3.client(
        service,
        region_name=REGION,
        endpoint_url="http://127.0.0.1:4700",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )

    def capture(request, **_):
        raise Captured(request)

    client.meta.events.register_last("before-send", capture)
    with pytest.raises(Captured) as exc:
        getattr(client, method)(**kwargs)
    req = exc.value.args[0]
    body = (
        req.body
        if isinstance(req.body, bytes)
        else (req.body.read() if hasattr(req.body, "read") else (req.body or "").encode())
    )
    target = req.url.split("127.0.0.1:4700", 1)[1]
    environ = {
        "REQUEST_METHOD": req.method,
        "RAW_URI": target,
        "QUERY_STRING": target.partition("?")[2],
        "HTTP_HOST": "127.0.0.1:4700",
    }
    for name, value in req.headers.items():
        value = value.decode() if isinstance(value, bytes) else value
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    return environ, body


def wire_checks(service: str, method: str, **kwargs) -> list[tuple[str, str]]:
    environ, body = environ_of(service, method, **kwargs)
    signed = sigv4.parse(environ)
    op = route(environ, signed.service, body)
    assert op is not None, (service, method)
    return [(c.action, c.resource) for c in checks(op, signed.region, ACCT)]


# fmt: off
CASES = [
    # (client, method, kwargs, operation, [(action, resource)])
    ("lambda", "invoke", {"FunctionName": "lambda-efs-infer", "Qualifier": "provisioned", "Payload": b"{}"}, "Invoke", [("lambda:InvokeFunction", FN + ":provisioned")]),
    ("lambda", "invoke", {"FunctionName": FN + ":on-demand", "Payload": b'{"FunctionName": "other"}'}, "Invoke", [("lambda:InvokeFunction", FN + ":on-demand")]),
    ("lambda", "get_function_configuration", {"FunctionName": "lambda-efs-infer"}, "GetFunctionConfiguration", [("lambda:GetFunctionConfiguration", FN)]),
    ("lambda", "list_functions", {}, "ListFunctions", [("lambda:ListFunctions", "*")]),
    ("lambda", "publish_version", {"FunctionName": "lambda-efs-infer"}, "PublishVersion", [("lambda:PublishVersion", FN)]),
    ("lambda", "put_provisioned_concurrency_config", {"FunctionName": "lambda-efs-infer", "Qualifier": "provisioned", "ProvisionedConcurrentExecutions": 1}, "PutProvisionedConcurrencyConfig", [("lambda:PutProvisionedConcurrencyConfig", FN + ":provisioned")]),
    ("lambda", "get_account_settings", {}, "GetAccountSettings", [("lambda:GetAccountSettings", "*")]),
    ("lambda", "update_function_configuration", {"FunctionName": "lambda-efs-infer", "MemorySize": 2048}, "UpdateFunctionConfiguration", [("lambda:UpdateFunctionConfiguration", FN)]),
    ("s3", "get_object", {"Bucket": "lambda-efs-art", "Key": "framework/a b.zip"}, "GetObject", [("s3:GetObject", "arn:aws:s3:::lambda-efs-art/framework/a b.zip")]),
    ("s3", "head_object", {"Bucket": "lambda-efs-art", "Key": "k"}, "HeadObject", [("s3:GetObject", "arn:aws:s3:::lambda-efs-art/k")]),
    ("s3", "put_object", {"Bucket": "lambda-efs-art", "Key": "k", "Body": b"x"}, "PutObject", [("s3:PutObject", "arn:aws:s3:::lambda-efs-art/k")]),
    ("s3", "list_object_versions", {"Bucket": "lambda-efs-art"}, "ListObjectVersions", [("s3:ListBucketVersions", "arn:aws:s3:::lambda-efs-art")]),
    ("s3", "list_objects_v2", {"Bucket": "lambda-efs-art", "Prefix": "model/"}, "ListObjectsV2", [("s3:ListBucket", "arn:aws:s3:::lambda-efs-art")]),
    ("s3", "list_buckets", {}, "ListBuckets", [("s3:ListAllMyBuckets", "*")]),
    ("s3", "get_bucket_versioning", {"Bucket": "lambda-efs-art"}, "GetBucketVersioning", [("s3:GetBucketVersioning", "arn:aws:s3:::lambda-efs-art")]),
    ("s3", "get_public_access_block", {"Bucket": "lambda-efs-art"}, "GetPublicAccessBlock", [("s3:GetBucketPublicAccessBlock", "arn:aws:s3:::lambda-efs-art")]),
    ("s3", "delete_object", {"Bucket": "lambda-efs-art", "Key": "k", "VersionId": "v1"}, "DeleteObject", [("s3:DeleteObjectVersion", "arn:aws:s3:::lambda-efs-art/k")]),
    ("s3", "create_multipart_upload", {"Bucket": "lambda-efs-art", "Key": "big"}, "CreateMultipartUpload", [("s3:PutObject", "arn:aws:s3:::lambda-efs-art/big")]),
    ("s3", "upload_part", {"Bucket": "lambda-efs-art", "Key": "big", "UploadId": "u", "PartNumber": 1, "Body": b"x"}, "UploadPart", [("s3:PutObject", "arn:aws:s3:::lambda-efs-art/big")]),
    ("efs", "describe_file_systems", {}, "DescribeFileSystems", [("elasticfilesystem:DescribeFileSystems", "*")]),
    ("efs", "describe_mount_targets", {"FileSystemId": "fs-12345678"}, "DescribeMountTargets", [("elasticfilesystem:DescribeMountTargets", f"arn:aws:elasticfilesystem:{REGION}:{ACCT}:file-system/fs-12345678")]),
    ("efs", "create_mount_target", {"FileSystemId": "fs-12345678", "SubnetId": "subnet-0123456789abcdef0"}, "CreateMountTarget", [
        ("elasticfilesystem:CreateMountTarget", f"arn:aws:elasticfilesystem:{REGION}:{ACCT}:file-system/fs-12345678"),
        ("ec2:DescribeSubnets", "*"), ("ec2:DescribeNetworkInterfaces", "*"), ("ec2:CreateNetworkInterface", f"arn:aws:ec2:{REGION}:{ACCT}:network-interface/*")]),
    ("efs", "describe_access_points", {"FileSystemId": "fs-12345678"}, "DescribeAccessPoints", [("elasticfilesystem:DescribeAccessPoints", f"arn:aws:elasticfilesystem:{REGION}:{ACCT}:file-system/fs-12345678")]),
    ("ec2", "describe_vpcs", {"Filters": [{"Name": "tag:Name", "Values": ["x"]}]}, "DescribeVpcs", [("ec2:DescribeVpcs", "*")]),
    ("iam", "get_role", {"RoleName": "lambda-efs-infer"}, "GetRole", [("iam:GetRole", f"arn:aws:iam::{ACCT}:role/lambda-efs-infer")]),
    ("iam", "simulate_principal_policy", {"PolicySourceArn": f"arn:aws:iam::{ACCT}:user/learner", "ActionNames": ["lambda:InvokeFunction"]}, "SimulatePrincipalPolicy", [("iam:SimulatePrincipalPolicy", f"arn:aws:iam::{ACCT}:user/learner")]),
    ("sts", "get_caller_identity", {}, "GetCallerIdentity", []),
    ("sts", "assume_role", {"RoleArn": f"arn:aws:iam::{ACCT}:role/r", "RoleSessionName": "s1"}, "AssumeRole", [("sts:AssumeRole", f"arn:aws:iam::{ACCT}:role/r")]),
    ("cloudformation", "create_stack", {"StackName": "lambda-efs-storage", "TemplateBody": "{}"}, "CreateStack", [("cloudformation:CreateStack", f"arn:aws:cloudformation:{REGION}:{ACCT}:stack/lambda-efs-storage/*")]),
    ("cloudformation", "describe_stack_events", {"StackName": "lambda-efs-storage"}, "DescribeStackEvents", [("cloudformation:DescribeStackEvents", f"arn:aws:cloudformation:{REGION}:{ACCT}:stack/lambda-efs-storage/*")]),
    ("cloudformation", "list_stacks", {}, "ListStacks", [("cloudformation:ListStacks", "*")]),
    ("logs", "describe_log_groups", {"logGroupNamePrefix": "/aws/lambda/"}, "DescribeLogGroups", [("logs:DescribeLogGroups", "*")]),
    ("logs", "filter_log_events", {"logGroupName": "/aws/lambda/lambda-efs-infer"}, "FilterLogEvents", [("logs:FilterLogEvents", f"arn:aws:logs:{REGION}:{ACCT}:log-group:/aws/lambda/lambda-efs-infer:log-stream:")]),
    ("logs", "get_log_events", {"logGroupName": "/aws/lambda/f", "logStreamName": "2026/01/01/[$LATEST]abc"}, "GetLogEvents", [("logs:GetLogEvents", f"arn:aws:logs:{REGION}:{ACCT}:log-group:/aws/lambda/f:log-stream:2026/01/01/[$LATEST]abc")]),
    ("sagemaker", "describe_endpoint", {"EndpointName": "lambda-efs-Serverless"}, "DescribeEndpoint", [("sagemaker:DescribeEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCT}:endpoint/lambda-efs-serverless")]),
    ("sagemaker", "list_endpoints", {}, "ListEndpoints", [("sagemaker:ListEndpoints", "*")]),
    ("sagemaker-runtime", "invoke_endpoint", {"EndpointName": "lambda-efs-x", "Body": b"{}"}, "InvokeEndpoint", [("sagemaker:InvokeEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCT}:endpoint/lambda-efs-x")]),
    ("apigatewayv2", "get_apis", {}, "GetApis", [("apigateway:GET", f"arn:aws:apigateway:{REGION}::/apis")]),
    ("apigatewayv2", "create_api", {"Name": "x", "ProtocolType": "HTTP"}, "CreateApi", [("apigateway:POST", f"arn:aws:apigateway:{REGION}::/apis")]),
    ("apigatewayv2", "delete_api", {"ApiId": "abc123"}, "DeleteApi", [("apigateway:DELETE", f"arn:aws:apigateway:{REGION}::/apis/abc123")]),
    ("apigatewayv2", "update_route", {"ApiId": "abc123", "RouteId": "r1", "RouteKey": "POST /x"}, "UpdateRoute", [("apigateway:PATCH", f"arn:aws:apigateway:{REGION}::/apis/abc123/routes/r1")]),
]
# fmt: on


@pytest.mark.parametrize(
    "service,method,kwargs,operation,expected", CASES, ids=[f"{c[0]}.{c[1]}" for c in CASES]
)
def test_request_maps_to_action_and_resource(service, method, kwargs, operation, expected):
    environ, body = environ_of(service, method, **kwargs)
    signed = sigv4.parse(environ)
    op = route(environ, signed.service, body)
    assert op is not None and op.name == operation, op
    assert [(c.action, c.resource) for c in checks(op, signed.region, ACCT)] == expected


def test_s3_virtual_host_request_routes_with_the_bucket_from_the_host():
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/a/b.txt?versionId=3",
        "QUERY_STRING": "versionId=3",
        "HTTP_HOST": "lambda-efs-art.localhost:4566",
    }
    op = route(environ, "s3", b"")
    assert op.name == "GetObject"
    assert [(c.action, c.resource) for c in checks(op, REGION, ACCT)] == [
        ("s3:GetObjectVersion", "arn:aws:s3:::lambda-efs-art/a/b.txt")
    ]


def test_delete_objects_checks_each_key_and_version():
    """API_DeleteObjects.html: s3:DeleteObject per key, s3:DeleteObjectVersion for a key given with its version."""
    objects = [{"Key": "a&b"}, {"Key": "c", "VersionId": "v1"}]
    assert wire_checks("s3", "delete_objects", Bucket="art", Delete={"Objects": objects}) == [
        ("s3:DeleteObject", "arn:aws:s3:::art/a&b"),
        ("s3:DeleteObjectVersion", "arn:aws:s3:::art/c"),
    ]


def test_copy_object_also_reads_its_source():
    got = wire_checks("s3", "copy_object", Bucket="dst", Key="k", CopySource={"Bucket": "src", "Key": "a b"})
    assert got == [("s3:PutObject", "arn:aws:s3:::dst/k"), ("s3:GetObject", "arn:aws:s3:::src/a b")]


def test_listing_passes_the_s3_condition_keys():
    environ, body = environ_of(
        "s3", "list_objects_v2", Bucket="art", Prefix="model/", Delimiter="/", MaxKeys=5
    )
    (check,) = checks(route(environ, "s3", body), REGION, ACCT)
    assert check.context == {"s3:prefix": ["model/"], "s3:delimiter": ["/"], "s3:max-keys": ["5"]}


@pytest.mark.parametrize(
    "service,method,kwargs,service_name",
    [
        (
            "lambda",
            "create_function",
            {
                "FunctionName": "f",
                "Role": ROLE,
                "Runtime": "python3.12",
                "Handler": "a.h",
                "Code": {"ZipFile": b"x"},
            },
            "lambda.amazonaws.com",
        ),
        (
            "lambda",
            "update_function_configuration",
            {"FunctionName": "f", "Role": ROLE},
            "lambda.amazonaws.com",
        ),
        (
            "sagemaker",
            "create_model",
            {"ModelName": "m", "ExecutionRoleArn": ROLE},
            "sagemaker.amazonaws.com",
        ),
        (
            "cloudformation",
            "create_stack",
            {"StackName": "s", "TemplateBody": "{}", "RoleARN": ROLE},
            "cloudformation.amazonaws.com",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and "." not in v else "",
)
def test_handing_a_role_to_a_service_needs_pass_role(service, method, kwargs, service_name):
    """id_roles_use_passrole.html: iam:PassRole on the role, with iam:PassedToService."""
    environ, body = environ_of(service, method, **kwargs)
    found = [
        c
        for c in checks(route(environ, sigv4.parse(environ).service, body), REGION, ACCT)
        if c.action == "iam:PassRole"
    ]
    assert found == [Check("iam:PassRole", ROLE, {"iam:passedtoservice": [service_name]})]
    without = {k: v for k, v in kwargs.items() if k not in ("Role", "ExecutionRoleArn", "RoleARN")}
    if method in ("update_function_configuration", "create_stack"):  # Role is optional there
        environ, body = environ_of(service, method, **without)
        assert all(
            c.action != "iam:PassRole"
            for c in checks(route(environ, sigv4.parse(environ).service, body), REGION, ACCT)
        )


def test_iam_role_arns_carry_the_roles_path():
    environ, body = environ_of("iam", "get_role", RoleName="r")
    (check,) = checks(
        route(environ, "iam", body),
        REGION,
        ACCT,
        lambda name: f"arn:aws:iam::{ACCT}:role/service-role/{name}",
    )
    assert check.resource == f"arn:aws:iam::{ACCT}:role/service-role/r"


@pytest.mark.parametrize(
    "method,kwargs,expected",
    [
        ("create_vpc", {"CidrBlock": "10.0.0.0/16"}, f"arn:aws:ec2:{REGION}:{ACCT}:vpc/*"),
        ("delete_vpc", {"VpcId": "vpc-1"}, f"arn:aws:ec2:{REGION}:{ACCT}:vpc/vpc-1"),
        (
            "create_tags",
            {"Resources": ["subnet-9"], "Tags": [{"Key": "k", "Value": "v"}]},
            f"arn:aws:ec2:{REGION}:{ACCT}:subnet/subnet-9",
        ),
        ("describe_subnets", {}, "*"),
    ],
)
def test_other_resources_come_from_the_service_authorization_reference(method, kwargs, expected):
    ((_, resource),) = wire_checks("ec2", method, **kwargs)
    assert resource == expected


def test_every_workshop_operation_maps_to_the_actions_the_learner_policy_test_expects():
    """The learner-policy test walks the workshop's boto3 calls and names their actions; the gate must
    derive the same ones (a missing or extra action here would make the learner run fail or pass wrongly)."""
    seen = set()
    for source in workshop_sources().values():
        seen |= calls_in(source)
    compared = 0
    for service, operation in sorted(seen):
        if service == SDK or operation not in model(service).operation_names:
            continue  # the sagemaker SDK's own calls; boto3's transfer helpers (upload_file)
        http = model(service).operation_model(operation).http
        params = {"Bucket": "b", "Key": "k"} if service == "s3" else {}
        derived = {
            c.action
            for c in checks(
                Operation(service, operation, params, http["method"], http["requestUri"]), REGION, ACCT
            )
        }
        expected = set(to_actions(service, operation)) - {"sts:GetCallerIdentity"}  # needs no permission
        assert derived <= expected and (derived or not expected), (service, operation, derived, expected)
        compared += 1
    assert compared >= 50


def test_every_action_the_gate_derives_exists():
    """Each action of CASES is named as the Service Authorization Reference names it."""
    for *_, expected in CASES:
        for action, _ in expected:
            assert reference.action_name(action) == action, action
