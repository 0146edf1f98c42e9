"""Refusals rendered per protocol are parsed by boto3 into each service's own error code and message."""

from __future__ import annotations

import boto3
import botocore.config
import botocore.exceptions
import pytest
from botocore.awsrequest import AWSResponse

from localaws.iam import errors

DENIAL = "User: arn:aws:iam::123456789012:user/learner is not authorized to perform: {a} on resource: {r} because no identity-based policy allows the {a} action"
SIGNING = {"efs": "elasticfilesystem", "apigatewayv2": "apigateway", "cloudwatch": "monitoring"}


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_):
        yield self._body


def answered(
    service: str, method: str, kwargs: dict, kind: str, detail: str = ""
) -> botocore.exceptions.ClientError:
    """The ClientError boto3 raises when the gate answers ``method`` with a refusal of ``kind``."""
    client = boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:4700",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    holder = {}

    def reply(request, **_):
        environ = {k.upper().replace("-", "_"): v for k, v in request.headers.items()}
        environ = {
            ("HTTP_" + k if k not in ("CONTENT_TYPE",) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in environ.items()
        }
        answer = errors.refusal(SIGNING.get(service, service), environ, kind, detail)
        holder["answer"] = answer
        return AWSResponse(request.url, answer.code, dict(answer.headers), _Raw(answer.body))

    client.meta.events.register_first("before-send", reply)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        getattr(client, method)(**kwargs)
    return caught.value


CASES = [
    ("lambda", "list_functions", {}, "lambda:ListFunctions", "*", "AccessDeniedException", 403),
    (
        "s3",
        "get_object",
        {"Bucket": "b", "Key": "k"},
        "s3:GetObject",
        '"arn:aws:s3:::b/k"',
        "AccessDenied",
        403,
    ),
    ("ec2", "describe_vpcs", {}, "ec2:DescribeVpcs", "*", "UnauthorizedOperation", 403),
    (
        "iam",
        "get_role",
        {"RoleName": "r"},
        "iam:GetRole",
        "arn:aws:iam::123456789012:role/r",
        "AccessDenied",
        403,
    ),
    (
        "sts",
        "assume_role",
        {"RoleArn": "arn:aws:iam::123456789012:role/r", "RoleSessionName": "s1"},
        "sts:AssumeRole",
        "arn:aws:iam::123456789012:role/r",
        "AccessDenied",
        403,
    ),
    (
        "cloudformation",
        "describe_stacks",
        {"StackName": "s"},
        "cloudformation:DescribeStacks",
        "arn:aws:cloudformation:us-east-1:123456789012:stack/s/*",
        "AccessDenied",
        403,
    ),
    ("logs", "describe_log_groups", {}, "logs:DescribeLogGroups", "*", "AccessDeniedException", 400),
    ("sagemaker", "list_endpoints", {}, "sagemaker:ListEndpoints", "*", "AccessDeniedException", 400),
    (
        "apigatewayv2",
        "get_apis",
        {},
        "apigateway:GET",
        "arn:aws:apigateway:us-east-1::/apis",
        "AccessDeniedException",
        403,
    ),
    (
        "efs",
        "describe_file_systems",
        {},
        "elasticfilesystem:DescribeFileSystems",
        "*",
        "AccessDeniedException",
        403,
    ),
    ("cloudwatch", "list_metrics", {}, "cloudwatch:ListMetrics", "*", "AccessDeniedException", 400),
]


@pytest.mark.parametrize(
    "service,method,kwargs,action,resource,code,status", CASES, ids=[c[0] for c in CASES]
)
def test_a_denial_is_parsed_as_the_services_error(service, method, kwargs, action, resource, code, status):
    sentence = DENIAL.format(a=action, r=resource)
    err = answered(service, method, kwargs, "denied", sentence)
    assert err.response["Error"]["Code"] == code
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == status
    message = err.response["Error"]["Message"]
    if service == "ec2":
        assert message == f"You are not authorized to perform this operation. {sentence}"
    elif service == "efs":  # EFS names neither the user nor the action
        assert message == "User is not authorized to perform that action on the specified resource"
    else:
        assert message == sentence


@pytest.mark.parametrize(
    "service,method,kwargs,codes",
    [
        (
            "lambda",
            "list_functions",
            {},
            (
                "UnrecognizedClientException",
                "InvalidSignatureException",
                "ExpiredTokenException",
                "MissingAuthenticationTokenException",
            ),
        ),
        (
            "sts",
            "get_caller_identity",
            {},
            ("InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "MissingAuthenticationToken"),
        ),
        (
            "s3",
            "list_buckets",
            {},
            ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "AccessDenied"),
        ),
        (
            "ec2",
            "describe_vpcs",
            {},
            ("AuthFailure", "AuthFailure", "RequestExpired", "MissingAuthenticationToken"),
        ),
        (
            "logs",
            "describe_log_groups",
            {},
            (
                "UnrecognizedClientException",
                "InvalidSignatureException",
                "ExpiredTokenException",
                "MissingAuthenticationTokenException",
            ),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and "_" not in v else "",
)
def test_credential_failures_are_parsed_as_the_services_errors(service, method, kwargs, codes):
    for kind, code in zip(("unknown_key", "mismatch", "expired_token", "missing"), codes, strict=True):
        err = answered(service, method, kwargs, kind)
        assert err.response["Error"]["Code"] == code, (kind, err.response)


def test_the_security_token_message_is_the_services():
    err = answered("sts", "get_caller_identity", {}, "unknown_key")
    assert err.response["Error"]["Message"] == "The security token included in the request is invalid."
    err = answered("s3", "list_buckets", {}, "unknown_key")
    assert (
        err.response["Error"]["Message"]
        == "The AWS Access Key Id you provided does not exist in our records."
    )


def test_modelled_exception_classes_are_raised_where_the_model_has_them():
    err = answered("apigatewayv2", "get_apis", {}, "denied", "x")
    assert type(err).__name__ == "AccessDeniedException"  # apigatewayv2 models it (403)


def test_s3_echoes_what_it_compared():
    answer = errors.refusal("s3", {}, "mismatch", extra={"AWSAccessKeyId": "AKIA", "StringToSign": "a<b"})
    assert b"<AWSAccessKeyId>AKIA</AWSAccessKeyId><StringToSign>a&lt;b</StringToSign>" in answer.body
