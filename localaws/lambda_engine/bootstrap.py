"""A minimal Python runtime client, for platforms where ``awslambdaric`` has no wheel (macOS, Windows).

Run as a script (``python bootstrap.py module.function``) with the task root as working directory
and ``AWS_LAMBDA_RUNTIME_API`` set. It speaks the same Runtime API as ``awslambdaric`` and reports
errors in its shapes: ``Runtime.ImportModuleError``, ``Runtime.HandlerNotFound``,
``Runtime.MalformedHandlerName``, ``Runtime.UserCodeSyntaxError`` at init, the exception's class name
for an exception raised at module scope or by the handler. Standard library only: it runs inside the
function's process, beside the function's own imports.
"""

import http.client
import importlib
import json
import os
import sys
import traceback


class LambdaContext:
    """The handler's ``context`` argument (the attributes and method handlers use)."""

    def __init__(self, request_id, deadline_ms, invoked_function_arn):
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        import time

        return max(0, self._deadline_ms - int(time.time() * 1000))


class _Fault(Exception):
    def __init__(self, error_type, message, trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.trace = trace or []


def _error(message, error_type, trace, request_id=""):
    return {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": trace}


def _exception_error(exc, request_id=""):
    trace = [line for line in traceback.format_tb(exc.__traceback__)]
    return _error(str(exc), type(exc).__name__, trace, request_id)


def load_handler(spec):
    try:
        module_name, function_name = spec.rsplit(".", 1)
    except ValueError as exc:
        raise _Fault("Runtime.MalformedHandlerName", f"Bad handler '{spec}': {exc}") from exc
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _Fault("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from exc
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise _Fault(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}", trace
        ) from exc
    try:
        return getattr(module, function_name)
    except AttributeError as exc:
        raise _Fault(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        ) from exc


class RuntimeClient:
    def __init__(self, address):
        host, port = address.split(":")
        self._conn = http.client.HTTPConnection(host, int(port))
        self._conn.connect()
        import socket

        self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _request(self, method, path, body=None, headers=None):
        self._conn.request(method, "/2018-06-01/runtime" + path, body=body, headers=headers or {})
        response = self._conn.getresponse()
        return response, response.read()

    def next(self):
        response, body = self._request("GET", "/invocation/next")
        if response.status != 200:
            sys.exit(0)  # the environment is being shut down
        return response.headers, body

    def respond(self, request_id, body):
        self._request("POST", f"/invocation/{request_id}/response", body)

    def fail(self, request_id, error):
        headers = {"Lambda-Runtime-Function-Error-Type": error["errorType"]}
        self._request("POST", f"/invocation/{request_id}/error", json.dumps(error).encode(), headers)

    def init_failed(self, error):
        headers = {"Lambda-Runtime-Function-Error-Type": error["errorType"]}
        self._request("POST", "/init/error", json.dumps(error).encode(), headers)


def main():
    sys.path[0] = os.getcwd()  # the task root, not this file's folder
    sys.stdout.reconfigure(line_buffering=True)  # a pipe is block-buffered; the log wants lines as they come
    client = RuntimeClient(os.environ["AWS_LAMBDA_RUNTIME_API"])
    try:
        handler = load_handler(sys.argv[1])
    except _Fault as fault:
        print(f"[ERROR] {fault.error_type}: {fault}", flush=True)
        client.init_failed(_error(str(fault), fault.error_type, fault.trace))
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - an exception at module scope is an init error
        print(f"[ERROR] {type(exc).__name__}: {exc}", flush=True)
        client.init_failed(_exception_error(exc))
        sys.exit(1)
    while True:
        headers, body = client.next()
        request_id = headers["Lambda-Runtime-Aws-Request-Id"]
        context = LambdaContext(
            request_id,
            int(headers["Lambda-Runtime-Deadline-Ms"]),
            headers["Lambda-Runtime-Invoked-Function-Arn"],
        )
        try:
            result = handler(json.loads(body or b"{}"), context)
            payload = json.dumps(result).encode()
        except Exception as exc:  # noqa: BLE001 - every handler error goes back to the caller
            print(f"[ERROR] {type(exc).__name__}: {exc}", flush=True)
            traceback.print_exc()
            sys.stdout.flush()
            client.fail(request_id, _exception_error(exc, request_id))
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        client.respond(request_id, payload)


if __name__ == "__main__":
    main()
