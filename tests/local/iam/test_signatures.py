"""The gate accepts what real boto3 and AWS CLI clients sign, and refuses what was tampered with,
with each service's own error (moto behind ``localaws.iam``, served in-process)."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import botocore.exceptions
import pytest
from botocore.config import Config

from localaws.iam import sigv4
from tests.conftest import lambda_zip

from .conftest import AWS_CLI

ODD_KEYS = [
    "plain.txt",
    "a b+c/d~e=f%g&h.txt",
    "ünï/cödé €.bin",
    "dots/../x/./y",
    "x//double//slash",
    "q?x=1#frag",
]
NO_RETRY = Config(retries={"max_attempts": 1})


def verified(gate, fn):
    """Run ``fn`` (moto's own errors are fine: the gate's verdict is what is checked) and return the
    gate's records of its requests, all of which must have been let through."""
    start = len(gate.records)
    try:
        fn()
    except botocore.exceptions.ClientError:
        pass
    records = gate.since(start)
    assert records, "no request reached the gate"
    assert all(r["ok"] for r in records), [r for r in records if not r["ok"]]
    return records


def refused(fn) -> botocore.exceptions.ClientError:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        fn()
    return caught.value


def code(err: botocore.exceptions.ClientError) -> str:
    return err.response["Error"]["Code"]


# ---- S3 -------------------------------------------------------------------------------------------


def test_s3_path_style_objects_with_odd_keys(gate):
    s3 = gate.client("s3")
    verified(gate, lambda: s3.create_bucket(Bucket="iam-path-bucket"))
    for key in ODD_KEYS:
        verified(
            gate,
            lambda k=key: s3.put_object(
                Bucket="iam-path-bucket", Key=k, Body=b"x" * 10, Metadata={"note": "a  b   c", "my_key": "v"}
            ),
        )
        verified(gate, lambda k=key: s3.head_object(Bucket="iam-path-bucket", Key=k))
        assert s3.get_object(Bucket="iam-path-bucket", Key=key)["Body"].read() == b"x" * 10
    verified(
        gate, lambda: s3.list_objects_v2(Bucket="iam-path-bucket", Prefix="a b+c/", Delimiter="/", MaxKeys=5)
    )
    verified(
        gate,
        lambda: s3.delete_objects(
            Bucket="iam-path-bucket", Delete={"Objects": [{"Key": k} for k in ODD_KEYS]}
        ),
    )


def test_s3_virtual_host_style(gate, monkeypatch):
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):  # bucket.localhost -> 127.0.0.1 (no DNS for it here)
        return real("127.0.0.1" if str(host).endswith(".localhost") else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    s3 = gate.client(
        "s3", endpoint_url=f"http://localhost:{gate.port}", config=Config(s3={"addressing_style": "virtual"})
    )
    records = verified(gate, lambda: s3.create_bucket(Bucket="iam-vhost-bucket"))
    records = verified(gate, lambda: s3.put_object(Bucket="iam-vhost-bucket", Key="k y", Body=b"1"))
    assert records[-1]["uri"].startswith("/k%20y") and records[-1]["operation"] == "PutObject"


def test_s3_multipart_upload_by_boto3_transfer(gate, tmp_path):
    from boto3.s3.transfer import TransferConfig

    s3 = gate.client("s3")
    s3.create_bucket(Bucket="iam-mp-bucket")
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(12 << 20))
    config = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20, max_concurrency=3)
    records = verified(gate, lambda: s3.upload_file(str(path), "iam-mp-bucket", "big.bin", Config=config))
    assert sum(r["operation"] == "UploadPart" for r in records) >= 3
    assert s3.get_object(Bucket="iam-mp-bucket", Key="big.bin")["Body"].read() == path.read_bytes()


def test_s3_presigned_get_and_put_urls(gate):
    s3 = gate.client("s3", config=Config(signature_version="s3v4"))
    s3.create_bucket(Bucket="iam-presign-bucket")
    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": "iam-presign-bucket", "Key": "p q.txt"}, ExpiresIn=60
    )
    assert "X-Amz-Signature=" in put_url
    request = urllib.request.Request(
        put_url, data=b"hello", method="PUT", headers={"Content-Type": "application/octet-stream"}
    )
    urllib.request.urlopen(request).read()
    get_url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "iam-presign-bucket", "Key": "p q.txt"}, ExpiresIn=60
    )
    assert urllib.request.urlopen(get_url).read() == b"hello"
    with pytest.raises(urllib.error.HTTPError) as caught:  # another key under the same signature
        urllib.request.urlopen(get_url.replace("p%20q.txt", "other.txt"))
    assert caught.value.code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in caught.value.read()


def test_s3_presigned_url_expires(gate):
    s3 = gate.client("s3", config=Config(signature_version="s3v4"))
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "iam-presign-bucket", "Key": "x"}, ExpiresIn=1
    )
    time.sleep(2.1)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url)
    body = caught.value.read()
    assert (
        caught.value.code == 403
        and b"<Code>AccessDenied</Code><Message>Request has expired</Message>" in body
    )


