"""The evaluator against the IAM User Guide's rules and examples (each test names its page or rule)."""

from __future__ import annotations

from localaws.iam.evaluator import Decision, Policies, Principal, Request, evaluate

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


# ---- reference_policies_evaluation-logic_policy-eval-denyallow.html ---------------------------------


def test_every_request_is_implicitly_denied_without_a_policy():
    assert decide(USER, "lambda:ListFunctions") is Decision.IMPLICIT_DENY


def test_root_has_full_access_but_not_past_a_resource_deny():
    assert (
        decide(ROOT, "lambda:DeleteFunction", "arn:aws:lambda:us-east-1:123456789012:function:f")
        is Decision.ALLOW
    )
    bucket = policy({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"})
    assert decide(ROOT, "s3:GetObject", "arn:aws:s3:::b/k", resource=bucket) is Decision.EXPLICIT_DENY


def test_an_explicit_deny_overrides_any_allow():
    identity = [policy(allow("s3:*")), policy(deny("s3:DeleteObject"))]
    assert decide(USER, "s3:GetObject", "arn:aws:s3:::b/k", identity=identity) is Decision.ALLOW
    assert decide(USER, "s3:DeleteObject", "arn:aws:s3:::b/k", identity=identity) is Decision.EXPLICIT_DENY


# ---- reference_policies_evaluation-logic.html / _policy-eval-basics.html ---------------------------


def test_same_account_identity_or_resource_policy_allows():
    """ "If either the identity-based policy or the resource-based policy within the same account allows the
    request and the other doesn't, the request is still allowed" (policy-eval-basics, Carlos's example)."""
    identity = [policy(allow(["s3:GetBucketLocation", "s3:ListBucket"], "arn:aws:s3:::logs"))]
    bucket = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": USER.arn},
            "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::logs/*",
        }
    )
    assert (
        decide(
            USER,
            "s3:PutObject",
            "arn:aws:s3:::logs/x",
            identity=identity,
            resource=bucket,
            resource_account=ACCT,
        )
        is Decision.ALLOW
    )
    assert (
        decide(
            USER,
            "s3:ListBucket",
            "arn:aws:s3:::logs",
            identity=identity,
            resource=bucket,
            resource_account=ACCT,
        )
        is Decision.ALLOW
    )
    assert (
        decide(
            USER,
            "s3:DeleteObject",
            "arn:aws:s3:::logs/x",
            identity=identity,
            resource=bucket,
            resource_account=ACCT,
        )
        is Decision.IMPLICIT_DENY
    )


