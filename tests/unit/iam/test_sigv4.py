"""Signature verification against the worked examples AWS publishes (each test names its page)."""

from __future__ import annotations

import io

import pytest

from localaws.iam import sigv2, sigv4, streaming
from localaws.iam.sigv4 import SignatureError

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
MAY_24_2013 = 1369353600  # 20130524T000000Z


def s3_get_example(**override) -> dict:
    """sig-v4-header-based-auth.html, "Example: GET Object" (bytes 0-9 of examplebucket/test.txt)."""
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/test.txt",
        "QUERY_STRING": "",
        "HTTP_HOST": "examplebucket.s3.amazonaws.com",
        "HTTP_RANGE": "bytes=0-9",
        "HTTP_X_AMZ_CONTENT_SHA256": sigv4.EMPTY_SHA256,
        "HTTP_X_AMZ_DATE": "20130524T000000Z",
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    }
    environ.update(override)
    return environ


def test_the_documented_s3_get_object_signature_verifies():
    environ = s3_get_example()
    signed = sigv4.parse(environ)
    assert (signed.access_key, signed.region, signed.service) == ("AKIAIOSFODNN7EXAMPLE", "us-east-1", "s3")
    sigv4.verify(environ, signed, SECRET, None, now=MAY_24_2013)
    for changed in ({"HTTP_RANGE": "bytes=0-10"}, {"RAW_URI": "/test.txt2"}, {"QUERY_STRING": "a=b"}):
        environ = s3_get_example(**changed)
        with pytest.raises(SignatureError) as caught:
            sigv4.verify(environ, sigv4.parse(environ), SECRET, None, now=MAY_24_2013)
        assert caught.value.kind == "mismatch" and "canonical_request" in caught.value.context
    with pytest.raises(SignatureError, match="mismatch"):
        sigv4.verify(
            s3_get_example(), sigv4.parse(s3_get_example()), SECRET[:-1] + "x", None, now=MAY_24_2013
        )


def test_the_documented_presigned_url_verifies_and_expires():
    """sigv4-query-string-auth.html, "An example": GET examplebucket/test.txt, valid 86400 s."""
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/test.txt?{query}",
        "QUERY_STRING": query,
        "HTTP_HOST": "examplebucket.s3.amazonaws.com",
    }
    signed = sigv4.parse(environ)
    assert signed.presigned and signed.expires == 86400
    sigv4.verify(environ, signed, SECRET, None, now=MAY_24_2013 + 86400)
    with pytest.raises(SignatureError) as caught:
        sigv4.verify(environ, signed, SECRET, None, now=MAY_24_2013 + 86401)
    assert caught.value.kind == "expired" and caught.value.detail == "Request has expired"


def test_a_signature_more_than_15_minutes_off_the_clock_is_refused():
    environ = s3_get_example()
    signed = sigv4.parse(environ)
    sigv4.verify(environ, signed, SECRET, None, now=MAY_24_2013 + 15 * 60)
    for now in (MAY_24_2013 + 15 * 60 + 1, MAY_24_2013 - 15 * 60 - 1):
        with pytest.raises(SignatureError) as caught:
            sigv4.verify(environ, signed, SECRET, None, now=now)
        assert caught.value.kind == "skew" and caught.value.detail.startswith("Signature ")


@pytest.mark.parametrize(
    "authorization,message",
    [
        ("AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=", "Unsupported Authorization Type"),
        (
            "AWS4-HMAC-SHA256 Credential=AKIA/20130524/us-east-1/s3/aws4_request,Signature=abc",
            "SignedHeaders",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIA/20130524/us-east-1/aws4_request,SignedHeaders=host,Signature=a",
            "scoped",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIA/20130525/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=a",
            "Date in Credential",
        ),
    ],
)
def test_malformed_authorization_headers(authorization, message):
    with pytest.raises(SignatureError, match=message) as caught:
        sigv4.parse(s3_get_example(HTTP_AUTHORIZATION=authorization))
    assert caught.value.kind == "malformed"


def test_host_must_be_signed():
    environ = s3_get_example(
        HTTP_AUTHORIZATION="AWS4-HMAC-SHA256 Credential=AKIA/20130524/us-east-1/s3/aws4_request,SignedHeaders=range,Signature=a"
    )
    with pytest.raises(SignatureError, match="Host"):
        sigv4.verify(environ, sigv4.parse(environ), SECRET, None, now=MAY_24_2013)


