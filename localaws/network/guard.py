"""Requests that come from an environment's AWS addresses: served by the server's own WSGI app, checked
first against the address they were sent to and the environment's network.

Each connection accepted on an environment's AWS listener (:mod:`.plane`) is served by the server's
own request handler class, subclassed here (:func:`handler_class`) so that every request's WSGI
environ carries ``localaws.endpoint``: the environment and the address it dialled. A client cannot forge
that key (a header becomes ``HTTP_...``). :func:`guard` wraps the app and, for those requests only:

- on a service's own address, a request signed for another service is refused as AWS refuses it, with
  the service's wire format (the SigV4 scope names the service, ``.../<region>/<service>/aws4_request``,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html):
  ``InvalidSignatureException``, "Credential should be scoped to correct service: '<service>'. ", as
  AWS's JSON services answer it (observed: 400 from JSON-protocol services,
  https://github.com/disneystreaming/smithy4s/issues/1568 and https://github.com/aws/aws-sdk-ruby/issues/431;
  403 from a REST-JSON one, https://github.com/aws/aws-sdk-go/issues/1850),
  ``SignatureDoesNotMatch`` with the same message in the XML of query and EC2 services, and for S3
  ``AuthorizationHeaderMalformed`` in S3's wording for a wrong scope (modelled on its answer for a wrong
  region, "The authorization header is malformed; the region 'x' is wrong; expecting 'y'"; S3's exact
  answer for a wrong service is not verified);
- on the generic ``AWS_ENDPOINT_URL`` address, the service is read from the scope, and a request the
  environment's network does not allow is held unanswered until the client gives up, as AWS drops it
  (the client sees a read timeout here where AWS gives a connect timeout: the price of one address for
  many services, which is why the common ones have their own);
- a request on a service's address after the environment lost its way to the service (a route removed
  while a keep-alive connection stayed open) is held the same way.

Unsigned requests pass (S3 serves anonymous requests; the other services answer them as they do).
"""

from __future__ import annotations

import json
import select
import socket
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape

from localaws.network import addresses

ENDPOINT_KEY = "localaws.endpoint"
HOLD_LIMIT_S = 900.0  # Lambda's longest timeout: the function gives up before the server does
_DRAIN_BYTES = 65536


@dataclass(frozen=True)
class Endpoint:
    """Which environment a connection came from, and the listener it dialled."""

    environment: str
    listener: str


def scope_service(environ: dict) -> str | None:
    """The service of a request's SigV4 credential scope (Authorization header, or ``X-Amz-Credential``
    of a presigned URL), or None for an unsigned request."""
    credential = ""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    if authorization.startswith("AWS4-HMAC-SHA256 "):
        for part in authorization[len("AWS4-HMAC-SHA256 ") :].split(","):
            key, _, value = part.strip().partition("=")
            if key == "Credential":
                credential = value
    else:
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        credential = (query.get("X-Amz-Credential") or [""])[0]
    parts = credential.split("/")
    return parts[3] if len(parts) == 5 and parts[4] == "aws4_request" and parts[3] else None


def _message(expected: str) -> str:
    return f"Credential should be scoped to correct service: '{expected}'. "


