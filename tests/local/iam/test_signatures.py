"""The gate accepts what real boto3 and AWS CLI clients sign, and refuses what was tampered with,
with each service's own error (moto behind ``localaws.iam``, served in-process)."""

from __future__ import annotations

import datetime
import json
import socket
import subprocess
import urllib.error
import urllib.request

import pytest
from botocore.config import Config

from tests.conftest import lambda_zip

from .conftest import AWS_CLI, NO_RETRY, code, refused, verified

# ---- other protocols --------------------------------------------------------------------------------


def test_lambda_rest_json(gate):
    lam = gate.client("lambda")
    verified(gate, lambda: lam.list_functions(MaxItems=5))
    role = "arn:aws:iam::123456789012:role/iam-test-role"
    verified(
        gate,
        lambda: lam.create_function(
            FunctionName="iam-f1",
            Runtime="python3.12",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": lambda_zip("def handler(e, c):\n    return e\n")},
        ),
    )
    arn = "arn:aws:lambda:us-east-1:123456789012:function:iam-f1"
    verified(gate, lambda: lam.get_function(FunctionName=arn))  # ':' percent-encoded in the path
    verified(gate, lambda: lam.get_function_configuration(FunctionName="iam-f1", Qualifier="$LATEST"))
    records = verified(
        gate, lambda: lam.invoke(FunctionName=f"{arn}:$LATEST", Payload=json.dumps({"k": "v ü"}).encode())
    )
    assert records[-1]["operation"] == "Invoke"


