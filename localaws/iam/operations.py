"""Which API operation a request is, and its parameters, read backwards from botocore's service models.

The same models boto3 serialises requests with (https://smithy.io/2.0/aws/protocols/index.html):

- query / ec2 protocol (EC2, IAM, STS, CloudFormation): ``Action`` in the form body or the query string;
- json protocol (CloudWatch Logs, SageMaker, Service Quotas, Application Auto Scaling): the
  ``X-Amz-Target`` header, ``<targetPrefix>.<Operation>``;
- smithy-rpc-v2-cbor (CloudWatch in botocore >= 1.40): ``/service/<prefix>/operation/<Operation>``;
- rest-json / rest-xml (Lambda, S3, EFS, API Gateway v2, SageMaker Runtime): the operation whose
  ``http.method`` and ``requestUri`` template match (``{Label}`` one path segment, ``{Label+}`` greedy,
  literal query keys after ``?`` required) and whose *required* query-string and header members are
  present (or S3's PutObject/UploadPart/CopyObject and DeleteObject/AbortMultipartUpload could not be
  told apart); the most literal template wins. Path labels are percent-decoded from the path as sent.

The signing name of the credential scope picks the model: ``elasticfilesystem`` -> efs,
``apigateway`` -> apigatewayv2 (paths under ``/v2/``), ``sagemaker`` -> sagemaker (with X-Amz-Target)
or sagemaker-runtime, ``monitoring`` -> cloudwatch, ``servicequotas`` -> service-quotas. S3 requests
addressed virtual-host style carry the bucket in ``Host`` (:func:`bucket_from_host`).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import parse_qsl, unquote
from xml.sax.saxutils import unescape

import botocore.session

from localaws.iam.sigv4 import raw_path

SIGNING_TO_MODELS = {
    "lambda": ("lambda",),
    "s3": ("s3",),
    "elasticfilesystem": ("efs",),
    "apigateway": ("apigatewayv2", "apigateway"),
    "logs": ("logs",),
    "sagemaker": ("sagemaker", "sagemaker-runtime"),
    "ec2": ("ec2",),
    "iam": ("iam",),
    "sts": ("sts",),
    "cloudformation": ("cloudformation",),
    "monitoring": ("cloudwatch",),
    "servicequotas": ("service-quotas",),
    "application-autoscaling": ("application-autoscaling",),
}
_S3_OBJECT = re.compile(rb"<Object>(.*?)</Object>", re.S)
_S3_KEY = re.compile(rb"<Key>(.*?)</Key>", re.S)
_S3_VERSION = re.compile(rb"<VersionId>(.*?)</VersionId>", re.S)
_CBOR_PATH = re.compile(r"/service/([^/]+)/operation/([^/]+)")


@dataclass(slots=True)
class Operation:
    service: str  # the botocore service name (efs, apigatewayv2, sagemaker-runtime...)
    name: str  # the operation name (Invoke, ListObjectsV2...)
    params: dict = field(default_factory=dict)  # path labels, query members, JSON or form body members
    method: str = ""
    path: str = ""  # the path, percent-decoded


@dataclass(frozen=True, slots=True)
class _Route:
    name: str
    regex: re.Pattern
    labels: tuple[str, ...]
    required_query: tuple[tuple[str, str | None], ...]
    required_headers: tuple[str, ...]
    score: int


@cache
def model(service: str):
    """botocore's service model (loaded once per service: a few milliseconds each)."""
    return botocore.session.get_session().get_service_model(service)


def _compile_uri(uri: str) -> tuple[re.Pattern, tuple[str, ...], tuple, int]:
    path, _, query = uri.partition("?")
    labels, out, literal = [], [], 0
    for piece in re.split(r"(\{[^}]+\})", path):
        if piece.startswith("{"):
            name = piece[1:-1]
            labels.append(name.rstrip("+"))
            out.append("(.+)" if name.endswith("+") else "([^/]+)")
        else:
            out.append(re.escape(piece))
            literal += len(piece)
    required = tuple((k, v or None) for k, _, v in (p.partition("=") for p in query.split("&") if p))
    return re.compile("".join(out) + "/?"), tuple(labels), required, literal * 10 + len(required)


