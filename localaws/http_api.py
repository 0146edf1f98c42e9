"""The local HTTP API endpoint: requests to ``<server>/_api/<api-id>/...`` run the API's Lambda target.

API Gateway HTTP APIs turn an HTTP request into a payload format 2.0 event, invoke the route's Lambda
integration and turn the function's answer back into an HTTP response. This layer does the same on
the embedded backend, so ``curl`` and ``requests`` work against a local API's ``ApiEndpoint`` as they
would against AWS:

- event: ``version`` 2.0, ``routeKey``, ``rawPath``, ``rawQueryString``, ``cookies``, lower-cased
  ``headers``, ``queryStringParameters``, ``pathParameters``,
  ``requestContext`` (``http`` method/path/protocol/sourceIp/userAgent, ``apiId``, ``stage`` ``$default``,
  ``requestId``, ``time``, ``timeEpoch``...), ``body`` and ``isBase64Encoded`` (true unless the content
  type is text, JSON, XML or a form, and the body is UTF-8);
- response: a dict with ``statusCode`` is taken as the response (``headers``, ``cookies``, ``body``,
  base64 bodies decoded when ``isBase64Encoded``); any other JSON value is a 200 ``application/json``
  body; a function error, an unreadable answer or a failed invoke is 500
  ``{"message":"Internal Server Error"}``, and an unknown API or route 404 ``{"message":"Not Found"}``.

API Gateway's limits (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html):
a request body above 10 MB is answered 413 ``{"message":"Request Entity Too Large"}``, chunked or not,
before this layer sees it (:mod:`localaws.limits`), and never held in memory; an integration that does
not answer within its ``TimeoutInMillis`` (default and maximum 30 s) is answered 503
``{"message":"Service Unavailable"}`` while the invocation runs on, as on AWS; a function response
over Lambda's 6 MB limit is a function error, so 500 ``{"message":"Internal Server Error"}``, and so is
a response whose ``statusCode`` is not an HTTP status (100-599) API Gateway could send.

Only ``$default`` stages are served (what quick create makes). API Gateway's request authorisation
(the function's resource policy) is not checked.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request

from localaws.bodies import phrase
from localaws.lambda_engine.layer import response_size_error
from localaws.patches import apigatewayv2

log = logging.getLogger(__name__)

_TEXT_TYPES = (
    "application/json",
    "application/javascript",
    "application/xml",
    "application/x-www-form-urlencoded",
)
_LAMBDA_ARN = re.compile(r"arn:[\w-]+:lambda:[\w-]+:\d{12}:function:[\w-]+(?::[\w$-]+)?")
_NOT_FOUND = (404, {"message": "Not Found"})
_INTERNAL_ERROR = (500, {"message": "Internal Server Error"})
_UNAVAILABLE = (503, {"message": "Service Unavailable"})
MAX_TIMEOUT_MS = 30000


class HttpApiLayer:
    """Serves every HTTP API's ``$default`` stage under ``/_api/<api-id>``."""

    def __init__(self, server_url: str):
        apigatewayv2.serve_endpoints_at(server_url)

    def handle(self, environ: dict, start_response: Callable) -> Iterable[bytes] | None:
        prefix = apigatewayv2.ENDPOINT_PATH + "/"
        path = environ.get("PATH_INFO", "")
        if not path.startswith(prefix):
            return None
        api_id, _, rest = path[len(prefix) :].partition("/")
        request_id = str(uuid.uuid4())
        # The body is at most 10 MB here, with a Content-Length: localaws.limits saw to that.
        status, headers, body = self._answer(Request(environ), api_id, "/" + rest)
        headers.append(("apigw-requestid", request_id))
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {phrase(status)}", headers)
        return [body]

    def _answer(self, request: Request, api_id: str, path: str) -> tuple[int, list[tuple[str, str]], bytes]:
        found = find_api(api_id)
        if found is None or "$default" not in found[0].stages:
            return _json_response(*_NOT_FOUND)
        api, account_id, region = found
        if not apigatewayv2.admit(api):  # the stage's throttle (token bucket), as API Gateway applies it
            return _json_response(429, {"message": "Too Many Requests"})
        matched = match_route(api, request.method, path)
        if matched is None:
            return _json_response(*_NOT_FOUND)
        route, path_parameters = matched
        target = _lambda_target(api, route)
        if target is None:
            log.warning("route %r of API %s has no Lambda integration", route.route_key, api_id)
            return _json_response(*_INTERNAL_ERROR)
        event = build_event(request, path, api_id, account_id, route.route_key, path_parameters)
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                from localaws.lambda_engine import get_engine

                outcome["result"] = get_engine().invoke(
                    target, None, json.dumps(event).encode(), account_id=account_id, region=region
                )
            except Exception as exc:  # noqa: BLE001 - API Gateway answers 500 to any integration failure
                outcome["error"] = exc

        worker = threading.Thread(target=run, name=f"http-api-{api_id}", daemon=True)
        worker.start()
        worker.join(_timeout_s(api, route))
        if worker.is_alive():
            log.info("%s did not answer API %s in time; the invocation goes on", target, api_id)
            return _json_response(*_UNAVAILABLE)
        if "error" in outcome:
            log.error("invoking %s for API %s failed: %s", target, api_id, outcome["error"])
            return _json_response(*_INTERNAL_ERROR)
        result = outcome["result"]
        if response_size_error(result.payload) is not None:  # Lambda's Function.ResponseSizeTooLarge
            log.info("%s answered API %s with a response over Lambda's limit", target, api_id)
            return _json_response(*_INTERNAL_ERROR)
        if result.function_error or result.status_code != 200:
            log.info(
                "%s answered API %s with %s", target, api_id, result.function_error or result.status_code
            )
            return _json_response(*_INTERNAL_ERROR)
        return proxy_response(result.payload)

    def shutdown(self) -> None:
        apigatewayv2.serve_endpoints_at(None)