def test_a_resource_policy_naming_the_account_delegates_to_identity_policies():
    bucket = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ACCT},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::b/*",
        }
    )
    assert (
        decide(USER, "s3:GetObject", "arn:aws:s3:::b/k", resource=bucket, resource_account=ACCT)
        is Decision.IMPLICIT_DENY
    )


def test_resource_policy_naming_the_session_bypasses_the_boundary_naming_the_role_does_not():
    boundary = policy(allow("logs:*"))
    for principal, expected in ((ROLE.arn, Decision.ALLOW), (ROLE.role_arn, Decision.IMPLICIT_DENY)):
        bucket = policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": principal},
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::b/*",
            }
        )
        got = decide(
            ROLE,
            "s3:GetObject",
            "arn:aws:s3:::b/k",
            resource=bucket,
            resource_account=ACCT,
            boundary=boundary,
        )
        assert got is expected, principal


# ---- access_policies_boundaries.html ------------------------------------------------------------------


def test_permissions_boundary_limits_identity_policies():
    """ShirleyRodriguez: boundary allows S3, CloudWatch, EC2; identity allows iam:CreateUser -> denied."""
    boundary = policy(allow(["s3:*", "cloudwatch:*", "ec2:*"]))
    identity = [policy(allow("iam:CreateUser", "*")), policy(allow("s3:GetObject"))]
    assert (
        decide(USER, "iam:CreateUser", f"arn:aws:iam::{ACCT}:user/x", identity=identity, boundary=boundary)
        is Decision.IMPLICIT_DENY
    )
    assert (
        decide(USER, "s3:GetObject", "arn:aws:s3:::b/k", identity=identity, boundary=boundary)
        is Decision.ALLOW
    )


def test_session_policy_limits_a_role_session():
    identity = [policy(allow("s3:*"))]
    assert (
        decide(
            ROLE,
            "s3:PutObject",
            "arn:aws:s3:::b/k",
            identity=identity,
            session=[policy(allow("s3:GetObject"))],
        )
        is Decision.IMPLICIT_DENY
    )
    assert (
        decide(
            ROLE,
            "s3:GetObject",
            "arn:aws:s3:::b/k",
            identity=identity,
            session=[policy(allow("s3:GetObject"))],
        )
        is Decision.ALLOW
    )


# ---- role trust policies (reference_policies_evaluation-logic.html: the exception to the union) -------


TRUST = policy(
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
)


def test_a_trust_policy_must_allow_the_caller_itself():
    lam = Principal("lambda.amazonaws.com", ACCT, "service")
    role = f"arn:aws:iam::{ACCT}:role/fn-role"
    assert decide(lam, "sts:AssumeRole", role, resource=TRUST, trust=True) is Decision.ALLOW
    identity = [policy(allow("sts:AssumeRole"))]
    assert (
        decide(USER, "sts:AssumeRole", role, identity=identity, resource=TRUST, trust=True)
        is Decision.IMPLICIT_DENY
    )
    by_account = policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"}, "Action": "sts:AssumeRole"}
    )
    assert decide(USER, "sts:AssumeRole", role, resource=by_account, trust=True) is Decision.IMPLICIT_DENY
    assert (
        decide(USER, "sts:AssumeRole", role, identity=identity, resource=by_account, trust=True)
        is Decision.ALLOW
    )
    by_user = policy({"Effect": "Allow", "Principal": {"AWS": USER.arn}, "Action": "sts:AssumeRole"})
    assert decide(USER, "sts:AssumeRole", role, resource=by_user, trust=True) is Decision.ALLOW


def test_lambda_function_policy_lets_api_gateway_invoke_with_a_source_arn():
    """AddPermission's statement (https://docs.aws.amazon.com/lambda/latest/dg/access-control-resource-based.html)."""
    fn = f"arn:aws:lambda:us-east-1:{ACCT}:function:infer"
    fn_policy = policy(
        {
            "Sid": "apigw",
            "Effect": "Allow",
            "Principal": {"Service": "apigateway.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": fn,
            "Condition": {
                "ArnLike": {"AWS:SourceArn": f"arn:aws:execute-api:us-east-1:{ACCT}:abc123/*/*/infer"}
            },
        }
    )
    apigw = Principal("apigateway.amazonaws.com", ACCT, "service")
    ok = {"aws:SourceArn": [f"arn:aws:execute-api:us-east-1:{ACCT}:abc123/$default/POST/infer"]}
    other = {"aws:SourceArn": [f"arn:aws:execute-api:us-east-1:{ACCT}:zzz999/$default/POST/infer"]}
    assert decide(apigw, "lambda:InvokeFunction", fn, ok, resource=fn_policy) is Decision.ALLOW
    assert decide(apigw, "lambda:InvokeFunction", fn, other, resource=fn_policy) is Decision.IMPLICIT_DENY


# ---- P1: service principals and anonymous callers -------------------------------------------------------


def test_a_service_principal_is_allowed_only_by_a_resource_policy_that_names_it():
    fn = f"arn:aws:lambda:us-east-1:{ACCT}:function:infer"
    s3 = Principal("s3.amazonaws.com", ACCT, "service")
    apigw = Principal("apigateway.amazonaws.com", ACCT, "service")
    fn_policy = policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "apigateway.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": fn,
        }
    )
    assert decide(apigw, "lambda:InvokeFunction", fn, resource=fn_policy) is Decision.ALLOW
    assert decide(s3, "lambda:InvokeFunction", fn, resource=fn_policy) is Decision.IMPLICIT_DENY
    assert decide(apigw, "lambda:InvokeFunction", fn, identity=[policy(allow("*"))]) is Decision.IMPLICIT_DENY


def test_an_anonymous_caller_is_allowed_only_by_a_public_resource_policy():
    anonymous = Principal("*", ACCT, "anonymous")
    public = policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pub/*"}
    )
    account_only = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ACCT},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::pub/*",
        }
    )
    assert decide(anonymous, "s3:GetObject", "arn:aws:s3:::pub/k", resource=public) is Decision.ALLOW
    assert (
        decide(anonymous, "s3:GetObject", "arn:aws:s3:::pub/k", resource=account_only)
        is Decision.IMPLICIT_DENY
    )
    assert decide(anonymous, "s3:GetObject", "arn:aws:s3:::pub/k") is Decision.IMPLICIT_DENY


def test_not_principal_applies_to_everyone_else():
    bucket = policy(
        {
            "Effect": "Deny",
            "NotPrincipal": {"AWS": USER.arn},
            "Action": "s3:*",
            "Resource": "arn:aws:s3:::b/*",
        }
    )
    identity = [policy(allow("s3:*"))]
    assert (
        decide(USER, "s3:GetObject", "arn:aws:s3:::b/k", identity=identity, resource=bucket) is Decision.ALLOW
    )
    assert (
        decide(ROLE, "s3:GetObject", "arn:aws:s3:::b/k", identity=identity, resource=bucket)
        is Decision.EXPLICIT_DENY
    )
