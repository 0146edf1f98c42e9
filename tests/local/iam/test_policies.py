"""Callers get what their policies allow, as AWS decides, through real boto3 requests to moto behind
the IAM gate: users, roles and sessions; resource-based policies; the policy simulator."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import botocore.exceptions
import pytest
from botocore.config import Config

from helpers.config import REPO_ROOT
from localaws.iam import Allowed, Authorizer
from tests.conftest import lambda_zip

ACCT = "123456789012"
LEARNER = (REPO_ROOT / "policies" / "learner-policy.json").read_text()
NO_RETRY = Config(retries={"max_attempts": 1})
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def user_with(gate, name: str, *policies: str) -> dict:
    iam = gate.client("iam")
    iam.create_user(UserName=name)
    for i, policy in enumerate(policies):
        iam.put_user_policy(UserName=name, PolicyName=f"p{i}", PolicyDocument=policy)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def refused(fn) -> botocore.exceptions.ClientError:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        fn()
    return caught.value


def function(gate, name: str) -> str:
    iam = gate.client("iam")
    try:
        role = iam.get_role(RoleName="lambda-efs-test-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(
            RoleName="lambda-efs-test-role", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
        )["Role"]["Arn"]
    code = {"ZipFile": lambda_zip("def handler(e, c):\n    return e\n")}
    return gate.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler", Code=code
    )["FunctionArn"]


@pytest.fixture(scope="module")
def nobody(gate):
    return user_with(gate, "iam-nobody")


@pytest.mark.parametrize(
    "service,call,code,action",
    [
        ("lambda", lambda c: c.list_functions(), "AccessDeniedException", "lambda:ListFunctions"),
        ("s3", lambda c: c.list_buckets(), "AccessDenied", "s3:ListAllMyBuckets"),
        ("ec2", lambda c: c.describe_vpcs(), "UnauthorizedOperation", "ec2:DescribeVpcs"),
        ("iam", lambda c: c.list_roles(), "AccessDenied", "iam:ListRoles"),
        ("cloudformation", lambda c: c.list_stacks(), "AccessDenied", "cloudformation:ListStacks"),
        ("logs", lambda c: c.describe_log_groups(), "AccessDeniedException", "logs:DescribeLogGroups"),
        ("sagemaker", lambda c: c.list_endpoints(), "AccessDeniedException", "sagemaker:ListEndpoints"),
        ("apigatewayv2", lambda c: c.get_apis(), "AccessDeniedException", "apigateway:GET"),
        ("efs", lambda c: c.describe_file_systems(), "AccessDeniedException", None),
        (
            "sts",
            lambda c: c.assume_role(
                RoleArn=f"arn:aws:iam::{ACCT}:role/lambda-efs-test-role", RoleSessionName="s1"
            ),
            "AccessDenied",
            "sts:AssumeRole",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and ":" not in v and v[0].islower() else "",
)
def test_a_user_without_policies_is_refused_everywhere_with_the_services_error(
    gate, nobody, service, call, code, action
):
    err = refused(lambda: call(gate.client(service, nobody, config=NO_RETRY)))
    assert err.response["Error"]["Code"] == code
    if action:
        assert (
            f"User: arn:aws:iam::{ACCT}:user/iam-nobody is not authorized to perform: {action} on resource: "
            in err.response["Error"]["Message"]
        )


def test_get_caller_identity_needs_no_permission(gate, nobody):
    assert gate.client("sts", nobody).get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCT}:user/iam-nobody"


def test_the_learner_policy_allows_the_workshops_calls_and_no_more(gate):
    learner = user_with(gate, "iam-learner", LEARNER)
    arn = function(gate, "lambda-efs-iam-learner")
    lam = gate.client("lambda", learner, config=NO_RETRY)
    assert lam.invoke(FunctionName="lambda-efs-iam-learner")["StatusCode"] == 200
    assert lam.get_function(FunctionName=arn)["Configuration"]["FunctionName"] == "lambda-efs-iam-learner"
    err = refused(lambda: gate.client("iam", learner, config=NO_RETRY).create_user(UserName="x"))
    assert (
        err.response["Error"]["Code"] == "AccessDenied"
        and "iam:CreateUser" in err.response["Error"]["Message"]
    )


def test_create_mount_target_also_needs_the_network_interface_actions(gate):
    """API_CreateMountTarget.html: without ec2:CreateNetworkInterface (the learner policy before issue 18's
    audit) the call is refused; with the learner policy it passes authorization (and fails on the subnet)."""
    fs = gate.client("efs").create_file_system(CreationToken="iam-mount")["FileSystemId"]
    before = gate.client("efs", user_with(gate, "iam-mount-before", without_eni(LEARNER)), config=NO_RETRY)
    err = refused(lambda: before.create_mount_target(FileSystemId=fs, SubnetId="subnet-12345678"))
    assert err.response["Error"]["Code"] == "AccessDeniedException"
    assert (
        err.response["Error"]["Message"]
        == "User is not authorized to perform that action on the specified resource"
    )
    now = gate.client("efs", user_with(gate, "iam-mount", LEARNER), config=NO_RETRY)
    err = refused(lambda: now.create_mount_target(FileSystemId=fs, SubnetId="subnet-12345678"))
    assert err.response["Error"]["Code"] == "SubnetNotFound"


def without_eni(policy: str) -> str:
    document = json.loads(policy)
    for statement in document["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != "ec2:CreateNetworkInterface"]
    return json.dumps(document)


def test_a_logs_only_function_role_cannot_update_another_function(gate):
    """Issue 18: a function acts as its execution role; one allowed only logs gets AccessDeniedException."""
    iam = gate.client("iam")
    role = iam.create_role(RoleName="iam-logs-only", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))[
        "Role"
    ]["Arn"]
    iam.put_role_policy(
        RoleName="iam-logs-only",
        PolicyName="logs",
        PolicyDocument=doc(
            {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}
        ),
    )
    victim = function(gate, "iam-victim")
    env = gate.authorizer.credentials_for_role(role, "iam-attacker")
    creds = {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "aws_session_token": env["AWS_SESSION_TOKEN"],
    }
    assert (
        gate.client("sts", creds).get_caller_identity()["Arn"]
        == f"arn:aws:sts::{ACCT}:assumed-role/iam-logs-only/iam-attacker"
    )
    err = refused(
        lambda: gate.client("lambda", creds, config=NO_RETRY).update_function_code(
            FunctionName=victim, ZipFile=lambda_zip("x = 1\n")
        )
    )
    assert err.response["Error"]["Code"] == "AccessDeniedException"
    assert err.response["Error"]["Message"] == (
        f"User: arn:aws:sts::{ACCT}:assumed-role/iam-logs-only/iam-attacker is not authorized to perform: "
        f"lambda:UpdateFunctionCode on resource: {victim} because no identity-based policy allows the lambda:UpdateFunctionCode action"
    )
    logs = gate.client("logs")
    logs.create_log_group(logGroupName="/aws/lambda/iam-attacker")
    gate.client("logs", creds).create_log_stream(logGroupName="/aws/lambda/iam-attacker", logStreamName="s")


def test_credentials_are_issued_only_for_roles_the_service_may_assume(gate):
    from localaws.iam import RoleNotAssumable

    role = gate.client("iam").create_role(RoleName="iam-untrusting", AssumeRolePolicyDocument=doc())["Role"][
        "Arn"
    ]
    with pytest.raises(RoleNotAssumable):
        gate.authorizer.credentials_for_role(role, "f")


def test_assume_role_follows_the_trust_policy(gate):
    iam = gate.client("iam")
    alice = user_with(
        gate, "iam-alice", doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})
    )
    trusts_alice = doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCT}:user/iam-alice"},
            "Action": "sts:AssumeRole",
        }
    )
    iam.create_role(RoleName="iam-trusts-alice", AssumeRolePolicyDocument=trusts_alice)
    iam.create_role(RoleName="iam-trusts-lambda", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    sts = gate.client("sts", alice, config=NO_RETRY)
    assert sts.assume_role(RoleArn=f"arn:aws:iam::{ACCT}:role/iam-trusts-alice", RoleSessionName="ok")[
        "Credentials"
    ]
    for role in ("iam-trusts-lambda", "iam-does-not-exist"):
        err = refused(
            lambda r=role: sts.assume_role(RoleArn=f"arn:aws:iam::{ACCT}:role/{r}", RoleSessionName="no")
        )
        assert (
            err.response["Error"]["Code"] == "AccessDenied"
            and "because no resource-based policy allows the sts:AssumeRole action"
            in err.response["Error"]["Message"]
        )
    err = refused(
        lambda: gate.client("sts", config=NO_RETRY).assume_role(
            RoleArn=f"arn:aws:iam::{ACCT}:role/iam-trusts-alice", RoleSessionName="root"
        )
    )
    assert err.response["Error"]["Message"] == "Roles may not be assumed by root accounts."


def test_a_session_policy_limits_the_session(gate):
    iam = gate.client("iam")
    bob = user_with(gate, "iam-bob", doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}))
    trust = doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCT}:user/iam-bob"},
            "Action": "sts:AssumeRole",
        }
    )
    iam.create_role(RoleName="iam-lister", AssumeRolePolicyDocument=trust)
    iam.put_role_policy(
        RoleName="iam-lister",
        PolicyName="p",
        PolicyDocument=doc(
            {"Effect": "Allow", "Action": ["lambda:ListFunctions", "s3:ListAllMyBuckets"], "Resource": "*"}
        ),
    )
    session = doc({"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"})
    creds = gate.client("sts", bob).assume_role(
        RoleArn=f"arn:aws:iam::{ACCT}:role/iam-lister", RoleSessionName="limited", Policy=session
    )["Credentials"]
    temp = {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }
    gate.client("lambda", temp).list_functions()
    err = refused(lambda: gate.client("s3", temp, config=NO_RETRY).list_buckets())
    assert (
        "because no session policy allows the s3:ListAllMyBuckets action" in err.response["Error"]["Message"]
    )


def test_pass_role_is_checked_when_a_role_is_handed_to_lambda(gate):
    no_pass = json.loads(LEARNER)
    no_pass["Statement"] = [s for s in no_pass["Statement"] if "iam:PassRole" not in s["Action"]]
    carol = user_with(gate, "iam-carol", json.dumps(no_pass))
    role = gate.client("iam").create_role(
        RoleName="lambda-efs-passed", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
    )["Role"]["Arn"]
    lam = gate.client("lambda", carol, config=NO_RETRY)
    code = {"ZipFile": lambda_zip("def handler(e, c):\n    return e\n")}
    err = refused(
        lambda: lam.create_function(
            FunctionName="lambda-efs-carol", Runtime="python3.12", Role=role, Handler="app.handler", Code=code
        )
    )
    assert (
        f"is not authorized to perform: iam:PassRole on resource: {role}" in err.response["Error"]["Message"]
    )


def test_bucket_policies_allow_by_name_and_deny_even_the_root_user(gate):
    s3 = gate.client("s3")
    s3.create_bucket(Bucket="iam-shared-bucket")
    s3.put_object(Bucket="iam-shared-bucket", Key="public/a", Body=b"a")
    s3.put_object(Bucket="iam-shared-bucket", Key="secret/b", Body=b"b")
    dave = user_with(gate, "iam-dave")
    s3.put_bucket_policy(
        Bucket="iam-shared-bucket",
        Policy=doc(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCT}:user/iam-dave"},
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::iam-shared-bucket/*",
            },
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::iam-shared-bucket/public/*",
            },
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::iam-shared-bucket/secret/*",
            },
        ),
    )
    assert (
        gate.client("s3", dave).get_object(Bucket="iam-shared-bucket", Key="public/a")["Body"].read() == b"a"
    )
    err = refused(lambda: s3.get_object(Bucket="iam-shared-bucket", Key="secret/b"))
    assert err.response["Error"]["Code"] == "AccessDenied" and err.response["Error"]["Message"].endswith(
        "with an explicit deny in a resource-based policy"
    )
    assert (
        'on resource: "arn:aws:s3:::iam-shared-bucket/secret/b" with' in err.response["Error"]["Message"]
    )  # S3 quotes it
    assert (
        urllib.request.urlopen(f"{gate.url}/iam-shared-bucket/public/a").read() == b"a"
    )  # anonymous, allowed by "*"
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{gate.url}/iam-shared-bucket/secret/b")
    assert (
        caught.value.code == 403
        and b"<Code>AccessDenied</Code><Message>Access Denied</Message>" in caught.value.read()
    )


def test_a_function_policy_lets_api_gateway_invoke(gate):
    arn = function(gate, "iam-behind-api")
    source = f"arn:aws:execute-api:us-east-1:{ACCT}:abc123/*/*/infer"
    gate.client("lambda").add_permission(
        FunctionName="iam-behind-api",
        StatementId="apigw",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=source,
    )
    assert gate.authorizer.service_allowed(
        "apigateway.amazonaws.com",
        "lambda:InvokeFunction",
        arn,
        f"arn:aws:execute-api:us-east-1:{ACCT}:abc123/$default/POST/infer",
    )
    assert not gate.authorizer.service_allowed(
        "apigateway.amazonaws.com",
        "lambda:InvokeFunction",
        arn,
        f"arn:aws:execute-api:us-east-1:{ACCT}:zzz999/$default/POST/infer",
    )


def test_the_policy_simulator_answers_with_the_same_evaluator(gate):
    user_with(gate, "iam-simulated", LEARNER)
    iam = gate.client("iam")
    pages = iam.get_paginator("simulate_principal_policy").paginate(
        PolicySourceArn=f"arn:aws:iam::{ACCT}:user/iam-simulated",
        ActionNames=["lambda:InvokeFunction", "ec2:CreateNetworkInterface", "iam:CreateUser"],
        ResourceArns=[f"arn:aws:lambda:us-east-1:{ACCT}:function:lambda-efs-infer"],
        PaginationConfig={"PageSize": 2},
    )
    results = {r["EvalActionName"]: r["EvalDecision"] for page in pages for r in page["EvaluationResults"]}
    assert results == {
        "lambda:InvokeFunction": "allowed",
        "ec2:CreateNetworkInterface": "allowed",
        "iam:CreateUser": "implicitDeny",
    }
    custom = iam.simulate_custom_policy(
        PolicyInputList=[
            doc(
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:username": "x"}},
                }
            )
        ],
        ActionNames=["s3:GetObject"],
    )["EvaluationResults"][0]
    assert custom["EvalDecision"] == "implicitDeny" and custom["MissingContextValues"] == []
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.simulate_principal_policy(
            PolicySourceArn=f"arn:aws:iam::{ACCT}:user/iam-nobody-at-all", ActionNames=["s3:GetObject"]
        )


def test_the_simulator_itself_needs_permission(gate, nobody):
    err = refused(
        lambda: gate.client("iam", nobody, config=NO_RETRY).simulate_principal_policy(
            PolicySourceArn=f"arn:aws:iam::{ACCT}:user/iam-nobody", ActionNames=["s3:GetObject"]
        )
    )
    assert "iam:SimulatePrincipalPolicy" in err.response["Error"]["Message"]


def test_enforcement_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("LOCALAWS_IAM", "off")
    authorizer = Authorizer()
    untouched = object()
    environ = {"REQUEST_METHOD": "GET", "HTTP_AUTHORIZATION": "garbage", "wsgi.input": untouched}
    assert authorizer.check(environ) == Allowed(None) and environ["wsgi.input"] is untouched
    assert authorizer.describe()["enforced"] is False


def test_a_large_request_body_is_still_read_for_its_parameters(gate):
    """CreateFunction's Role is in its JSON body, past 1 MiB with a 1 MB zip (1.3 MB in base64): PassRole is still checked."""
    import os

    no_pass = json.loads(LEARNER)
    no_pass["Statement"] = [s for s in no_pass["Statement"] if "iam:PassRole" not in s["Action"]]
    erin = user_with(gate, "iam-erin", json.dumps(no_pass))
    role = gate.client("iam").create_role(
        RoleName="lambda-efs-big", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
    )["Role"]["Arn"]
    code = {
        "ZipFile": lambda_zip(
            {
                "app.py": "def handler(e, c):\n    return e\n",
                "blob.bin": os.urandom(1_000_000),
            }
        )
    }
    lam = gate.client("lambda", erin, config=NO_RETRY)
    err = refused(
        lambda: lam.create_function(
            FunctionName="lambda-efs-big", Runtime="python3.12", Role=role, Handler="app.handler", Code=code
        )
    )
    assert (
        f"is not authorized to perform: iam:PassRole on resource: {role}" in err.response["Error"]["Message"]
    )
