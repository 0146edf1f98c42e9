"""The emulated PyTorch inference container: a model server speaking SageMaker's serving contract.

This file is the "container image" of the local backend (it runs inside the sandbox, alone, with the
standard library only; the server never imports it). It follows two documented contracts:

- the serving container (https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html):
  a web server on the port in ``SAGEMAKER_BIND_TO_PORT`` (8080 by default; here always on 127.0.0.1)
  answering ``GET /ping`` (200 once the model is loaded) and ``POST /invocations``; the model archive
  is extracted to ``/opt/ml/model`` (``SAGEMAKER_BASE_PATH``/model) before the container starts;
- the SageMaker PyTorch inference toolkit (https://github.com/aws/sagemaker-pytorch-inference-toolkit,
  https://sagemaker.readthedocs.io/en/stable/frameworks/pytorch/using_pytorch.html#serve-a-pytorch-model):
  the user module ``SAGEMAKER_PROGRAM`` (default ``inference.py``) from ``/opt/ml/model/code`` provides
  ``model_fn(model_dir)``, ``input_fn(body, content_type)``, ``predict_fn(data, model)`` and
  ``output_fn(prediction, accept)`` (or ``transform_fn``, never with those three), each optionally
  taking a trailing ``context``; a missing one gets the toolkit's default (TorchScript ``model.pt``
  through ``torch.jit.load``, JSON in and out). A JSON or CSV body reaches ``input_fn`` as ``str``,
  anything else as ``bytes``; a missing or ``*/*`` Accept becomes ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``
  (default ``application/json``); ``output_fn`` may return ``(body, content_type)``. A handler's
  exception answers its ``status_code`` (else 500) with TorchServe's error document
  ``{"code", "type", "message"}``, and its traceback goes to the container's log.

On AWS the Deep Learning Container image provides torch (in ``/opt/conda``). Here torch comes from the
framework bundle the workshop builds, mounted read-only at ``/opt/conda/lib/pythonX.Y/site-packages``
(``LOCALAWS_FRAMEWORK_PATH``), which this server puts on ``sys.path`` before the user module.
The model loads once, at start, in one worker (what the docs recommend for serverless endpoints).
"""

from __future__ import annotations

import http.server
import importlib
import inspect
import json
import os
import sys
import time
import traceback

BASE = os.environ.get("SAGEMAKER_BASE_PATH", "/opt/ml")
MODEL_DIR = os.path.join(BASE, "model")
CODE_DIR = os.path.join(MODEL_DIR, "code")
UTF8_TYPES = ("application/json", "text/csv")
_state = {"model": None, "handlers": None, "ready": False}


class ToolkitError(Exception):
    """An error with the HTTP status the toolkit answers (its ``BaseInferenceToolkitError``)."""

    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code = status_code


def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def _call(func, *args):
    """Call a handler with or without the trailing ``context`` argument, as the toolkit does."""
    count = len(inspect.signature(func).parameters)
    if count == len(args):
        return func(*args)
    if count == len(args) + 1:
        return func(*args, None)
    raise TypeError(f"{func.__name__} takes {count} arguments but {len(args)} were given.")


# --- the toolkit's defaults (torch imported only when one is used) ----------------------------------


def default_model_fn(model_dir):
    import torch

    path = os.path.join(model_dir, "model.pt")
    if not os.path.exists(path):
        found = [f for f in os.listdir(model_dir) if os.path.splitext(f)[1] in (".pt", ".pth")]
        if len(found) != 1:
            raise ValueError(f"Exactly one .pth or .pt file is required for PyTorch models: {found}")
        path = os.path.join(model_dir, found[0])
    try:
        return torch.jit.load(path, map_location="cpu")
    except RuntimeError as exc:
        raise ValueError(f"Failed to load {path}. Please ensure model is saved using torchscript.") from exc


def default_input_fn(input_data, content_type):
    import torch

    if content_type == "application/json":
        return torch.tensor(json.loads(input_data), dtype=torch.float32)
    raise ToolkitError(415, f"Content type {content_type} is not supported by this framework.")


def default_predict_fn(data, model):
    import torch

    with torch.no_grad():
        model.eval()
        return model(data)