def test_default_presigned_url_is_sigv2_and_verifies(gate):
    """botocore 1.44 presigns S3 with SigV2 query auth unless signature_version="s3v4" is configured."""
    s3 = gate.client("s3")
    s3.create_bucket(Bucket="iam-v2-bucket")
    s3.put_object(Bucket="iam-v2-bucket", Key="k ü", Body=b"v2")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "iam-v2-bucket", "Key": "k ü", "ResponseContentType": "text/plain"}
    )
    assert "AWSAccessKeyId=" in url and "X-Amz-Credential=" not in url
    assert urllib.request.urlopen(url).read() == b"v2"
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url.replace("text%2Fplain", "text%2Fhtml"))
    assert b"<Code>SignatureDoesNotMatch</Code>" in caught.value.read()


def test_s3_cli_cp_multipart_and_ls(gate, tmp_path):
    path = tmp_path / "cli.bin"
    path.write_bytes(os.urandom(9 << 20))  # above the CLI's 8 MB multipart threshold
    start = len(gate.records)

    def run(*args):
        return subprocess.run(
            [AWS_CLI, "--endpoint-url", gate.url, *args],
            env=gate.cli_env(),
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )

    run("s3", "mb", "s3://iam-cli-bucket")
    run("s3", "cp", str(path), "s3://iam-cli-bucket/dir with space/cli.bin")
    assert "cli.bin" in run("s3", "ls", "--recursive", "s3://iam-cli-bucket/").stdout
    run("s3", "cp", "s3://iam-cli-bucket/dir with space/cli.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == path.read_bytes()
    records = gate.since(start)
    assert len(records) >= 6 and all(r["ok"] for r in records), [r for r in records if not r["ok"]]


# ---- aws-chunked streaming uploads (botocore never sends them; the Java, Go and JS SDKs do) ---------


def _sign(key: bytes, msg: str) -> str:
    return hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()


def _streaming_put(
    gate, key: str, data: bytes, chunk: int, transfer_chunked: bool, corrupt: bool = False
) -> tuple[int, bytes]:
    """PUT an object with a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body, as the Java SDK sends it."""
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    sizes = [len(data[i : i + chunk]) for i in range(0, len(data), chunk)] + [0]
    encoded_len = sum(len(f"{n:x};chunk-signature=") + 64 + 2 + n + 2 for n in sizes)
    headers = {
        "host": f"127.0.0.1:{gate.port}",
        "x-amz-date": amz_date,
        "x-amz-content-sha256": sigv4.STREAMING_SIGNED,
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
    }
    if not transfer_chunked:
        headers["content-length"] = str(encoded_len)
    names = sorted(headers)
    creq = "\n".join(
        [
            "PUT",
            f"/iam-stream-bucket/{key}",
            "",
            *(f"{n}:{headers[n]}" for n in names),
            "",
            ";".join(names),
            sigv4.STREAMING_SIGNED,
        ]
    )
    string_to_sign = "\n".join([sigv4.ALGORITHM, amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    signing = sigv4.signing_key("testing", amz_date[:8], "us-east-1", "s3")
    previous = _sign(signing, string_to_sign)
    auth = (
        f"AWS4-HMAC-SHA256 Credential=testing/{scope}, SignedHeaders={';'.join(names)}, Signature={previous}"
    )
    body = b""
    for i, n in enumerate(sizes):
        part = data[i * chunk : i * chunk + n]
        previous = _sign(
            signing,
            f"AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous}\n{sigv4.EMPTY_SHA256}\n{hashlib.sha256(part).hexdigest()}",
        )
        body += f"{n:x};chunk-signature={previous}\r\n".encode() + part + b"\r\n"
    if corrupt:
        body = body.replace(data[:4], b"XXXX", 1)
    conn = http.client.HTTPConnection("127.0.0.1", gate.port, timeout=60)
    conn.putrequest("PUT", f"/iam-stream-bucket/{key}", skip_host=True, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.putheader("authorization", auth)
    if transfer_chunked:
        conn.putheader("transfer-encoding", "chunked")
        conn.endheaders()
        for i in range(0, len(body), 5000):
            piece = body[i : i + 5000]
            conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        conn.send(b"0\r\n\r\n")
    else:
        conn.endheaders(body)
    response = conn.getresponse()
    answer = response.status, response.read()
    conn.close()
    return answer


@pytest.mark.parametrize(
    "transfer_chunked", [False, True], ids=["content-length", "transfer-encoding-chunked"]
)
def test_streaming_signed_upload_end_to_end(gate, transfer_chunked):
    s3 = gate.client("s3")
    s3.create_bucket(Bucket="iam-stream-bucket")
    data = os.urandom(200_000)
    assert _streaming_put(gate, "s.bin", data, 65536, transfer_chunked)[0] == 200
    assert (
        s3.get_object(Bucket="iam-stream-bucket", Key="s.bin")["Body"].read() == data
    )  # moto stored the decoded body
    status, body = _streaming_put(gate, "bad.bin", data, 65536, transfer_chunked, corrupt=True)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    assert (
        refused(lambda: s3.head_object(Bucket="iam-stream-bucket", Key="bad.bin")).response["Error"]["Code"]
        == "404"
    )


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
