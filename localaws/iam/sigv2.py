"""S3 presigned URLs signed with Signature Version 2 (query-string authentication).

botocore 1.44 still presigns S3 URLs with SigV2 unless the client is configured with
``signature_version="s3v4"`` (measured: ``generate_presigned_url`` gives ``AWSAccessKeyId``,
``Signature`` and ``Expires``), so a local S3 that refused them would break code that works on AWS.

https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html#RESTAuthenticationQueryStringAuth:
``StringToSign = VERB\\nContent-MD5\\nContent-Type\\nExpires\\nCanonicalizedAmzHeaders CanonicalizedResource``,
``Signature = Base64(HMAC-SHA1(secret, StringToSign))``; ``x-amz-*`` query parameters count as headers;
the resource is ``/bucket/key`` plus the sub-resources the page lists, sorted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from localaws.iam.sigv4 import SignatureError, query_pairs, raw_path

SUBRESOURCES = frozenset(
    "accelerate acl cors defaultObjectAcl location logging partNumber policy requestPayment torrent "
    "versioning versionId versions website uploads uploadId response-content-type "
    "response-content-language response-expires response-cache-control response-content-disposition "
    "response-content-encoding delete lifecycle tagging restore storageClass notification replication "
    "analytics metrics inventory select select-type object-lock".split()
)


@dataclass(slots=True)
class SignedV2:
    access_key: str
    signature: str
    expires: int
    security_token: str | None


def parse(environ: dict) -> SignedV2 | None:
    """The SigV2 query signature of the request, or None."""
    query = environ.get("QUERY_STRING", "")
    if "AWSAccessKeyId=" not in query or "Signature=" not in query:
        return None
    params = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in query_pairs(query)}
    try:
        expires = int(params["Expires"])
    except (KeyError, ValueError):
        raise SignatureError(
            "malformed",
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
        ) from None
    return SignedV2(
        params["AWSAccessKeyId"], params["Signature"], expires, params.get("x-amz-security-token")
    )


def verify(
    environ: dict, signed: SignedV2, secret: str, bucket_from_host: str | None, now: float | None = None
) -> None:
    """Raise SignatureError unless the URL is unexpired and its signature matches."""
    if (time.time() if now is None else now) > signed.expires:
        raise SignatureError("expired", "Request has expired", expires=str(signed.expires))
    pairs = [
        (k.decode(errors="replace"), v.decode(errors="replace"))
        for k, v in query_pairs(environ.get("QUERY_STRING", ""))
    ]
    amz = {name.lower(): value for name, value in pairs if name.lower().startswith("x-amz-")}
    for key, value in environ.items():
        if key.startswith("HTTP_X_AMZ_"):
            amz.setdefault(key[5:].lower().replace("_", "-"), value.strip())
    resource = (f"/{bucket_from_host}" if bucket_from_host else "") + raw_path(environ)
    sub = sorted((n, v) for n, v in pairs if n in SUBRESOURCES)
    if sub:
        resource += "?" + "&".join(f"{n}={v}" if v else n for n, v in sub)
    string_to_sign = "\n".join(
        [
            environ["REQUEST_METHOD"],
            environ.get("HTTP_CONTENT_MD5", ""),
            environ.get("CONTENT_TYPE", ""),
            str(signed.expires),
            *(f"{k}:{amz[k]}" for k in sorted(amz)),
            resource,
        ]
    )
    expected = base64.b64encode(
        hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()
    ).decode()
    if not hmac.compare_digest(expected, signed.signature):
        raise SignatureError("mismatch", string_to_sign=string_to_sign)
