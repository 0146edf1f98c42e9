"""Server-side verification of AWS Signature Version 4 (Authorization header and presigned URLs).

The signature is recomputed the way botocore (and every AWS SDK) computes it, from what the server
received, and compared in constant time:

- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
  (canonical request, string to sign, signing key; the path is URI-encoded twice except for S3);
- https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html (S3: the path encoded
  once and not normalised, ``x-amz-content-sha256`` always sent, ``UNSIGNED-PAYLOAD``);
- https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html (presigned URLs:
  ``X-Amz-*`` in the query string, ``X-Amz-Signature`` left out of the canonical query string,
  ``X-Amz-Expires`` at most 604800 seconds).

What the server must use (each a pitfall that breaks real clients when missed):

- the path as sent on the wire (werkzeug's ``RAW_URI``), never ``PATH_INFO`` (percent-decoded: a
  ``%2F`` or ``%3A`` in a Lambda ARN or an S3 key would no longer match, and non-ASCII keys are
  re-encoded as latin-1);
- the query string as sent, each name and value decoded to *bytes* (``+`` stays a literal ``+``,
  invalid UTF-8 survives) and re-encoded with ``-_.~`` unreserved, sorted by name then value;
- ``Host`` exactly as sent, port included (botocore signs ``127.0.0.1:4566``);
- header values trimmed and inner runs of spaces collapsed (Trimall); repeated headers joined with
  ``,`` (werkzeug joins them so, and removes an obsolete line fold's CRLF);
- ``CONTENT_TYPE``/``CONTENT_LENGTH`` have no ``HTTP_`` prefix in the WSGI environ;
- a signature more than 15 minutes from the server's clock is refused ("Signature expired"), a
  presigned URL past ``X-Amz-Date + X-Amz-Expires`` too ("Request has expired").

Chunked (``aws-chunked``) bodies: :mod:`.streaming`; S3's Signature Version 2 presigned URLs: :mod:`.sigv2`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from calendar import timegm
from dataclasses import dataclass
from email.utils import parsedate_tz
from functools import lru_cache
from urllib.parse import quote, unquote_to_bytes

from botocore.utils import normalize_url_path

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
MAX_SKEW_S = 15 * 60
MAX_PRESIGN_EXPIRES_S = 7 * 24 * 3600
_HEX = frozenset("0123456789abcdef")


class SignatureError(Exception):
    """Why a request's credentials or signature were refused; ``kind`` picks the service's error.

    ``missing`` (no signature: MissingAuthenticationToken), ``malformed`` (IncompleteSignature,
    S3 AuthorizationHeaderMalformed), ``unknown_key`` (InvalidClientTokenId, UnrecognizedClientException,
    S3 InvalidAccessKeyId), ``bad_token`` (a session token that does not belong to the key),
    ``expired_token`` (a session past its expiration), ``skew`` (a signature more than 15 minutes
    old or ahead), ``expired`` (a presigned URL past its expiry), ``mismatch`` (SignatureDoesNotMatch,
    InvalidSignatureException), ``payload`` (S3 XAmzContentSHA256Mismatch), ``unsupported`` (a signing
    variant not emulated here). ``context`` holds what S3 echoes in its error (StringToSign...).
    """

    def __init__(self, kind: str, detail: str = "", **context: str) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind, self.detail, self.context = kind, detail, context


@dataclass(slots=True)
class Signed:
    """The signature-bearing parts of a request (from its Authorization header or its query string)."""

    access_key: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str  # the signing name: lambda, s3, elasticfilesystem, execute-api...
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str  # YYYYMMDDTHHMMSSZ
    presigned: bool
    expires: int | None  # X-Amz-Expires of a presigned URL
    security_token: str | None
    content_sha256: str | None  # x-amz-content-sha256 as sent, if any

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def query_pairs(query: str) -> list[tuple[bytes, bytes]]:
    """The query string's name/value pairs, percent-decoded to bytes (``+`` is not a space in SigV4)."""
    pairs = []
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote_to_bytes(key), unquote_to_bytes(value)))
    return pairs


