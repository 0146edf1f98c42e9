"""Errors in each service's own wire format, so that a client always gets a modelled error, never HTML.

AWS services answer errors in the shape of their protocol, which is what boto3 and the AWS CLI parse
into ``ClientError`` with a code (https://smithy.io/2.0/aws/protocols/index.html):

- ``json`` (``X-Amz-Target`` requests: CloudWatch Logs, SageMaker, EventBridge, SQS...): a JSON body
  ``{"__type": code, "message": ...}``;
- ``rest-json`` (Lambda, API Gateway, EFS...): a JSON body ``{"message": ...}`` and the code in the
  ``x-amzn-ErrorType`` header;
- ``query`` (IAM, STS, CloudFormation, SNS, CloudWatch's form API...): XML ``<ErrorResponse><Error>
  <Type>Sender</Type><Code/><Message/></Error><RequestId/></ErrorResponse>``; ``ec2``: XML
  ``<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>``;
- ``rest-xml`` (S3): XML ``<Error><Code/><Message/><RequestId/></Error>``;
- ``smithy-rpc-v2-cbor`` (CloudWatch with current SDKs): a CBOR map ``{"__type", "message"}``.

The protocol is told from the request itself (its signing scope, ``X-Amz-Target``, ``smithy-protocol``)
rather than from botocore's service models, which would cost seconds to load on this path.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from typing import NamedTuple
from urllib.parse import unquote
from xml.sax.saxutils import escape

from localaws.bodies import phrase

_SCOPE = re.compile(r"Credential=[^/,\s]*/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")
_QUERY_SCOPE = re.compile(r"X-Amz-Credential=[^&/]*(?:/|%2F)\d{8}(?:/|%2F)([^&/%]+)(?:/|%2F)([^&/%]+)", re.I)
# Unsigned requests to these paths are Lambda's, as the Lambda layer answers them (moto would take any
# unsigned request for S3).
_LAMBDA_PATH = re.compile(
    r"^/20\d\d-\d\d-\d\d/(?:functions|layers|account-settings|event-source-mappings|tags)\b"
)
# Services whose SDKs speak the query protocol (form bodies, XML answers).
QUERY_SERVICES = frozenset(
    {"iam", "sts", "cloudformation", "sns", "monitoring", "autoscaling", "elasticloadbalancing", "rds",
     "ses", "elasticache", "redshift", "sdb", "elasticbeanstalk", "cloudsearch", "importexport", "sqs"}
)  # fmt: skip
# The code each service uses for a body it cannot parse, where it is not the protocol's default.
_MALFORMED = {
    "lambda": ("InvalidRequestContentException", "Could not parse request body into json: {reason}"),
    "apigateway": ("BadRequestException", "Could not parse request body into json: {reason}"),
    "elasticfilesystem": ("BadRequest", "Could not parse request body into json: {reason}"),
}
# The code each service uses for an input it refuses (moto failed on it) and for its own failures.
_INVALID = {
    "lambda": "InvalidParameterValueException",
    "apigateway": "BadRequestException",
    "elasticfilesystem": "BadRequest",
}
_INTERNAL = {"lambda": "ServiceException", "s3": "InternalError", "apigateway": "InternalServerError"}


class Service(NamedTuple):
    """Who a request is for: the signing name of its service, its region and its protocol."""

    name: str
    region: str
    protocol: str


def service_of(environ: dict) -> Service:
    """The service a request is for, as its signature says (``s3`` when unsigned, as moto assumes)."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        name, region = match["service"].lower(), match["region"]
    else:
        query = _QUERY_SCOPE.search(environ.get("QUERY_STRING", ""))
        if query:
            name, region = query[2].lower(), unquote(query[1])
        elif _LAMBDA_PATH.match(environ.get("PATH_INFO", "")):
            name, region = "lambda", "us-east-1"
        else:
            name, region = "s3", "us-east-1"
    return Service(name, region, _protocol(name, environ))