def wrong_scope(service: addresses.Service, signed_for: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status, headers, body) of the error ``service`` answers a request signed for ``signed_for``."""
    request_id = str(uuid.uuid4())
    if service.protocol == "json":
        status, content_type = "400 Bad Request", "application/x-amz-json-1.1"
        body = json.dumps(
            {"__type": "InvalidSignatureException", "message": _message(service.signing)}
        ).encode()
        extra = [("x-amzn-RequestId", request_id)]
    elif service.protocol == "rest-json":
        status, content_type = "403 Forbidden", "application/json"
        body = json.dumps({"message": _message(service.signing)}).encode()
        extra = [("x-amzn-ErrorType", "InvalidSignatureException"), ("x-amzn-RequestId", request_id)]
    elif service.protocol == "ec2":
        status, content_type, extra = "403 Forbidden", "text/xml", []
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>SignatureDoesNotMatch</Code>'
            f"<Message>{escape(_message(service.signing))}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        ).encode()
    elif service.protocol == "query":
        status, content_type, extra = "403 Forbidden", "text/xml", []
        body = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>"
            f"<Message>{escape(_message(service.signing))}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
    else:  # rest-xml: S3
        status, content_type, extra = "400 Bad Request", "application/xml", [("x-amz-request-id", request_id)]
        message = f"The authorization header is malformed; the service '{signed_for}' is wrong; expecting '{service.signing}'"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AuthorizationHeaderMalformed</Code>'
            f"<Message>{escape(message)}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
    return status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra], body


def hold(environ: dict, limit_s: float = HOLD_LIMIT_S) -> None:
    """Answer nothing: read and discard what the client sends until it closes or ``limit_s`` passes,
    then raise ConnectionAbortedError, which the server treats as a dropped connection."""
    conn = environ.get("werkzeug.socket")
    deadline = time.monotonic() + limit_s
    poller = select.poll()  # not select(): a server with many environments has fds past 1024
    if conn is not None:
        poller.register(conn, select.POLLIN)
    while conn is not None and (remaining := deadline - time.monotonic()) > 0:
        try:
            if poller.poll(min(remaining, 5.0) * 1000) and not conn.recv(_DRAIN_BYTES):
                break  # the client closed
        except (OSError, ValueError):
            break
    raise ConnectionAbortedError("dropped, as AWS drops a connection its network does not allow")


def guard(
    app: Callable, policy_of: Callable[[str], object | None], *, hold_limit_s: float = HOLD_LIMIT_S
) -> Callable[[dict, Callable], Iterable[bytes]]:
    """``app`` behind the checks above. ``policy_of(environment)`` is the environment's current
    :class:`.reachability.Policy` (None: the environment is gone, and its requests are dropped)."""

    def checked(environ: dict, start_response: Callable) -> Iterable[bytes]:
        endpoint = environ.get(ENDPOINT_KEY)
        if endpoint is None:
            return app(environ, start_response)  # this machine's own clients: notebooks, the CLI
        policy = policy_of(endpoint.environment)
        signed_for = scope_service(environ)
        if endpoint.listener == addresses.GENERIC:
            wanted = addresses.endpoint_of(signed_for, environ.get("PATH_INFO", "")) if signed_for else None
            if policy is None or wanted is None or not policy.allows_endpoint(wanted):
                hold(environ, hold_limit_s)
            return app(environ, start_response)
        service = addresses.BY_CLIENT.get(endpoint.listener)
        if service is None or policy is None or not policy.services.get(service.client):
            hold(environ, hold_limit_s)
        if signed_for is not None and signed_for != service.signing:
            status, headers, body = wrong_scope(service, signed_for)
            start_response(status, headers)
            return [body]
        return app(environ, start_response)

    return checked


def handler_class(base: type) -> type:
    """``base`` (the server's werkzeug request handler class) serving one connection of an environment:
    ``handler(connection, client_address, httpd, endpoint)``; each request's environ gets the endpoint."""

    class EndpointRequestHandler(base):
        def __init__(self, request: socket.socket, client_address, server, endpoint: Endpoint):
            self.localaws_endpoint = endpoint
            super().__init__(request, client_address, server)

        def make_environ(self) -> dict:
            environ = super().make_environ()
            environ[ENDPOINT_KEY] = self.localaws_endpoint
            return environ

    EndpointRequestHandler.__name__ = f"Endpoint{base.__name__}"
    return EndpointRequestHandler


def connection_server(httpd, base: type) -> Callable[[socket.socket, tuple, Endpoint], None]:
    """What :class:`.plane.NetworkPlane` calls for each accepted AWS connection: serve its requests with
    ``httpd``'s app and settings through ``base``'s handling, then return (the plane closes it)."""
    handler = handler_class(base)

    def serve(conn: socket.socket, client_address: tuple, endpoint: Endpoint) -> None:
        handler(conn, client_address, httpd, endpoint)

    return serve
