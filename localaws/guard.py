"""No HTML answers: a failure inside a layer or moto becomes the service's modelled error.

moto's apps answer an unknown route with Flask's HTML 404 page and let every exception through
(``debug`` is on), which the server would render as an HTML 500 that boto3 cannot parse. Here:

- a body the service cannot parse (``RecursionError`` for JSON nested too deeply, a JSON or XML syntax
  error) is the service's serialization error (400): ``SerializationException``, Lambda's
  ``InvalidRequestContentException``, S3's ``MalformedXML``... (:func:`.service_errors.malformed`);
- an input moto could not handle (a missing or mistyped parameter that raised ``KeyError``,
  ``TypeError``...) is the service's validation error (400), naming what failed;
- an operation moto does not implement is 501 ``NotImplemented``, saying so;
- an HTML answer of moto's (an unknown route: 404 or 405) is 404 ``UnknownOperationException``;
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
_BAD_INPUT = (KeyError, ValueError, TypeError, AttributeError, IndexError, LookupError, OverflowError)


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
    elif isinstance(exc, NotImplementedError):
        log.info("%s: not emulated: %s", where, exc)
        status, code, message = 501, "NotImplemented", f"The local AWS does not emulate this operation: {exc}"
    elif isinstance(exc, _BAD_INPUT):
        log.warning("%s: %s failed on its input", where, service.name, exc_info=exc)
        status, code, message = service_errors.invalid(
            service, f"The request could not be processed ({type(exc).__name__}: {str(exc)[:300]})."
        )
    else:
        log.error("%s: %s failed", where, service.name, exc_info=exc)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            reason = f"the local server's disk is full ({exc.filename or exc}): free some space and retry"
        else:
            reason = f"{type(exc).__name__}: {str(exc)[:300]}"
        status, code, message = service_errors.internal(service, f"The local AWS failed: {reason}.")
    return service_errors.response(service, status, code, message)


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
    status, headers = captured["status"], captured["headers"]
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    code = int(status.split()[0])
    if code >= 400 and content_type.startswith("text/html"):
        _close(body)
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        if code in (404, 405):
            status, headers, data = service_errors.response(
                service,
                404,
                "UnknownOperationException",
                f"No {service.name} operation answers {method} {path}.",
            )
        else:
            status, headers, data = answer_exception(RuntimeError(status), service, environ)
        start_response(status, headers)
        return [data]
    if service.name == "cloudformation" and code >= 400 and "json" in content_type:
        return _in_cloudformation_format(status, headers, body, service, start_response)
    start_response(status, headers)
    return body


def _close(body: Iterable[bytes]) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()


def _in_cloudformation_format(
    status: str, headers: list, body: Iterable[bytes], service: Service, start_response: Callable
) -> list[bytes]:
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
    start_response(status, headers)
    return [data]