def test_s3_body_must_match_its_signed_sha256():
    signed = sigv4.parse(s3_get_example(HTTP_X_AMZ_CONTENT_SHA256="a" * 64))
    sigv4.check_payload(signed, "a" * 64)
    with pytest.raises(SignatureError) as caught:
        sigv4.check_payload(signed, "b" * 64)
    assert caught.value.kind == "payload" and caught.value.context["S3ComputedContentSHA256"] == "b" * 64
    sigv4.check_payload(sigv4.parse(s3_get_example(HTTP_X_AMZ_CONTENT_SHA256="UNSIGNED-PAYLOAD")), "b" * 64)


def test_canonical_query_keeps_plus_and_drops_the_presigned_signature():
    assert sigv4.canonical_query("b=2&a=x+y&a=%20&X-Amz-Signature=s", presigned=True) == "a=%20&a=x%2By&b=2"
    assert "X-Amz-Signature=s" in sigv4.canonical_query("X-Amz-Signature=s", presigned=False)


def test_canonical_uri_encodes_twice_except_for_s3():
    environ = {
        "RAW_URI": "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af/invocations"
    }
    assert (
        sigv4.canonical_uri(environ, "lambda")
        == "/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-east-1%253A1%253Afunction%253Af/invocations"
    )
    assert sigv4.canonical_uri({"RAW_URI": "/b/dots/../x"}, "s3") == "/b/dots/../x"
    assert sigv4.canonical_uri({"RAW_URI": "/a/./b/../c"}, "lambda") == "/a/c"


def test_streaming_chunk_signatures_match_the_documented_example():
    """sigv4-streaming.html, "Example: PUT Object" (66560 bytes in chunks of 65536, 1024, 0)."""
    environ = {
        "REQUEST_METHOD": "PUT",
        "RAW_URI": "/examplebucket/chunkObject.txt",
        "QUERY_STRING": "",
        "HTTP_HOST": "s3.amazonaws.com",
        "HTTP_X_AMZ_DATE": "20130524T000000Z",
        "HTTP_X_AMZ_STORAGE_CLASS": "REDUCED_REDUNDANCY",
        "HTTP_X_AMZ_CONTENT_SHA256": sigv4.STREAMING_SIGNED,
        "HTTP_CONTENT_ENCODING": "aws-chunked",
        "HTTP_X_AMZ_DECODED_CONTENT_LENGTH": "66560",
        "CONTENT_LENGTH": "66824",
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class,"
        "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    }
    signed = sigv4.parse(environ)
    seed = sigv4.verify(environ, signed, SECRET, None, now=MAY_24_2013)
    signatures = [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ]
    body = b"".join(
        f"{n:x};chunk-signature={s}\r\n".encode() + b"a" * n + b"\r\n"
        for n, s in zip((65536, 1024, 0), signatures, strict=True)
    )
    assert len(body) == 66824

    def decode(data: bytes, length: int = 66560) -> bytes:
        return b"".join(streaming.ChunkedVerifier(signed, SECRET, seed, length).decode(io.BytesIO(data)))

    assert decode(body) == b"a" * 66560
    for bad in (body.replace(b"a" * 10, b"b" * 10, 1), body[: body.index(b"0;chunk")]):
        with pytest.raises(SignatureError, match="mismatch"):
            decode(bad)
    with pytest.raises(SignatureError, match="longer than"):
        decode(body, length=1000)
    with pytest.raises(SignatureError, match="differs from x-amz-decoded-content-length"):
        decode(body, length=70000)  # declared longer than what was sent


def test_the_documented_sigv2_query_string_example_verifies():
    """RESTAuthentication.html, "Query string request authentication": johnsmith's puppy.jpg."""
    query = (
        "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1175139620&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D"
    )
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/photos/puppy.jpg?{query}",
        "QUERY_STRING": query,
        "HTTP_HOST": "johnsmith.s3.amazonaws.com",
    }
    signed = sigv2.parse(environ)
    sigv2.verify(environ, signed, SECRET, "johnsmith", now=1175139620)
    with pytest.raises(SignatureError, match="expired"):
        sigv2.verify(environ, signed, SECRET, "johnsmith", now=1175139621)
    with pytest.raises(SignatureError, match="mismatch"):
        sigv2.verify(environ, signed, SECRET, "janesmith", now=1175139620)
