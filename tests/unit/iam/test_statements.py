"""Policy elements as the IAM User Guide defines them: Action/NotAction, Resource/NotResource and ARN
matching, policy variables, documents and the denial sentence (each test names its page)."""

from __future__ import annotations

import pytest

from localaws.iam.conditions import arn_like
from localaws.iam.evaluator import Decision, Policies, Principal, Request, denial_message, evaluate

ACCT = "123456789012"
USER = Principal(f"arn:aws:iam::{ACCT}:user/carlossalazar", ACCT, "user")
ROLE = Principal(
    f"arn:aws:sts::{ACCT}:assumed-role/fn-role/s1", ACCT, "assumed-role", f"arn:aws:iam::{ACCT}:role/fn-role"
)
ROOT = Principal(f"arn:aws:iam::{ACCT}:root", ACCT, "root")


def policy(*statements, version="2012-10-17"):
    return {"Version": version, "Statement": list(statements)}


def allow(action, resource="*", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource="*", **extra):
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(who, action, arn="*", context=None, **policies):
    return evaluate(
        Request(who, action, arn, {k.lower(): v for k, v in (context or {}).items()}), Policies(**policies)
    ).decision


# ---- elements: Action/NotAction, Resource/NotResource -------------------------------------------------


def test_action_matching_is_case_insensitive_with_wildcards():
    identity = [policy(allow("S3:get*"))]
    assert decide(USER, "s3:GetObject", "arn:aws:s3:::b/k", identity=identity) is Decision.ALLOW
    assert decide(USER, "s3:PutObject", "arn:aws:s3:::b/k", identity=identity) is Decision.IMPLICIT_DENY
    assert (
        decide(
            USER,
            "lambda:GetFunction",
            "arn:aws:lambda:us-east-1:1:function:f",
            identity=[policy(allow("lambda:Get?unction"))],
        )
        is Decision.ALLOW
    )


def test_not_action_allows_everything_else():
    """reference_policies_elements_notaction.html: Allow NotAction iam:* allows all but IAM."""
    identity = [policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})]
    assert decide(USER, "s3:GetObject", "arn:aws:s3:::b/k", identity=identity) is Decision.ALLOW
    assert decide(USER, "iam:CreateUser", "*", identity=identity) is Decision.IMPLICIT_DENY


def test_not_resource_denies_everything_but_one_bucket():
    identity = [
        policy(allow("s3:*")),
        policy({"Effect": "Deny", "Action": "s3:*", "NotResource": ["arn:aws:s3:::ok", "arn:aws:s3:::ok/*"]}),
    ]
    assert decide(USER, "s3:GetObject", "arn:aws:s3:::ok/k", identity=identity) is Decision.ALLOW
    assert decide(USER, "s3:GetObject", "arn:aws:s3:::other/k", identity=identity) is Decision.EXPLICIT_DENY


@pytest.mark.parametrize(
    "pattern,arn,expected",
    [
        ("arn:aws:lambda:*:*:function:my-function", "arn:aws:lambda:us-east-1:1:function:my-function", True),
        (
            "arn:aws:lambda:*:*:function:my-function",
            "arn:aws:lambda:us-east-1:1:function:my-function:prod",
            False,
        ),
        (
            "arn:aws:lambda:*:*:function:my-function:*",
            "arn:aws:lambda:us-east-1:1:function:my-function:prod",
            True,
        ),
        ("arn:aws:lambda:*:*:function:*", "arn:aws:lambda:us-east-1:1:function:f:1", True),
        ("arn:aws:iam::*:role/lambda-efs-*", "arn:aws:iam::123456789012:role/lambda-efs-seeder", True),
        ("arn:aws:iam::*:role/lambda-efs-*", "arn:aws:iam::123456789012:role/other", False),
        ("arn:aws:s3:::b/*", "arn:aws:s3:::b/a/b/c.txt", True),
        ("arn:aws:s3:::b*", "arn:aws:s3:::b/k", True),  # the resource part spans "/"
        ("arn:aws:*:us-east-1:*:*", "arn:aws:s3:::b", False),  # region part "" vs "us-east-1"
        ("arn:aws:s3:::b?", "arn:aws:s3:::b1", True),
        (
            "arn:aws:iam::*:role/x",
            "arn:aws:iam::111:222:role/x",
            False,
        ),  # a wildcard never spans a part's colon
        ("arn:aws:apigateway:*::/*", "arn:aws:apigateway:us-east-1::/apis/abc123", True),
    ],
)
def test_arn_matching(pattern, arn, expected):
    assert arn_like(pattern, arn) is expected


# ---- policy variables (reference_policies_variables.html) -------------------------------------------


