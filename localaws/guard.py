"""No HTML answers: a failure inside a layer or moto becomes the service's modelled error.

moto's apps answer an unknown route with Flask's HTML 404 page and let every exception through
(``debug`` is on), which the server would render as an HTML 500 that boto3 cannot parse. Here:

- a body the service cannot parse (``RecursionError`` for JSON nested too deeply, a JSON or XML syntax
  error) is the service's serialization error (400): ``SerializationException``, Lambda's
  ``InvalidRequestContentException``, S3's ``MalformedXML``... (:func:`.service_errors.malformed`);
- an input moto could not handle (a missing or mistyped parameter that raised ``KeyError``,
  ``TypeError``...) is the service's validation error (400), naming what failed;
- an operation moto does not implement (it raises, or routes nowhere although the service's botocore
  model has it) is 501 ``NotImplemented``, naming it;
- any other HTML answer of moto's (an unknown route: 404 or 405) is 404 ``UnknownOperationException``;
  a JSON answer that moto labels ``text/html`` (Flask's default) is labelled as the protocol's JSON;
- anything else (a full disk, a bug) is the service's internal error (500: ``InternalFailure``,
  Lambda's ``ServiceException``), with the reason, and the traceback in the server's log.

A CloudFormation call always answers in CloudFormation's own format: when an error of another service
escapes from moto's stack code (moto builds the resources inside the call, so a Lambda
``ConflictException`` raised there comes back as Lambda's JSON), it is turned into CloudFormation's
XML ``ErrorResponse`` with the same code and message.
"""

from __future__ import annotations

import errno
import json
import logging
import traceback
import xml.parsers.expat
from collections.abc import Callable, Iterable
from xml.etree.ElementTree import ParseError

from localaws import service_errors
from localaws.bodies import BadFraming, phrase
from localaws.service_errors import Service

log = logging.getLogger(__name__)

_UNPARSABLE = (
    RecursionError, json.JSONDecodeError, xml.parsers.expat.ExpatError, ParseError, UnicodeDecodeError, BadFraming
)  # fmt: skip
_JSON_PROTOCOLS = {"json": "application/x-amz-json-1.1", "rest-json": "application/json"}
_BAD_INPUT = (
    KeyError, ValueError, TypeError, AttributeError, IndexError, LookupError, OverflowError, UnboundLocalError,
    StopIteration,
)  # fmt: skip


def answer_exception(exc: BaseException, service: Service | None, environ: dict) -> tuple[str, list, bytes]:
    """``(status line, headers, body)`` of the modelled error for ``exc`` raised while answering."""
    where = f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"
    if service is None:  # an HTTP API endpoint: API Gateway's answer
        status = 400 if isinstance(exc, _UNPARSABLE) else 500
        log.log(
            logging.INFO if status < 500 else logging.ERROR, "HTTP API request %s failed", where, exc_info=exc
        )
        body = json.dumps({"message": phrase(status)}).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        return f"{status} {phrase(status)}", headers, body
    if isinstance(exc, _UNPARSABLE):
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:300]
        log.info("%s: %s could not parse the request body: %s", where, service.name, reason)
        status, code, message = service_errors.malformed(service, reason)
    elif type(exc).__name__ == "OperationNotFoundError":  # botocore's, for an action the service has not
        log.info("%s: no %s operation %s", where, service.name, exc)
        code = "InvalidAction" if service.protocol in ("query", "ec2") else "UnknownOperationException"
        status, message = 400, f"The action or operation requested is invalid: {str(exc)[:200]}"
    elif isinstance(exc, NotImplementedError):
        log.info("%s: not emulated: %s", where, exc)
        status, code, message = 501, "NotImplemented", f"The local AWS does not emulate this operation: {exc}"
    elif isinstance(exc, _BAD_INPUT):
        _log_once(f"{where}: {service.name} failed on its input", exc)
        status, code, message = service_errors.invalid(
            service, f"The request could not be processed ({type(exc).__name__}: {str(exc)[:300]})."
        )
    else:
        _log_once(f"{where}: {service.name} failed", exc, logging.ERROR)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            reason = f"the local server's disk is full ({exc.filename or exc}): free some space and retry"
        else:
            reason = f"{type(exc).__name__}: {str(exc)[:300]}"
        status, code, message = service_errors.internal(service, f"The local AWS failed: {reason}.")
    return service_errors.response(service, status, code, message)


_logged: set[tuple] = set()


