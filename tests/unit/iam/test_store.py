"""What the IAM room reads from moto's stores: keys, sessions, identity and resource-based policies.

The account is built through boto3 against moto's in-memory backends (``mock_aws``), as the server's
clients would build it."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws

from localaws.iam.store import MotoStore, NoSuchEntity
from tests.conftest import lambda_zip

ACCT = "123456789012"
TRUST_LAMBDA = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture
def aws():
    with mock_aws():
        yield lambda service: boto3.client(
            service, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )


def test_a_users_key_is_found_with_its_tags_and_status(aws):
    iam = aws("iam")
    iam.create_user(UserName="alice", Tags=[{"Key": "team", "Value": "ml"}])
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    record = MotoStore(ACCT).find_key(key["AccessKeyId"])
    assert record.active and record.session_token is None
    assert (record.caller.arn, record.caller.kind, record.caller.secret, record.caller.tags) == (
        f"arn:aws:iam::{ACCT}:user/alice",
        "user",
        key["SecretAccessKey"],
        {"team": "ml"},
    )
    iam.update_access_key(UserName="alice", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    assert not MotoStore(ACCT).find_key(key["AccessKeyId"]).active
    assert MotoStore(ACCT).find_key("AKIANOTHERE000000000") is None


def test_sessions_are_indexed_as_they_appear(aws):
    iam, sts = aws("iam"), aws("sts")
    iam.create_role(
        RoleName="r1", Path="/svc/", AssumeRolePolicyDocument=TRUST_LAMBDA, Tags=[{"Key": "k", "Value": "v"}]
    )
    store = MotoStore(ACCT)
    first = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCT}:role/svc/r1", RoleSessionName="one")["Credentials"]
    record = store.find_key(first["AccessKeyId"])
    assert (
        record.caller.arn == f"arn:aws:sts::{ACCT}:assumed-role/r1/one"
        and record.caller.role_arn == f"arn:aws:iam::{ACCT}:role/svc/r1"
    )
    assert record.session_token == first["SessionToken"] and record.caller.tags == {"k": "v"}
    assert abs(record.expires - (time.time() + 3600)) < 600  # AssumeRole's default hour, as epoch seconds
    policy = doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    second = sts.assume_role(
        RoleArn=f"arn:aws:iam::{ACCT}:role/svc/r1", RoleSessionName="two", Policy=policy
    )["Credentials"]
    assert store.find_key(second["AccessKeyId"]).caller.session_policy == policy


def test_a_users_policies_include_its_groups_and_managed_default_versions(aws):
    iam = aws("iam")
    iam.create_user(UserName="bob")
    iam.put_user_policy(
        UserName="bob",
        PolicyName="inline",
        PolicyDocument=doc({"Effect": "Allow", "Action": "a:A", "Resource": "*"}),
    )
    arn = iam.create_policy(
        PolicyName="managed", PolicyDocument=doc({"Effect": "Allow", "Action": "b:B1", "Resource": "*"})
    )["Policy"]["Arn"]
    iam.create_policy_version(
        PolicyArn=arn,
        PolicyDocument=doc({"Effect": "Allow", "Action": "b:B2", "Resource": "*"}),
        SetAsDefault=True,
    )
    iam.attach_user_policy(UserName="bob", PolicyArn=arn)
    iam.create_group(GroupName="g")
    iam.add_user_to_group(GroupName="g", UserName="bob")
    iam.put_group_policy(
        GroupName="g",
        PolicyName="gp",
        PolicyDocument=doc({"Effect": "Allow", "Action": "c:C", "Resource": "*"}),
    )
    documents = MotoStore(ACCT).policies_for_arn(f"arn:aws:iam::{ACCT}:user/bob").identity
    actions = sorted(json.loads(d)["Statement"][0]["Action"] for d in documents)
    assert actions == ["a:A", "b:B2", "c:C"]
    with pytest.raises(NoSuchEntity):
        MotoStore(ACCT).policies_for_arn(f"arn:aws:iam::{ACCT}:user/nobody")


def test_a_roles_policies_and_boundary(aws):
    iam = aws("iam")
    boundary = iam.create_policy(
        PolicyName="boundary", PolicyDocument=doc({"Effect": "Allow", "Action": "logs:*", "Resource": "*"})
    )["Policy"]["Arn"]
    iam.create_role(RoleName="bounded", AssumeRolePolicyDocument=TRUST_LAMBDA, PermissionsBoundary=boundary)
    iam.put_role_policy(
        RoleName="bounded",
        PolicyName="p",
        PolicyDocument=doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}),
    )
    policies = MotoStore(ACCT).policies_for_arn(f"arn:aws:iam::{ACCT}:role/bounded")
    assert len(policies.identity) == 1 and "logs:*" in policies.boundary


def test_resource_based_policies(aws):
    iam, lam, s3, efs = aws("iam"), aws("lambda"), aws("s3"), aws("efs")
    role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument=TRUST_LAMBDA)["Role"]["Arn"]
    code = {"ZipFile": lambda_zip("def handler(e, c):\n    return e\n")}
    lam.create_function(FunctionName="fn", Runtime="python3.12", Role=role, Handler="app.handler", Code=code)
    lam.add_permission(
        FunctionName="fn",
        StatementId="apigw",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
    )
    s3.create_bucket(Bucket="policy-bucket")
    s3.put_bucket_policy(
        Bucket="policy-bucket",
        Policy=doc(
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::policy-bucket/*"}
        ),
    )
    fs = efs.create_file_system(CreationToken="t")["FileSystemId"]
    efs.put_file_system_policy(
        FileSystemId=fs,
        Policy=doc(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "elasticfilesystem:ClientMount",
                "Resource": "*",
            }
        ),
    )
    store = MotoStore(ACCT)
    fn_arn = f"arn:aws:lambda:us-east-1:{ACCT}:function:fn"
    assert "apigateway.amazonaws.com" in store.resource_policy("lambda:InvokeFunction", fn_arn).document
    assert "Deny" in store.resource_policy("s3:GetObject", "arn:aws:s3:::policy-bucket/k").document
    assert (
        "ClientMount"
        in store.resource_policy(
            "elasticfilesystem:ClientMount", f"arn:aws:elasticfilesystem:us-east-1:{ACCT}:file-system/{fs}"
        ).document
    )
    trust = store.resource_policy("sts:AssumeRole", role)
    assert trust.trust and "lambda.amazonaws.com" in trust.document
    missing = store.resource_policy("sts:AssumeRole", f"arn:aws:iam::{ACCT}:role/missing")
    assert (
        missing.trust and json.loads(missing.document)["Statement"] == []
    )  # nobody may assume a role that does not exist
    assert store.resource_policy("s3:GetObject", "arn:aws:s3:::no-such-bucket/k") is None
    assert (
        store.resource_policy("lambda:InvokeFunction", f"arn:aws:lambda:us-east-1:{ACCT}:function:nope")
        is None
    )


def test_issued_sessions_are_found_like_any_session(aws):
    aws("iam").create_role(RoleName="exec", Path="/service-role/", AssumeRolePolicyDocument=TRUST_LAMBDA)
    store = MotoStore(ACCT)
    role = store.role_arn("exec")
    assert role == f"arn:aws:iam::{ACCT}:role/service-role/exec"
    creds = store.issue_session(role, "my-function", "us-east-1")
    record = MotoStore(ACCT).find_key(creds["AccessKeyId"])  # a fresh index finds it in moto's list
    assert (
        record.session_token == creds["SessionToken"]
        and record.caller.arn == f"arn:aws:sts::{ACCT}:assumed-role/exec/my-function"
    )
    assert creds["Expiration"] - record.expires == 0