def create(local_aws: Any) -> HttpApiLayer:
    """Layer factory for :class:`localaws.app.LocalAWS`."""
    return HttpApiLayer(local_aws.url)


def find_api(api_id: str) -> tuple[Any, str, str] | None:
    """The moto API with this id and its (account id, region), or None."""
    from moto.apigatewayv2.models import apigatewayv2_backends

    for account_id, regions in list(apigatewayv2_backends.items()):
        for region, backend in list(regions.items()):
            if api_id in backend.apis:
                return backend.apis[api_id], account_id, region
    return None


def _route_pattern(route_key: str) -> tuple[str, re.Pattern] | None:
    """``"GET /items/{id}"`` -> ("GET", regex with named groups); ``ANY`` matches every method."""
    method, _, template = route_key.partition(" ")
    if not template.startswith("/"):
        return None
    regex = ""
    for part in re.split(r"(\{[^}]+\})", template):
        if part.startswith("{") and part.endswith("+}"):
            regex += f"(?P<{part[1:-2]}>.+)"
        elif part.startswith("{"):
            regex += f"(?P<{part[1:-1]}>[^/]+)"
        else:
            regex += re.escape(part)
    return method, re.compile(regex + "$")


def match_route(api: Any, method: str, path: str) -> tuple[Any, dict[str, str]] | None:
    """The route API Gateway picks (exact, then with parameters, then greedy, then ``$default``)."""

    def specificity(route) -> tuple[int, int]:
        key = route.route_key
        return ("+}" in key, "{" in key), -len(key)

    default = None
    for route in sorted(api.routes.values(), key=specificity):
        if route.route_key == "$default":
            default = route
            continue
        pattern = _route_pattern(route.route_key)
        if pattern is None or pattern[0] not in (method, "ANY"):
            continue
        match = pattern[1].match(path)
        if match:
            return route, match.groupdict()
    return (default, {}) if default is not None else None


def _lambda_target(api: Any, route: Any) -> str | None:
    """The Lambda ARN behind a route (integration URI as an ARN or as an ``.../functions/<arn>/invocations`` path)."""
    integration_id = (route.target or "").removeprefix("integrations/")
    integration = api.integrations.get(integration_id)
    found = _LAMBDA_ARN.search(integration.integration_uri or "") if integration else None
    return found.group(0) if found else None


def _timeout_s(api: Any, route: Any) -> float:
    """The route integration's ``TimeoutInMillis`` (50-30000 ms for HTTP APIs, default 30000), in seconds."""
    integration = api.integrations.get((route.target or "").removeprefix("integrations/"))
    millis = getattr(integration, "timeout_in_millis", None) or MAX_TIMEOUT_MS
    return min(int(millis), MAX_TIMEOUT_MS) / 1000


def _is_text(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime.startswith("text/") or mime in _TEXT_TYPES or mime.endswith(("+json", "+xml"))


def build_event(
    request: Request,
    path: str,
    api_id: str,
    account_id: str,
    route_key: str,
    path_parameters: dict[str, str],
) -> dict[str, Any]:
    """The payload format 2.0 event API Gateway sends for this request."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    headers.setdefault("x-forwarded-for", request.remote_addr or "")
    headers.setdefault("x-forwarded-proto", request.scheme)
    now = time.time()
    raw_query = request.query_string.decode("latin-1")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "domainName": request.host,
            "domainPrefix": api_id,
            "http": {
                "method": request.method,
                "path": path,
                "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                "sourceIp": request.remote_addr or "",
                "userAgent": request.headers.get("User-Agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        event["queryStringParameters"] = {key: ",".join(values) for key, values in request.args.lists()}
    if path_parameters:
        event["pathParameters"] = path_parameters
    body = request.get_data()
    if body:
        try:
            text = body.decode() if _is_text(request.content_type or "") else None
        except UnicodeDecodeError:
            text = None
        event["body"] = text if text is not None else base64.b64encode(body).decode()
        event["isBase64Encoded"] = text is None
    return event


def proxy_response(payload: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """The HTTP response API Gateway makes from a function's answer (payload format 2.0)."""
    try:
        answer = json.loads(payload)
    except ValueError:
        log.info("the function's answer is not JSON: %r", payload[:200])
        return _json_response(*_INTERNAL_ERROR)
    if not (isinstance(answer, dict) and "statusCode" in answer):
        return 200, [("Content-Type", "application/json")], payload
    try:
        status = int(answer["statusCode"])
        if not 100 <= status <= 599:
            raise ValueError(f"statusCode {status} is not an HTTP status")
        headers = [(str(k), str(v)) for k, v in (answer.get("headers") or {}).items()]
        headers += [("Set-Cookie", str(cookie)) for cookie in answer.get("cookies") or []]
        body = answer.get("body", "")
        if not isinstance(body, str):
            body = json.dumps(body)
        data = base64.b64decode(body, validate=True) if answer.get("isBase64Encoded") else body.encode()
    except (TypeError, ValueError, binascii.Error):
        log.info("the function's answer is not a valid HTTP API response: %r", payload[:200])
        return _json_response(*_INTERNAL_ERROR)
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "text/plain; charset=utf-8"))
    return status, headers, data


def _json_response(status: int, document: dict) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "application/json")], json.dumps(document).encode()