@cache
def _routes(service: str) -> dict[str, tuple[_Route, ...]]:
    """The REST routes of a service by HTTP method, most specific first."""
    by_method: dict[str, list[_Route]] = {}
    m = model(service)
    for name in m.operation_names:
        om = m.operation_model(name)
        regex, labels, required, score = _compile_uri(om.http["requestUri"])
        headers = []
        if om.input_shape is not None:
            for member in om.input_shape.required_members:
                shape = om.input_shape.members[member]
                where, wire = shape.serialization.get("location"), shape.serialization.get("name", member)
                if where == "querystring" and all(k != wire for k, _ in required):
                    required = required + ((wire, None),)
                elif where == "header":
                    headers.append("HTTP_" + wire.upper().replace("-", "_"))
        score += 10 * len(headers) + 10 * len(required)
        route = _Route(name, regex, labels, required, tuple(headers), score)
        by_method.setdefault(om.http["method"], []).append(route)
    return {k: tuple(sorted(v, key=lambda r: -r.score)) for k, v in by_method.items()}


def bucket_from_host(environ: dict) -> str | None:
    """The bucket of a virtual-host-style S3 request (``bucket.localhost:4566``, ``bucket.s3.amazonaws.com``)."""
    host = environ.get("HTTP_HOST", "").rsplit(":", 1)[0].strip("[]").lower()
    if not host or host == "localhost":
        return None
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if host.endswith(".localhost"):
        return host[: -len(".localhost")] or None
    for marker in (".s3.", ".s3-"):
        if marker in host:
            return host.split(marker, 1)[0] or None
    return None


def _rest(
    service: str, method: str, path: str, query: dict, bucket: str | None, environ: dict
) -> Operation | None:
    if bucket:  # the model's S3 templates start with /{Bucket}
        path = f"/{bucket}{path}" if path != "/" else f"/{bucket}"
    for route in _routes(service).get(method, ()):
        match = route.regex.fullmatch(path)
        if not match:
            continue
        if not all(k in query and (v is None or query[k] == v) for k, v in route.required_query):
            continue
        if not all(h in environ for h in route.required_headers):
            continue
        params = {label: unquote(value) for label, value in zip(route.labels, match.groups(), strict=True)}
        for header in route.required_headers:
            params[header[5:].lower().replace("_", "-")] = environ[header]
        return Operation(service, route.name, {**query, **params}, method, unquote(path))
    return None


def route(environ: dict, signing_name: str, body: bytes | None) -> Operation | None:
    """The operation of a request (None if no operation of the signing name's models matches).

    ``body`` is the request body when it was read into memory (None for a large one, which is never
    parsed for parameters)."""
    method = environ["REQUEST_METHOD"]
    path = raw_path(environ)
    query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    target = environ.get("HTTP_X_AMZ_TARGET")
    for service in SIGNING_TO_MODELS.get(signing_name, (signing_name,)):
        try:
            m = model(service)
        except Exception:  # noqa: BLE001 - botocore has no model for this signing name
            return None
        protocol = m.protocol
        if service == "apigatewayv2" and not path.startswith("/v2/"):
            continue
        if protocol in ("query", "ec2"):
            form = dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True)) if body else {}
            params = {**query, **form}
            if "Action" in params:
                return Operation(service, params.pop("Action"), params, method, unquote(path))
        elif protocol == "json":
            if target and "." in target:
                prefix, _, name = target.partition(".")
                if prefix == m.metadata.get("targetPrefix"):
                    return Operation(service, name, _json_params(body), method, unquote(path))
        elif protocol == "smithy-rpc-v2-cbor":
            match = _CBOR_PATH.fullmatch(path)
            if match and match.group(1) == m.metadata.get("targetPrefix"):
                return Operation(service, match.group(2), {}, method, unquote(path))
        else:
            bucket = bucket_from_host(environ) if service == "s3" else None
            op = _rest(service, method, path, query, bucket, environ)
            if op is None:
                continue
            input_shape = m.operation_model(op.name).input_shape
            has_payload = input_shape is not None and input_shape.serialization.get("payload")
            if protocol == "rest-json" and body and not has_payload:
                op.params = {**_json_params(body), **op.params}
            if service == "s3" and op.name == "DeleteObjects" and body:
                op.params["_objects"] = _deleted_objects(body)
            return op
    return None


def _deleted_objects(body: bytes) -> list[tuple[str, str | None]]:
    """(key, version id or None) of each ``<Object>`` of a DeleteObjects request body."""
    out = []
    for entry in _S3_OBJECT.findall(body):
        key, version = _S3_KEY.search(entry), _S3_VERSION.search(entry)
        if key is not None:
            out.append((_xml_text(key.group(1)), _xml_text(version.group(1)) if version else None))
    return out


def _xml_text(raw: bytes) -> str:
    return unescape(raw.decode(errors="replace"), {"&quot;": '"', "&apos;": "'"})


def _json_params(body: bytes | None) -> dict:
    if not body:
        return {}
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}