def test_username_variable_in_resource_only_with_version_2012():
    st = allow("s3:GetObject", "arn:aws:s3:::home/${aws:username}/*")
    ctx = {"aws:username": ["carlossalazar"]}
    assert (
        decide(USER, "s3:GetObject", "arn:aws:s3:::home/carlossalazar/f", ctx, identity=[policy(st)])
        is Decision.ALLOW
    )
    assert (
        decide(USER, "s3:GetObject", "arn:aws:s3:::home/other/f", ctx, identity=[policy(st)])
        is Decision.IMPLICIT_DENY
    )
    old = policy(st, version="2008-10-17")  # variables are literal text in the old version
    assert (
        decide(USER, "s3:GetObject", "arn:aws:s3:::home/carlossalazar/f", ctx, identity=[old])
        is Decision.IMPLICIT_DENY
    )
    assert (
        decide(ROLE, "s3:GetObject", "arn:aws:s3:::home/x/f", {}, identity=[policy(st)])
        is Decision.IMPLICIT_DENY
    )  # no aws:username for a role


def test_variable_default_and_escapes():
    st = allow("s3:GetObject", "arn:aws:s3:::b/${aws:PrincipalTag/team, 'shared'}/${*}")
    assert (
        decide(USER, "s3:GetObject", "arn:aws:s3:::b/shared/*", {}, identity=[policy(st)]) is Decision.ALLOW
    )
    assert (
        decide(USER, "s3:GetObject", "arn:aws:s3:::b/shared/x", {}, identity=[policy(st)])
        is Decision.IMPLICIT_DENY
    )


def test_iam_passrole_with_passed_to_service_condition():
    """id_roles_use_passrole.html: iam:PassedToService restricts which service may receive the role."""
    identity = [
        policy(
            allow(
                "iam:PassRole",
                "arn:aws:iam::*:role/lambda-efs-*",
                Condition={"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}},
            )
        )
    ]
    role = f"arn:aws:iam::{ACCT}:role/lambda-efs-infer"
    assert (
        decide(
            USER, "iam:PassRole", role, {"iam:PassedToService": ["lambda.amazonaws.com"]}, identity=identity
        )
        is Decision.ALLOW
    )
    assert (
        decide(
            USER,
            "iam:PassRole",
            role,
            {"iam:PassedToService": ["sagemaker.amazonaws.com"]},
            identity=identity,
        )
        is Decision.IMPLICIT_DENY
    )


# ---- the message ----------------------------------------------------------------------------------------


def test_denial_messages_follow_the_documented_format():
    req = Request(USER, "lambda:ListFunctions", "*")
    assert denial_message(req, evaluate(req, Policies())) == (
        "User: arn:aws:iam::123456789012:user/carlossalazar is not authorized to perform: lambda:ListFunctions "
        "on resource: * because no identity-based policy allows the lambda:ListFunctions action"
    )
    req = Request(USER, "s3:GetObject", "arn:aws:s3:::b/k")
    res = evaluate(req, Policies(identity=[policy(deny("s3:*"))]))
    assert denial_message(req, res).endswith(
        "on resource: arn:aws:s3:::b/k with an explicit deny in an identity-based policy"
    )
    res = evaluate(req, Policies(identity=[policy(allow("s3:*"))], boundary=policy(allow("logs:*"))))
    assert denial_message(req, res).endswith("because no permissions boundary allows the s3:GetObject action")


# ---- statements and documents (reference_policies_elements_*.html) ------------------------------------


def test_an_action_without_resource_level_permissions_matches_only_star():
    """Service Authorization Reference: an action with no resource type is evaluated on "*"."""
    scoped = [policy(allow("lambda:ListFunctions", "arn:aws:lambda:*:*:function:*"))]
    assert decide(USER, "lambda:ListFunctions", "*", identity=scoped) is Decision.IMPLICIT_DENY
    assert (
        decide(USER, "lambda:ListFunctions", "*", identity=[policy(allow("lambda:ListFunctions"))])
        is Decision.ALLOW
    )


def test_single_statement_object_string_action_and_json_text():
    text = '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}'
    assert decide(USER, "s3:GetObject", "arn:aws:s3:::b/k", identity=[text]) is Decision.ALLOW


def test_unreadable_documents_and_statements_without_resource_grant_nothing():
    no_resource = policy({"Effect": "Allow", "Action": "s3:*"})
    assert (
        decide(USER, "s3:GetObject", "arn:aws:s3:::b/k", identity=["{not json", "[]", no_resource])
        is Decision.IMPLICIT_DENY
    )


def test_explicit_denies_name_the_policy_type_that_denied():
    req = Request(ROLE, "s3:GetObject", "arn:aws:s3:::b/k")
    for policies, kind in (
        (
            Policies(identity=[policy(allow("s3:*"))], boundary=policy(allow("s3:*"), deny("s3:GetObject"))),
            "a permissions boundary",
        ),
        (Policies(identity=[policy(allow("s3:*"))], session=[policy(deny("s3:*"))]), "a session policy"),
        (
            Policies(
                identity=[policy(allow("s3:*"))],
                resource=policy({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}),
            ),
            "a resource-based policy",
        ),
    ):
        assert denial_message(req, evaluate(req, policies)).endswith(f"with an explicit deny in {kind}")
