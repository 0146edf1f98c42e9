"""The size limit of every request the server answers, and AWS's answer to a request over it.

Every request's body is checked here, before any layer or moto reads it (see :func:`check`): a
Content-Length over the limit is refused from the header, a chunked body is read only up to the
limit (:func:`localaws.bodies.capped_input`). No request can make the server hold more than its limit.

Limits AWS documents, answered as AWS answers them:

- Lambda Invoke: 6291456 bytes synchronous, 1048576 ``Event``
  (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html; the asynchronous limit
  went from 256 KB to 1 MB in late 2025, with SQS's and EventBridge's:
  https://aws.amazon.com/blogs/compute/more-room-to-build-serverless-services-now-support-payloads-up-to-1-mb), 413
  ``RequestEntityTooLargeException`` "Request must be smaller than 6291456 bytes for the
  InvokeFunction operation" / "<n> byte payload is too large for the Event invocation type (limit
  1048576 bytes)".
- Lambda CreateFunction 70167211 bytes, UpdateFunctionCode and PublishLayerVersion 69905067 bytes
  (a 50 MB zip, base64-encoded, in the JSON request: the quotas page's "50 MB (zipped, when uploaded
  through the Lambda API)"), 413 ``RequestEntityTooLargeException`` "Request must be smaller than
  <limit> bytes for the <operation> operation" (Lambda's answers, as recorded against AWS in
  LocalStack's snapshot tests and in users' reports). AWS parses a CreateFunction request below that
  size to tell a zip over 50 MB ("Zipped size must be smaller than 52428800 bytes",
  :mod:`localaws.patches.lambda_validation`); a request above it is refused unread here.
- HTTP APIs: 10 MB payload (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html),
  413 ``{"message":"Request Entity Too Large"}``.
- SageMaker InvokeEndpoint: 6 MB for real-time endpoints (the serverless 4 MB is checked by
  :mod:`localaws.sagemaker.layer`: https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-invoke.html).
- S3 PutObject and UploadPart: 5 GB (https://docs.aws.amazon.com/AmazonS3/latest/userguide/upload-objects.html),
  400 ``EntityTooLarge`` "Your proposed upload exceeds the maximum allowed size".

Every other route of every service: ``QUERY_LIMIT`` for form-encoded (query protocol) requests and
``DEFAULT_LIMIT`` for the others, above every request payload AWS documents for the control-plane
APIs served here (PutLogEvents' 1 MB batch, SQS's and EventBridge's 1 MB, SNS's 256 KB, CloudWatch's
1 MB POST, CloudFormation's 51,200-byte template, even JSON-escaped), so nothing AWS accepts is
refused; a request above is answered 413 ``RequestEntityTooLarge`` in the service's format.

An XML document (the body of S3's configuration requests, and of the other REST-XML services) nested
more than ``MAX_XML_DEPTH`` deep is ``MalformedXML`` at once (:func:`refuse_deep_xml`): moto would
build it whole before failing, at a cost of seconds of the server's time for a few hundred KB.
"""

from __future__ import annotations

import functools
import io
import re
import xml.parsers.expat
from collections.abc import Callable
from dataclasses import dataclass

from localaws import bodies, service_errors
from localaws.service_errors import Service

DEFAULT_LIMIT = 8 << 20
QUERY_LIMIT = 2 << 20
INVOKE_LIMIT = {"RequestResponse": 6291456, "DryRun": 6291456, "Event": 1048576}
HTTP_API_LIMIT = 10 << 20
INVOKE_ENDPOINT_LIMIT = 6 << 20
S3_OBJECT_LIMIT = 5 << 30
MAX_XML_DEPTH = 1000  # deeper than any document an AWS API takes; Python's XML tools recurse past it
_BIG_SERVICES = {"dynamodb": 16 << 20, "kinesis": 10 << 20, "firehose": 4 << 20}

_INVOKE = re.compile(r"^/2015-03-31/functions/[^/]+/invocations/?$")
_LAMBDA_UPLOADS = (
    ("POST", re.compile(r"^/2015-03-31/functions/?$"), "CreateFunction", 70167211),
    ("PUT", re.compile(r"^/2015-03-31/functions/[^/]+/code/?$"), "UpdateFunctionCode", 69905067),
    ("POST", re.compile(r"^/2018-10-31/layers/[^/]+/versions/?$"), "PublishLayerVersion", 69905067),
)
_ENDPOINT_INVOKE = re.compile(r"^/endpoints/[^/]+/invocations/?$")
# S3 subresources whose PUT carries a configuration document, not an object's bytes.
_S3_OBJECT_QUERY = re.compile(r"^(?:(?:partNumber|uploadId|versionId|x-[^=&]*)=[^&]*&?)*$", re.I)


@dataclass(frozen=True)
class Limit:
    """At most ``bytes`` of body; ``refuse(length)`` is ``(status line, headers, body)`` of AWS's answer."""

    bytes: int
    refuse: Callable[[int], tuple[str, list[tuple[str, str]], bytes]]


