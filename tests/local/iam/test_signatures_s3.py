"""S3 through the gate: path and virtual-host style, odd keys, multipart, presigned URLs (SigV4 and
SigV2), the AWS CLI, and aws-chunked uploads signed chunk by chunk, as real clients send them."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from botocore.config import Config

from localaws.iam import sigv4

from .conftest import AWS_CLI, refused, verified

ODD_KEYS = [
    "plain.txt",
    "a b+c/d~e=f%g&h.txt",
    "ünï/cödé €.bin",
    "dots/../x/./y",
    "x//double//slash",
    "q?x=1#frag",
]


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