@pytest.mark.parametrize(
    "service,call",
    [
        ("sts", lambda c: c.get_caller_identity()),
        ("iam", lambda c: c.list_roles(PathPrefix="/a b/")),
        ("ec2", lambda c: c.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["x y", "z+w"]}])),
        ("cloudformation", lambda c: c.list_stacks(StackStatusFilter=["CREATE_COMPLETE"])),
        ("logs", lambda c: c.describe_log_groups(logGroupNamePrefix="/aws/lambda/")),
        ("sagemaker", lambda c: c.list_endpoints(NameContains="x")),
        ("apigatewayv2", lambda c: c.get_apis(MaxResults="5")),
        ("efs", lambda c: c.describe_file_systems(MaxItems=5)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_query_json_and_rest_protocols(gate, service, call):
    records = verified(gate, lambda: call(gate.client(service)))
    assert records[-1].get("operation") or records[-1]["answered"], records[-1]


def test_cli_other_services(gate):
    start = len(gate.records)
    for args in (
        ["sts", "get-caller-identity"],
        ["lambda", "list-functions"],
        ["ec2", "describe-vpcs", "--filters", "Name=tag:Name,Values=a b"],
        ["logs", "describe-log-groups", "--log-group-name-prefix", "/aws/lambda/"],
        ["efs", "describe-file-systems"],
        ["apigatewayv2", "get-apis"],
    ):
        subprocess.run(
            [AWS_CLI, "--endpoint-url", gate.url, *args],
            env=gate.cli_env(),
            check=True,
            capture_output=True,
            timeout=120,
        )
    records = gate.since(start)
    assert len(records) >= 6 and all(r["ok"] for r in records), records


# ---- credentials ------------------------------------------------------------------------------------


def test_root_keys_are_the_account_root(gate):
    identity = gate.client("sts").get_caller_identity()
    assert identity["Arn"] == "arn:aws:iam::123456789012:root" and identity["UserId"] == "123456789012"


def test_iam_user_keys_and_sts_session_credentials(gate):
    iam = gate.client("iam")
    iam.create_user(UserName="iam-sig-user")
    key = iam.create_access_key(UserName="iam-sig-user")["AccessKey"]
    user = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    assert (
        gate.client("sts", user).get_caller_identity()["Arn"] == "arn:aws:iam::123456789012:user/iam-sig-user"
    )
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:user/iam-sig-user"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.create_role(RoleName="iam-sig-role", AssumeRolePolicyDocument=json.dumps(trust))
    creds = gate.client("sts", user).assume_role(
        RoleArn="arn:aws:iam::123456789012:role/iam-sig-role", RoleSessionName="s1"
    )["Credentials"]
    temp = {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }
    assert (
        gate.client("sts", temp).get_caller_identity()["Arn"]
        == "arn:aws:sts::123456789012:assumed-role/iam-sig-role/s1"
    )
    # presigned with a session token: X-Amz-Security-Token in the query string
    url = gate.client("s3", temp, config=Config(signature_version="s3v4")).generate_presigned_url(
        "list_buckets"
    )
    assert "X-Amz-Security-Token=" in url
    start = len(gate.records)
    with pytest.raises(urllib.error.HTTPError):  # verified, then denied: the role allows nothing
        urllib.request.urlopen(url)
    assert b"is not authorized to perform: s3:ListAllMyBuckets" in gate.since(start)[0]["body"].encode()
    # the temporary key without its token, or with another token, is refused
    no_token = {**temp, "aws_session_token": None}
    assert (
        code(refused(lambda: gate.client("lambda", no_token, config=NO_RETRY).list_functions()))
        == "UnrecognizedClientException"
    )
    other = {**temp, "aws_session_token": "x" + creds["SessionToken"][1:]}
    assert (
        code(refused(lambda: gate.client("sts", other, config=NO_RETRY).get_caller_identity()))
        == "InvalidClientTokenId"
    )


@pytest.mark.parametrize(
    "creds,codes",
    [
        (
            {"aws_secret_access_key": "wrong"},
            ("InvalidSignatureException", "SignatureDoesNotMatch", "SignatureDoesNotMatch"),
        ),
        (
            {"aws_access_key_id": "AKIANOTAKEY000000000"},
            ("UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId"),
        ),
        (
            {"aws_session_token": "tok"},
            ("UnrecognizedClientException", "InvalidClientTokenId", "InvalidToken"),
        ),
    ],
    ids=["wrong-secret", "unknown-key", "long-term-key-with-token"],
)
def test_wrong_credentials_get_each_services_error(gate, creds, codes):
    calls = (
        ("lambda", lambda c: c.list_functions()),
        ("sts", lambda c: c.get_caller_identity()),
        ("s3", lambda c: c.list_buckets()),
    )
    for (service, call), expected in zip(calls, codes, strict=True):
        err = refused(lambda s=service, c=call: c(gate.client(s, creds, config=NO_RETRY)))
        assert code(err) == expected, (service, err.response)


@pytest.mark.parametrize(
    "service,call,mutate",
    [
        (
            "lambda",
            lambda c: c.invoke(FunctionName="iam-f1", Payload=b'{"a":1}'),
            lambda r: setattr(r, "body", b'{"a":2}'),
        ),
        (
            "sts",
            lambda c: c.get_caller_identity(),
            lambda r: setattr(r, "body", r.body.replace("2011-06-15", "2011-06-16")),
        ),
        (
            "s3",
            lambda c: c.put_object(Bucket="iam-path-bucket", Key="t", Body=b"abc"),
            lambda r: setattr(r, "body", b"abd"),
        ),
        (
            "s3",
            lambda c: c.list_objects_v2(Bucket="iam-path-bucket", Prefix="a"),
            lambda r: setattr(r, "url", r.url.replace("prefix=a", "prefix=b")),
        ),
        (
            "logs",
            lambda c: c.describe_log_groups(),
            lambda r: r.headers.__setitem__("X-Amz-Target", "Logs_20140328.DeleteLogGroup"),
        ),
    ],
    ids=["lambda-body", "query-body", "s3-body-vs-sha256", "s3-query", "json-target"],
)
def test_tampered_requests_are_refused(gate, service, call, mutate):
    client = gate.client(service, config=NO_RETRY)
    client.meta.events.register_last(
        f"before-send.{client.meta.service_model.endpoint_prefix}", lambda request, **kw: mutate(request)
    )
    err = refused(lambda: call(client))
    assert code(err) in ("InvalidSignatureException", "SignatureDoesNotMatch", "XAmzContentSHA256Mismatch"), (
        err.response
    )


def test_old_signature_is_refused(gate, monkeypatch):
    import botocore.auth

    real = botocore.auth.get_current_datetime
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda: real() - datetime.timedelta(minutes=16)
    )
    err = refused(lambda: gate.client("sts", config=NO_RETRY).get_caller_identity())
    assert code(err) == "SignatureDoesNotMatch" and err.response["Error"]["Message"].startswith(
        "Signature expired: "
    )


def test_unsigned_requests_are_refused_outside_s3(gate):
    request = urllib.request.Request(f"{gate.url}/2015-03-31/functions/", method="GET")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    assert caught.value.code == 403 and b"MissingAuthenticationTokenException" in caught.value.read()


def test_folded_and_spaced_header_values(gate):
    """A header folded over two lines (obs-fold) and inner runs of spaces still verify (Trimall)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = "Action=GetCallerIdentity&Version=2011-06-15"
    request = AWSRequest(
        "POST",
        f"{gate.url}/",
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "X-Amz-Meta-Note": "a   b    c",
        },
    )
    SigV4Auth(Credentials("testing", "testing"), "sts", "us-east-1").add_auth(request)
    raw = ["POST / HTTP/1.1", f"Host: 127.0.0.1:{gate.port}"]
    for name, value in request.headers.items():
        raw.append(f"{name}: a   b\r\n    c" if name.lower() == "x-amz-meta-note" else f"{name}: {value}")
    raw.append(f"Content-Length: {len(body)}")
    start = len(gate.records)
    with socket.create_connection(("127.0.0.1", gate.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(raw) + "\r\n\r\n" + body).encode())
        assert b" 200 " in sock.recv(65536).split(b"\r\n", 1)[0]
    assert gate.since(start)[0]["ok"]