def for_request(environ: dict, service: Service | None) -> Limit:
    """The limit of this request (``service`` None: one of the server's own, unsigned endpoints)."""
    path = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD", "GET")
    if service is None:  # an HTTP API's endpoint
        return Limit(HTTP_API_LIMIT, lambda length: _json(413, {"message": "Request Entity Too Large"}))
    if service.name == "lambda":
        if method == "POST" and _INVOKE.match(path):
            return _invoke_limit(environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse"), service)
        for verb, pattern, operation, size in _LAMBDA_UPLOADS:
            if method == verb and pattern.match(path):
                return _operation_limit(service, size, operation)
    elif service.name == "sagemaker" and method == "POST" and _ENDPOINT_INVOKE.match(path):
        message = f"HTTP content length exceeded {INVOKE_ENDPOINT_LIMIT} bytes."
        return Limit(INVOKE_ENDPOINT_LIMIT, lambda length: _json(413, {"message": message}))
    elif service.name == "s3" and method in ("PUT", "POST") and _is_object_upload(environ):
        return Limit(S3_OBJECT_LIMIT, lambda length: _s3_too_large(service, length))
    if service.protocol == "query" and service.name not in _BIG_SERVICES:
        return _operation_limit(service, QUERY_LIMIT)
    return _operation_limit(service, _BIG_SERVICES.get(service.name, DEFAULT_LIMIT))


@functools.lru_cache(maxsize=256)
def _invoke_limit(invocation_type: str, service: Service) -> Limit:
    limit = INVOKE_LIMIT.get(invocation_type, INVOKE_LIMIT["RequestResponse"])

    def refuse(length: int):
        if invocation_type == "Event":
            message = (
                f"{length} byte payload is too large for the Event invocation type (limit {limit} bytes)"
            )
        else:
            message = f"Request must be smaller than {limit} bytes for the InvokeFunction operation"
        return service_errors.response(service, 413, "RequestEntityTooLargeException", message)

    return Limit(limit, refuse)


@functools.lru_cache(maxsize=1024)
def _operation_limit(service: Service, size: int, operation: str | None = None) -> Limit:
    code = "RequestEntityTooLargeException" if service.name == "lambda" else "RequestEntityTooLarge"
    message = f"Request must be smaller than {size} bytes" + (
        f" for the {operation} operation" if operation else ""
    )
    return Limit(size, lambda length: service_errors.response(service, 413, code, message))


def _is_object_upload(environ: dict) -> bool:
    """A PUT of an object or a part (not of a bucket's or an object's configuration), or a POST upload."""
    if environ.get("REQUEST_METHOD") == "POST":
        return "multipart/form-data" in environ.get("CONTENT_TYPE", "")
    return bool(_S3_OBJECT_QUERY.match(environ.get("QUERY_STRING", "")))


def _s3_too_large(service: Service, length: int):
    status, headers, body = service_errors.response(
        service, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"
    )
    body = body.replace(
        b"</Message>",
        f"</Message><ProposedSize>{length}</ProposedSize><MaxSizeAllowed>{S3_OBJECT_LIMIT}</MaxSizeAllowed>".encode(),
    )
    headers = [(k, v) for k, v in headers if k != "Content-Length"] + [("Content-Length", str(len(body)))]
    return status, headers, body


def _json(status: int, document: dict) -> tuple[str, list[tuple[str, str]], bytes]:
    import json

    body = json.dumps(document).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    return f"{status} {bodies.phrase(status)}", headers, body


class _TooDeep(Exception):
    pass


def xml_too_deep(data: bytes, limit: int = MAX_XML_DEPTH) -> bool:
    """Whether ``data`` nests elements more than ``limit`` deep (a document with fewer tags cannot)."""
    if data.count(b"<") <= limit:
        return False
    parser, depth = xml.parsers.expat.ParserCreate(), 0

    def start(*_) -> None:
        nonlocal depth
        depth += 1
        if depth > limit:
            raise _TooDeep

    def end(*_) -> None:
        nonlocal depth
        depth -= 1

    parser.StartElementHandler, parser.EndElementHandler = start, end
    try:
        parser.Parse(data, True)
    except _TooDeep:
        return True
    except xml.parsers.expat.ExpatError:
        return False  # broken, not deep: the service says so itself
    return False


def refuse_deep_xml(environ: dict, service: Service | None) -> tuple | None:
    """MalformedXML for an XML request body nested too deeply (not an object's bytes: never read here),
    as ``(status line, headers, body)``; None otherwise (the body is then in memory, within its limit)."""
    if (
        service is None
        or service.protocol != "rest-xml"
        or environ.get("REQUEST_METHOD") not in ("PUT", "POST")
    ):
        return None
    if service.name == "s3" and _is_object_upload(environ):
        return None
    data = bodies.read_body(environ, for_request(environ, service).bytes)
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(data), str(len(data))
    if not xml_too_deep(data):
        return None
    status, code, message = service_errors.malformed(service, f"XML nested more than {MAX_XML_DEPTH} deep")
    return service_errors.response(service, status, code, message)