def _protocol(name: str, environ: dict) -> str:
    if environ.get("HTTP_SMITHY_PROTOCOL", "").lower() == "rpc-v2-cbor":
        return "smithy-rpc-v2-cbor"
    if environ.get("HTTP_X_AMZ_TARGET"):
        return "json"
    if name in ("s3", "s3-object-lambda"):
        return "rest-xml"
    if name == "ec2":
        return "ec2"
    if name in QUERY_SERVICES or environ.get("CONTENT_TYPE", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        return "query"
    return "rest-json"


def response(
    service: Service, status: int, code: str, message: str
) -> tuple[str, list[tuple[str, str]], bytes]:
    """``(status line, headers, body)`` of an error in ``service``'s format."""
    request_id = str(uuid.uuid4())
    headers = [("x-amzn-RequestId", request_id)]
    if service.protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        headers += [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
    elif service.protocol == "smithy-rpc-v2-cbor":
        body = _cbor_map({"__type": code, "message": message})
        headers += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
    elif service.protocol == "rest-xml":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
        headers += [("Content-Type", "application/xml")]
    elif service.protocol == "ec2":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers += [("Content-Type", "text/xml")]
    elif service.protocol == "query":
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers += [("Content-Type", "text/xml")]
    else:  # rest-json
        doc = {"Type": "User" if status < 500 else "Service", "message": message}
        body = json.dumps(doc).encode()
        headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
    headers.append(("Content-Length", str(len(body))))
    return f"{status} {phrase(status)}", headers, body


_BOTOCORE_NAMES = {
    "elasticfilesystem": "efs",
    "monitoring": "cloudwatch",
    "states": "stepfunctions",
    "email": "ses",
}


def operation_of(service: Service, environ: dict) -> str | None:
    """The name of the AWS operation a request is for, by the service's botocore model (None: no such
    operation). Loads the model: for error paths only."""
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
    name = _BOTOCORE_NAMES.get(service.name, service.name)
    if name == "apigateway" and path.startswith("/v2/"):
        name = "apigatewayv2"
    elif name == "sagemaker" and path.startswith("/endpoints/"):
        name = "sagemaker-runtime"
    routes = _routes(name)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return next((op for op, (_, _, tgt) in routes.items() if tgt == target), None)
    return next(
        (op for op, (verb, pattern, _) in routes.items() if verb == method and pattern.match(path)), None
    )


@functools.lru_cache(maxsize=32)
def _routes(name: str) -> dict[str, tuple[str, re.Pattern, str]]:
    """operation -> (HTTP method, path pattern, X-Amz-Target) from botocore's model of service ``name``."""
    import botocore.session

    try:
        model = botocore.session.get_session().get_service_model(name)
    except Exception:  # noqa: BLE001 - a service botocore does not know has no operations to name
        return {}
    prefix = model.metadata.get("targetPrefix", "")
    routes = {}
    for op in model.operation_names:
        http = model.operation_model(op).http
        template = http.get("requestUri", "/").split("?")[0]
        pattern = re.sub(r"\\\{[^}]+?\\\+\\\}", ".+", re.escape(template))
        pattern = re.sub(r"\\\{[^}]+?\\\}", "[^/]+", pattern)
        routes[op] = (http.get("method", "POST"), re.compile(pattern.rstrip("/") + "/?$"), f"{prefix}.{op}")
    return routes


def malformed(service: Service, reason: str) -> tuple[int, str, str]:
    """``(status, code, message)`` for a body the service cannot parse (broken or nested too deeply)."""
    if service.name in _MALFORMED:
        code, message = _MALFORMED[service.name]
        return 400, code, message.format(reason=reason)
    if service.protocol == "rest-xml":
        return (
            400,
            "MalformedXML",
            ("The XML you provided was not well-formed or did not validate against our published schema"),
        )
    if service.protocol in ("query", "ec2"):
        return 400, "MalformedQueryString", f"The request could not be parsed: {reason}"
    return 400, "SerializationException", f"Could not parse the request body: {reason}"


def invalid(service: Service, message: str) -> tuple[int, str, str]:
    """``(status, code, message)`` for an input the service refuses without a more precise error."""
    if service.name in _INVALID:
        return 400, _INVALID[service.name], message
    return (
        400,
        {
            "query": "ValidationError",
            "ec2": "InvalidParameterValue",
            "rest-xml": "InvalidRequest",
        }.get(service.protocol, "ValidationException"),
        message,
    )


def not_found_code(service: Service) -> str:
    """The code of the service's error for a resource that does not exist."""
    return {"apigateway": "NotFoundException", "elasticfilesystem": "BadRequest"}.get(
        service.name, "ResourceNotFoundException"
    )


def internal(service: Service, message: str) -> tuple[int, str, str]:
    """``(status, code, message)`` for a failure of the service itself (the local server's)."""
    return 500, _INTERNAL.get(service.name, "InternalFailure"), message


def _cbor_map(doc: dict[str, str]) -> bytes:
    """A CBOR map of text strings (RFC 8949): all an error document needs."""

    def head(major: int, length: int) -> bytes:
        if length < 24:
            return bytes([major << 5 | length])
        for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if length < 1 << (8 * size):
                return bytes([major << 5 | extra]) + length.to_bytes(size, "big")
        raise ValueError(length)

    out = head(5, len(doc))
    for key, value in doc.items():
        for text in (key, value):
            data = text.encode()
            out += head(3, len(data)) + data
    return out