def parse(environ: dict) -> Signed | None:
    """The request's SigV4 signature, or None when it carries none. Raises SignatureError('malformed')."""
    auth = environ.get("HTTP_AUTHORIZATION")
    token = environ.get("HTTP_X_AMZ_SECURITY_TOKEN")
    if auth:
        algorithm, _, rest = auth.strip().partition(" ")
        if algorithm != ALGORITHM:
            raise SignatureError("malformed", f"Unsupported Authorization Type {algorithm[:40]!r}")
        fields = {}
        for item in rest.split(","):
            name, _, value = item.strip().partition("=")
            fields[name] = value
        try:
            credential = fields["Credential"].split("/")
            signed_headers, signature = fields["SignedHeaders"], fields["Signature"]
        except KeyError as exc:
            raise SignatureError(
                "malformed", f"Authorization header requires '{exc.args[0]}' parameter."
            ) from None
        amz_date = environ.get("HTTP_X_AMZ_DATE") or _from_http_date(environ.get("HTTP_DATE", ""))
        presigned, expires = False, None
    elif "X-Amz-Algorithm=" in environ.get("QUERY_STRING", ""):
        params = {
            k.decode(errors="replace"): v.decode(errors="replace")
            for k, v in query_pairs(environ["QUERY_STRING"])
        }
        if params.get("X-Amz-Algorithm") != ALGORITHM:
            raise SignatureError("malformed", 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"')
        try:
            credential = params["X-Amz-Credential"].split("/")
            signed_headers, signature = params["X-Amz-SignedHeaders"], params["X-Amz-Signature"]
            amz_date, expires = params["X-Amz-Date"], int(params["X-Amz-Expires"])
        except (KeyError, ValueError) as exc:
            raise SignatureError("malformed", f"Query-string authentication requires {exc}") from None
        if not 0 < expires <= MAX_PRESIGN_EXPIRES_S:
            raise SignatureError(
                "malformed", "X-Amz-Expires must be less than a week (in seconds) that is 604800"
            )
        token, presigned = params.get("X-Amz-Security-Token"), True
    else:
        return None
    if len(credential) != 5 or credential[4] != "aws4_request":
        raise SignatureError(
            "malformed", "Credential should be scoped to a valid region, service and aws4_request."
        )
    if len(amz_date) != 16 or amz_date[:8] != credential[1]:
        raise SignatureError(
            "malformed",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.",
        )
    return Signed(
        access_key=credential[0],
        date=credential[1],
        region=credential[2],
        service=credential[3],
        signed_headers=tuple(signed_headers.split(";")),
        signature=signature,
        amz_date=amz_date,
        presigned=presigned,
        expires=expires,
        security_token=token,
        content_sha256=environ.get("HTTP_X_AMZ_CONTENT_SHA256"),
    )


def _from_http_date(value: str) -> str:
    """A ``Date`` header (RFC 1123) as YYYYMMDDTHHMMSSZ; SigV4 accepts it when X-Amz-Date is absent."""
    parsed = parsedate_tz(value) if value else None
    if not parsed:
        return ""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(timegm(parsed[:9]) - (parsed[9] or 0)))


def _environ_key(header: str) -> str:
    if header == "content-type":
        return "CONTENT_TYPE"
    if header == "content-length":
        return "CONTENT_LENGTH"
    return "HTTP_" + header.upper().replace("-", "_")


def raw_path(environ: dict) -> str:
    """The request path as sent on the wire (no query), for signing and routing."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", "/"))
    if raw.startswith(("http://", "https://")):  # an absolute-form request target
        raw = "/" + raw.split("/", 3)[3] if raw.count("/") >= 3 else "/"
    return raw.split("?", 1)[0] or "/"


def canonical_uri(environ: dict, service: str) -> str:
    """S3 signs the path as sent (encoded once, not normalised); every other service encodes it again."""
    path = raw_path(environ)
    if service == "s3":
        return path
    return quote(normalize_url_path(path), safe="/~")


def canonical_query(query: str, presigned: bool) -> str:
    pairs = []
    for key, value in query_pairs(query):
        if presigned and key == b"X-Amz-Signature":
            continue
        pairs.append((quote(key, safe="-_.~"), quote(value, safe="-_.~")))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_request(environ: dict, signed: Signed, payload_hash: str) -> str:
    lines = [
        environ["REQUEST_METHOD"],
        canonical_uri(environ, signed.service),
        canonical_query(environ.get("QUERY_STRING", ""), signed.presigned),
    ]
    for name in signed.signed_headers:
        value = environ.get(_environ_key(name), "")
        lines.append(f"{name}:{' '.join(value.split())}")
    lines.append("")
    lines.append(";".join(signed.signed_headers))
    lines.append(payload_hash)
    return "\n".join(lines)


@lru_cache(maxsize=512)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").

    Cached: the four HMACs are about a third of a small request's verification, and the key changes
    once a day per (secret, region, service)."""
    key = hmac.digest(("AWS4" + secret).encode(), date.encode(), "sha256")
    key = hmac.digest(key, region.encode(), "sha256")
    key = hmac.digest(key, service.encode(), "sha256")
    return hmac.digest(key, b"aws4_request", "sha256")