def _log_once(what: str, exc: BaseException, level: int = logging.WARNING) -> None:
    """The traceback the first time a failure happens at a place, one line after (a fuzzer or a loop of
    bad requests must not fill the log, nor spend the server's time formatting tracebacks)."""
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    place = (type(exc).__name__, *((frame[0].filename, frame[0].lineno) if frame else ()))
    if place in _logged:
        log.info("%s (%s: %s)", what, type(exc).__name__, str(exc)[:200])
        return
    _logged.add(place)
    log.log(level, "%s", what, exc_info=exc)


def call_moto(app: Callable, environ: dict, start_response: Callable, service: Service) -> Iterable[bytes]:
    """Run moto's app; its HTML pages and its exceptions become modelled errors (see the module)."""
    captured: dict = {}

    def capture(status: str, headers: list, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return lambda data: None  # moto's Flask apps return their body; they never write()

    try:
        body = app(environ, capture)
    except Exception as exc:  # noqa: BLE001 - every failure gets the service's modelled error
        status, headers, data = answer_exception(exc, service, environ)
        start_response(status, headers)
        return [data]
    status, headers, body = _modelled(environ, service, captured["status"], captured["headers"], body)
    start_response(status, headers)
    return [body] if isinstance(body, bytes) else body


def _modelled(environ: dict, service: Service, status: str, headers: list, body: Iterable[bytes]) -> tuple:
    """moto's answer, with an HTML page or a bare error status replaced by the modelled error, and a JSON
    answer labelled as Flask's default ``text/html`` labelled as JSON."""
    code = int(status.split()[0])
    method = environ.get("REQUEST_METHOD")
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    json_protocol = service.protocol in _JSON_PROTOCOLS
    if method == "HEAD":  # no body to model: the status is the answer, as on AWS
        return status, headers, body
    if code >= 400 and service.name == "cloudformation" and "json" in content_type:
        return _in_cloudformation_format(status, headers, body, service)
    if not content_type.startswith("text/html"):
        if not (code >= 400 and json_protocol):
            return status, headers, body
        data = b"".join(body)
        _close(body)
        return _bare(environ, service, status) if not data.strip() else (status, headers, [data])
    if code < 400 and not json_protocol:
        if service.protocol == "rest-xml" and method != "GET":  # S3's writes answer with no body, no type
            headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
        return status, headers, body
    data = b"".join(body)
    _close(body)
    if json_protocol and data.lstrip()[:1] != b"<":  # JSON, labelled with Flask's default type
        if code >= 400 and not data.strip():
            return _bare(environ, service, status)
        headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
        return status, [*headers, ("Content-Type", _JSON_PROTOCOLS[service.protocol])], [data]
    if code < 400:
        return status, headers, [data]
    return _instead_of_page(environ, service, status)


def _bare(environ: dict, service: Service, status: str) -> tuple:
    """The modelled error for an error status moto sent with nothing to say which error it is."""
    code, reason = int(status.split()[0]), status.split(" ", 1)[-1]
    error = service_errors.not_found_code(service) if code == 404 else f"Http{code}"
    message = f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}: {reason}."
    return service_errors.response(service, code, error, message)


def _instead_of_page(environ: dict, service: Service, status: str) -> tuple:
    """The modelled error for moto's HTML error page: an operation moto does not route (501), an unknown
    route (404), or a failure (500)."""
    code = int(status.split()[0])
    method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
    operation = service_errors.operation_of(service, environ) if code in (404, 405) else None
    if operation is not None:
        message = f"The local AWS does not emulate {operation} ({method} {path})."
        return service_errors.response(service, 501, "NotImplemented", message)
    if code in (404, 405):
        message = f"No {service.name} operation answers {method} {path}."
        return service_errors.response(service, 404, "UnknownOperationException", message)
    return answer_exception(RuntimeError(status), service, environ)


def _close(body: Iterable[bytes]) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()


def _in_cloudformation_format(status: str, headers: list, body: Iterable[bytes], service: Service) -> tuple:
    """Another service's JSON error escaped a CloudFormation call: answer it as CloudFormation's XML."""
    data = b"".join(body)
    _close(body)
    try:
        doc = json.loads(data)
        code = str(doc.get("__type") or doc.get("code") or "InternalFailure").split("#")[-1]
        message = str(doc.get("message") or doc.get("Message") or "")
    except (ValueError, AttributeError, RecursionError):
        code, message = "InternalFailure", data.decode(errors="replace")[:1000]
    log.warning("a %s error escaped a CloudFormation call: %s", code, message)
    _, headers, data = service_errors.response(service, int(status.split()[0]), code, message)
    return status, headers, [data]