def default_output_fn(prediction, accept):
    if hasattr(prediction, "detach"):
        prediction = prediction.detach().cpu().tolist()
    for content_type in (part.split(";")[0].strip() for part in accept.split(",")):
        if content_type == "application/json":
            return json.dumps(prediction)
    raise ToolkitError(415, f"Content type {accept} is not supported by this framework.")


def load_handlers() -> dict:
    """The user module's handlers, the toolkit's defaults where it has none."""
    for path in reversed([p for p in os.environ.get("LOCALAWS_FRAMEWORK_PATH", "").split(":") if p]):
        if os.path.isdir(path) and path not in sys.path:
            sys.path.insert(0, path)
    if CODE_DIR not in sys.path:
        sys.path.insert(0, CODE_DIR)
    module_name = os.environ.get("SAGEMAKER_PROGRAM", "inference.py").removesuffix(".py")
    module = None
    if os.path.exists(os.path.join(CODE_DIR, module_name + ".py")):
        module = importlib.import_module(module_name)
    found = {
        name: getattr(module, name, None)
        for name in ("model_fn", "transform_fn", "input_fn", "predict_fn", "output_fn")
    }
    if found["transform_fn"] and (found["input_fn"] or found["predict_fn"] or found["output_fn"]):
        raise ValueError(
            "Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, and/or "
            "output_fn implementation"
        )
    return {
        "model_fn": found["model_fn"] or default_model_fn,
        "transform_fn": found["transform_fn"],
        "input_fn": found["input_fn"] or default_input_fn,
        "predict_fn": found["predict_fn"] or default_predict_fn,
        "output_fn": found["output_fn"] or default_output_fn,
    }


def transform(body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    handlers, model = _state["handlers"], _state["model"]
    if not accept or accept == "*/*":
        accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/json")
    data = body.decode("utf-8") if content_type in UTF8_TYPES else body
    if handlers["transform_fn"]:
        result = _call(handlers["transform_fn"], model, data, content_type, accept)
    else:
        decoded = _call(handlers["input_fn"], data, content_type)
        prediction = _call(handlers["predict_fn"], decoded, model)
        result = _call(handlers["output_fn"], prediction, accept)
    response, response_type = (result[0], result[1]) if isinstance(result, tuple) else (result, accept)
    if isinstance(response, str):
        response = response.encode("utf-8")
    return bytes(response), response_type


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass  # one line per request is written below, with its timing

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.split("?")[0] != "/ping":
            self._send(404, b'{"message": "not found"}')
        elif _state["ready"]:
            self._send(200, b'{"status": "Healthy"}')
        else:
            self._send(503, b'{"status": "Unhealthy"}')

    def do_POST(self) -> None:  # noqa: N802
        if self.path.split("?")[0] != "/invocations":
            self._send(404, b'{"message": "not found"}')
            return
        started = time.perf_counter()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        content_type = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        try:
            response, response_type = transform(body, content_type, self.headers.get("Accept") or "")
            status = 200
        except Exception as exc:  # noqa: BLE001 - every handler error is the model's answer
            status = (
                exc.status_code if isinstance(exc, ToolkitError) else 500
            )  # as the toolkit: others are 500
            _log(f"Transform failed: {traceback.format_exc()}")
            kind = "BadRequestException" if status < 500 else "InternalServerException"
            response = json.dumps({"code": status, "type": kind, "message": str(exc)}).encode()
            response_type = "application/json"
        self._send(status, response, response_type)
        _log(f"POST /invocations {status} {len(body)} bytes in, {len(response)} out, "
             f"{(time.perf_counter() - started) * 1000:.1f} ms")  # fmt: skip


def main() -> None:
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    _log(f"model server listening on 127.0.0.1:{port}; loading the model from {MODEL_DIR}")
    started = time.perf_counter()
    try:
        _state["handlers"] = load_handlers()
        _state["model"] = _call(_state["handlers"]["model_fn"], MODEL_DIR)
    except BaseException:
        _log(f"model load failed: {traceback.format_exc()}")
        sys.exit(1)
    _state["ready"] = True
    _log(f"model loaded in {(time.perf_counter() - started) * 1000:.0f} ms")
    server.serve_forever()


if __name__ == "__main__":
    main()
