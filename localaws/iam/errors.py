"""Each service's own answer when IAM refuses a request: status, error code, message and body format.

The body is the service protocol's error shape (https://smithy.io/2.0/aws/protocols/index.html), so that
boto3 and the AWS CLI raise the same ``ClientError`` code as against AWS. Codes and statuses per
protocol family, from the services' Common Errors pages (e.g. https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html)
and from AWS answers recorded in public issues (evidence per row in the prototype's FINDINGS.md §5):

| family | denied | unknown key / bad token | expired token | bad signature | clock skew |
|---|---|---|---|---|---|
| query (IAM, STS, CloudFormation) | 403 AccessDenied | 403 InvalidClientTokenId | 403 ExpiredToken | 403 SignatureDoesNotMatch | 403 SignatureDoesNotMatch |
| ec2 | 403 UnauthorizedOperation | 401 AuthFailure | 400 RequestExpired | 401 AuthFailure | 400 RequestExpired |
| json (Logs, SageMaker) | 400 AccessDeniedException | 400 UnrecognizedClientException | 400 ExpiredTokenException | 400 InvalidSignatureException | 400 InvalidSignatureException |
| rest-json (Lambda, EFS, API Gateway) | 403 AccessDeniedException | 403 UnrecognizedClientException | 403 ExpiredTokenException | 403 InvalidSignatureException | 403 InvalidSignatureException |
| rest-xml (S3) | 403 AccessDenied | 403 InvalidAccessKeyId / 400 InvalidToken | 400 ExpiredToken | 403 SignatureDoesNotMatch | 403 RequestTimeTooSkewed |

Messages: denials carry :func:`.evaluator.denial_message`'s sentence, except that EC2 prefixes "You are
not authorized to perform this operation. ", S3 quotes the resource ARN (``on resource: "arn:aws:s3:::b/k"``),
and EFS says only "User is not authorized to perform that action on the specified resource". A
request without any signature gets ``MissingAuthenticationToken`` (403); S3's signature errors echo
``StringToSign``/``CanonicalRequest``, as S3 does, so a client can see what was compared.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape

QUERY_SERVICES = frozenset(
    {"iam", "sts", "cloudformation", "sns", "sqs", "autoscaling", "elasticloadbalancing", "rds"}
)
SIG_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)
S3_SIG_MESSAGE = "The request signature we calculated does not match the signature you provided. Check your key and signing method."
TOKEN_MESSAGE = "The security token included in the request is invalid."
EXPIRED_TOKEN_MESSAGE = "The security token included in the request is expired"

CODES = {
    "query": {
        "denied": (403, "AccessDenied"),
        "missing": (403, "MissingAuthenticationToken"),
        "malformed": (400, "IncompleteSignature"),
        "unknown_key": (403, "InvalidClientTokenId"),
        "bad_token": (403, "InvalidClientTokenId"),
        "expired_token": (403, "ExpiredToken"),
        "mismatch": (403, "SignatureDoesNotMatch"),
        "skew": (403, "SignatureDoesNotMatch"),
        "expired": (403, "SignatureDoesNotMatch"),
    },
    "ec2": {
        "denied": (403, "UnauthorizedOperation"),
        "missing": (401, "MissingAuthenticationToken"),
        "malformed": (401, "AuthFailure"),
        "unknown_key": (401, "AuthFailure"),
        "bad_token": (401, "AuthFailure"),
        "expired_token": (400, "RequestExpired"),
        "mismatch": (401, "AuthFailure"),
        "skew": (400, "RequestExpired"),
        "expired": (400, "RequestExpired"),
    },
    "json": {
        "denied": (400, "AccessDeniedException"),
        "missing": (400, "MissingAuthenticationTokenException"),
        "malformed": (400, "IncompleteSignatureException"),
        "unknown_key": (400, "UnrecognizedClientException"),
        "bad_token": (400, "UnrecognizedClientException"),
        "expired_token": (400, "ExpiredTokenException"),
        "mismatch": (400, "InvalidSignatureException"),
        "skew": (400, "InvalidSignatureException"),
        "expired": (400, "InvalidSignatureException"),
    },
    "rest-json": {
        "denied": (403, "AccessDeniedException"),
        "missing": (403, "MissingAuthenticationTokenException"),
        "malformed": (403, "IncompleteSignatureException"),
        "unknown_key": (403, "UnrecognizedClientException"),
        "bad_token": (403, "UnrecognizedClientException"),
        "expired_token": (403, "ExpiredTokenException"),
        "mismatch": (403, "InvalidSignatureException"),
        "skew": (403, "InvalidSignatureException"),
        "expired": (403, "InvalidSignatureException"),
    },
    "rest-xml": {
        "denied": (403, "AccessDenied"),
        "missing": (403, "AccessDenied"),
        "malformed": (400, "AuthorizationHeaderMalformed"),
        "unknown_key": (403, "InvalidAccessKeyId"),
        "bad_token": (400, "InvalidToken"),
        "expired_token": (400, "ExpiredToken"),
        "mismatch": (403, "SignatureDoesNotMatch"),
        "skew": (403, "RequestTimeTooSkewed"),
        "expired": (403, "AccessDenied"),
        "payload": (400, "XAmzContentSHA256Mismatch"),
    },
}
for _family in CODES.values():
    _family.setdefault("payload", _family["mismatch"])
    _family["unsupported"] = (501, "NotImplemented")
CODES["smithy-rpc-v2-cbor"] = CODES["json"]
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 501: "Not Implemented"}
_NAMESPACE = {
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "cloudformation": "http://cloudformation.amazonaws.com/doc/2010-05-15/",
}


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete HTTP answer the IAM room gives instead of the next layer (a refusal, or an operation
    it answers itself); ``send`` writes it through WSGI."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def code(self) -> int:
        return int(self.status.split()[0])

    def send(self, start_response: Callable) -> Iterable[bytes]:
        start_response(self.status, list(self.headers))
        return [self.body]


def family(signing_name: str, environ: dict) -> str:
    """The protocol family of a request, told from the request itself (no model loading on this path)."""
    if environ.get("HTTP_SMITHY_PROTOCOL", "").lower() == "rpc-v2-cbor":
        return "smithy-rpc-v2-cbor"
    if environ.get("HTTP_X_AMZ_TARGET"):
        return "json"
    if signing_name in ("s3", "s3-object-lambda"):
        return "rest-xml"
    if signing_name == "ec2":
        return "ec2"
    if signing_name in QUERY_SERVICES or environ.get("CONTENT_TYPE", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        return "query"
    return "rest-json"


def message_for(signing_name: str, fam: str, kind: str, detail: str = "") -> str:
    """The message of a refusal: the denial sentence adapted per service, or the fixed text of a kind."""
    if kind == "denied":
        if fam == "ec2":
            return f"You are not authorized to perform this operation. {detail}"
        if signing_name == "elasticfilesystem":
            return "User is not authorized to perform that action on the specified resource"
        return detail  # S3's quoted resource: evaluator.denial_message(quoted=True)
    if kind in ("unknown_key", "bad_token"):
        if fam == "rest-xml":
            if kind == "unknown_key":
                return "The AWS Access Key Id you provided does not exist in our records."
            return "The provided token is malformed or otherwise invalid."
        return (
            "AWS was not able to validate the provided access credentials" if fam == "ec2" else TOKEN_MESSAGE
        )
    if kind == "expired_token":
        return "The provided token has expired." if fam == "rest-xml" else EXPIRED_TOKEN_MESSAGE
    if kind == "mismatch":
        return S3_SIG_MESSAGE if fam == "rest-xml" else SIG_MESSAGE
    if kind == "missing":
        if fam == "rest-xml":
            return "Access Denied"
        return (
            "Request is missing Authentication Token"
            if fam in ("query", "ec2")
            else "Missing Authentication Token"
        )
    if kind == "skew" and fam == "rest-xml":
        return "The difference between the request time and the current time is too large."
    if kind == "unsupported":
        return f"The local AWS does not emulate this: {detail}"
    return detail


def render(signing_name: str, fam: str, kind: str, message: str, extra: dict | None = None) -> Answer:
    """The refusal in the service's protocol, so that the SDK raises the modelled error."""
    status, code = CODES[fam][kind]
    request_id = str(uuid.uuid4())
    headers = [("x-amzn-RequestId", request_id)]
    if fam in ("json", "rest-json"):
        body = json.dumps({"__type": code, "message" if fam == "json" else "Message": message}).encode()
        content_type = "application/x-amz-json-1.1" if fam == "json" else "application/json"
        headers += [("Content-Type", content_type), ("x-amzn-ErrorType", code)]
    elif fam == "smithy-rpc-v2-cbor":
        body = cbor_map({"__type": code, "message": message})
        headers += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
    elif fam == "ec2":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers += [("Content-Type", "text/xml;charset=UTF-8")]
    elif fam == "rest-xml":
        fields = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in (extra or {}).items())
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}</Message>'
            f"{fields}<RequestId>{request_id}</RequestId><HostId>{uuid.uuid4().hex}</HostId></Error>"
        ).encode()
        headers += [("Content-Type", "application/xml")]
    else:
        namespace = _NAMESPACE.get(signing_name, "")
        body = (
            f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers += [("Content-Type", "text/xml")]
    headers.append(("Content-Length", str(len(body))))
    return Answer(f"{status} {_REASONS.get(status, 'Error')}", headers, body)


def refusal(
    signing_name: str, environ: dict, kind: str, detail: str = "", extra: dict | None = None
) -> Answer:
    """The service's answer to a refusal of ``kind`` (see :class:`.sigv4.SignatureError` and ``denied``)."""
    fam = family(signing_name, environ)
    if kind not in CODES[fam]:
        kind = "mismatch"
    return render(
        signing_name,
        fam,
        kind,
        message_for(signing_name, fam, kind, detail),
        extra if fam == "rest-xml" else None,
    )


def cbor_map(document: dict[str, str]) -> bytes:
    """A CBOR map of text strings (RFC 8949 major types 5 and 3), for smithy-rpc-v2-cbor errors."""

    def head(major: int, length: int) -> bytes:
        if length < 24:
            return bytes([major << 5 | length])
        for size, extra in ((1, 24), (2, 25), (4, 26), (8, 27)):
            if length < 1 << (8 * size):
                return bytes([major << 5 | extra]) + length.to_bytes(size, "big")
        raise ValueError("too long")

    out = head(5, len(document))
    for key, value in document.items():
        for text in (key, value):
            data = text.encode()
            out += head(3, len(data)) + data
    return out