def payload_hash(signed: Signed, body_sha256: str | None) -> str:
    """The payload hash the client put in its canonical request.

    S3 sends it in ``x-amz-content-sha256`` (a hex digest, UNSIGNED-PAYLOAD or a STREAMING-* value);
    other services never send it, so it is the SHA-256 of the body; presigned URLs: UNSIGNED-PAYLOAD.
    """
    if signed.content_sha256:
        return signed.content_sha256
    if signed.presigned:
        return UNSIGNED_PAYLOAD
    return body_sha256 or EMPTY_SHA256


def check_time(signed: Signed, now: float | None = None) -> None:
    """Refuse a signature more than 15 minutes off the clock, or a presigned URL past its expiry."""
    now = time.time() if now is None else now
    when = epoch(signed.amz_date)
    if signed.presigned:
        if now > when + (signed.expires or 0):
            raise SignatureError("expired", "Request has expired", expires=str(signed.expires))
    elif abs(now - when) > MAX_SKEW_S:
        server = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        raise SignatureError(
            "skew",
            f"Signature expired: {signed.amz_date} is now earlier than "
            f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now - MAX_SKEW_S))} ({server} - 15 min.)"
            if when < now
            else f"Signature not yet current: {signed.amz_date} is still later than "
            f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now + MAX_SKEW_S))} ({server} + 15 min.)",
        )


def verify(
    environ: dict, signed: Signed, secret: str, body_sha256: str | None, now: float | None = None
) -> str:
    """Check the signature and return it (the seed of an aws-chunked body). Raises SignatureError.

    ``body_sha256`` is the hex SHA-256 of the body, for services that do not send it in a header."""
    check_time(signed, now)
    if "host" not in signed.signed_headers:
        raise SignatureError(
            "malformed", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    creq = canonical_request(environ, signed, payload_hash(signed, body_sha256))
    string_to_sign = "\n".join(
        (ALGORITHM, signed.amz_date, signed.scope, hashlib.sha256(creq.encode()).hexdigest())
    )
    key = signing_key(secret, signed.date, signed.region, signed.service)
    expected = hmac.digest(key, string_to_sign.encode(), "sha256").hex()
    if not hmac.compare_digest(expected, signed.signature):
        raise SignatureError("mismatch", canonical_request=creq, string_to_sign=string_to_sign)
    return expected


@lru_cache(maxsize=64)
def epoch(amz_date: str) -> int:
    """YYYYMMDDTHHMMSSZ as seconds (``time.strptime`` cost a fifth of a small request's verification)."""
    d = amz_date
    if len(d) != 16 or d[8] != "T" or d[15] != "Z" or not (d[:8] + d[9:15]).isdigit():
        raise SignatureError("malformed", f"Invalid X-Amz-Date {d[:40]!r}")
    return timegm(
        (int(d[0:4]), int(d[4:6]), int(d[6:8]), int(d[9:11]), int(d[11:13]), int(d[13:15]), 0, 0, 0)
    )


def sends_hex_digest(signed: Signed) -> bool:
    """Whether ``x-amz-content-sha256`` is a hex digest the body must match (not a literal)."""
    sent = signed.content_sha256
    return bool(sent) and len(sent) == 64 and set(sent) <= _HEX


def check_payload(signed: Signed, digest_hex: str) -> None:
    """S3: the body's SHA-256 must equal the signed ``x-amz-content-sha256`` (XAmzContentSHA256Mismatch)."""
    if sends_hex_digest(signed) and not hmac.compare_digest(signed.content_sha256, digest_hex):
        raise SignatureError(
            "payload",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ClientComputedContentSHA256=signed.content_sha256,
            S3ComputedContentSHA256=digest_hex,
        )
