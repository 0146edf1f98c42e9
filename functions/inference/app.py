"""ResNet-18 image classification on AWS Lambda, with PyTorch and the weights on Amazon EFS.

Init (module scope, once per execution environment): put the framework folder from EFS first on
``sys.path``, import torch and Pillow (nothing else heavy), memory-map the weights into the torch-only
ResNet-18, and log how long that took. A model missing on EFS fails init with a message naming the
notebook that seeds it.

Requests: a direct invocation ``{"image": "<base64>"}`` or ``{"url": "https://..."}``, optional
``"top_k"`` (1-20, default 5); or an API Gateway HTTP API (payload 2.0) event whose body is that JSON
or the raw image bytes. Bad input gets a structured 4xx error; it never crashes the environment.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import math
import os
import sys
import time
import urllib.parse
import urllib.request

_INIT_STARTED = time.perf_counter()
FRAMEWORK_DIR = os.environ.get("FRAMEWORK_DIR", "/mnt/ml/framework/current")
if os.path.isdir(FRAMEWORK_DIR) and FRAMEWORK_DIR not in sys.path:
    sys.path.insert(0, FRAMEWORK_DIR)

import torch  # noqa: E402  (from EFS when the framework bundle is there)
from PIL import Image, UnidentifiedImageError  # noqa: E402
from resnet import ResNet18, preprocess  # noqa: E402

log = logging.getLogger()
log.setLevel(logging.INFO)

MODEL_DIR = os.environ.get("MODEL_DIR", "/mnt/ml/model/current")
MAX_PIXELS = 40_000_000  # decompression bombs: refuse before decoding
MAX_IMAGE_BYTES = 10 * 1024 * 1024
DOWNLOAD_TIMEOUT_S = 5.0
MAX_TOP_K = 20
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class ModelMissing(RuntimeError):
    """The model is not on EFS (init fails with this, and Lambda reports it)."""


class BadRequest(Exception):
    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def _threads(memory_mb: int) -> int:
    """Lambda gives one vCPU's worth of time per 1769 MB; more threads than that only contend."""
    return max(1, min(os.cpu_count() or 1, math.ceil(memory_mb / 1769)))


def _load(model_dir: str):
    weights = os.path.join(model_dir, "resnet18.pt")
    if not os.path.isfile(weights):
        raise ModelMissing(
            f"No model at {weights} (MODEL_DIR={model_dir}): seed EFS with 02_seed_model.ipynb, then invoke again."
        )
    model = ResNet18()
    model.load_state_dict(torch.load(weights, mmap=True, weights_only=True))
    with open(os.path.join(model_dir, "imagenet_classes.json")) as fh:
        classes = json.load(fh)
    with open(os.path.join(model_dir, "model.json")) as fh:
        card = json.load(fh)
    return model.eval(), classes, card


torch.set_num_threads(_threads(int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1769"))))
MODEL, CLASSES, CARD = _load(MODEL_DIR)
INIT_MS = (time.perf_counter() - _INIT_STARTED) * 1000
log.info(
    json.dumps(
        {
            "init_ms": round(INIT_MS, 1),
            "torch": torch.__version__,
            "torch_from": os.path.dirname(torch.__file__),
            "threads": torch.get_num_threads(),
            "weights_source": CARD.get("weights_source"),
        }
    )
)


def _image_from_url(url: str) -> bytes:
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https"):
        raise BadRequest(
            400, "InvalidUrl", f"Only http(s) URLs are fetched, not {scheme or 'no scheme'}: {url[:100]}"
        )
    deadline = time.monotonic() + DOWNLOAD_TIMEOUT_S
    chunks, size = [], 0
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            while chunk := response.read(64 * 1024):
                size += len(chunk)
                if size > MAX_IMAGE_BYTES:
                    raise BadRequest(413, "ImageTooLarge", f"The download exceeds {MAX_IMAGE_BYTES} bytes.")
                if time.monotonic() > deadline:
                    raise BadRequest(
                        408, "DownloadTimeout", f"The download took over {DOWNLOAD_TIMEOUT_S:.0f} s."
                    )
                chunks.append(chunk)
    except TimeoutError as exc:
        raise BadRequest(
            408, "DownloadTimeout", f"The download took over {DOWNLOAD_TIMEOUT_S:.0f} s."
        ) from exc
    except OSError as exc:
        raise BadRequest(400, "DownloadFailed", f"Could not download {url[:100]}: {exc}") from exc
    return b"".join(chunks)


def _image_from_base64(data) -> bytes:
    if not isinstance(data, str):
        raise BadRequest(400, "InvalidImage", '"image" must be a base64 string.')
    if len(data) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise BadRequest(413, "ImageTooLarge", f"The image exceeds {MAX_IMAGE_BYTES} bytes.")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(400, "InvalidBase64", f'"image" is not valid base64: {exc}') from exc


def _top_k(value) -> int:
    if value is None:
        return 5
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOP_K:
        raise BadRequest(
            400, "InvalidTopK", f'"top_k" must be a whole number from 1 to {MAX_TOP_K}, not {value!r}.'
        )
    return value


def _request(event) -> tuple[bytes, int]:
    """(image bytes, top_k) from a direct invocation or an HTTP API event."""
    if not isinstance(event, dict):
        raise BadRequest(
            400, "InvalidRequest", 'The event must be a JSON object such as {"image": "<base64>"}.'
        )
    query = event.get("queryStringParameters") or {}
    if "requestContext" in event:  # API Gateway HTTP API, payload 2.0
        body = event.get("body") or ""
        raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
        content_type = {k.lower(): v for k, v in (event.get("headers") or {}).items()}.get("content-type", "")
        if not content_type.startswith("application/json"):
            if not raw:
                raise BadRequest(
                    400, "InvalidRequest", "Send the image as the body, or JSON with an image or url."
                )
            return raw, _top_k(query.get("top_k"))
        try:
            event = json.loads(raw or b"{}")
        except ValueError as exc:
            raise BadRequest(400, "InvalidJson", f"The body is not valid JSON: {exc}") from exc
        if not isinstance(event, dict):
            raise BadRequest(400, "InvalidRequest", "The JSON body must be an object.")
    has_image, has_url = "image" in event, "url" in event
    if has_image == has_url:
        raise BadRequest(400, "InvalidRequest", 'Send exactly one of "image" (base64) or "url".')
    top_k = _top_k(event.get("top_k", query.get("top_k")))
    if has_image:
        return _image_from_base64(event["image"]), top_k
    if not isinstance(event["url"], str):
        raise BadRequest(400, "InvalidUrl", '"url" must be a string.')
    return _image_from_url(event["url"]), top_k


def _decode(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise BadRequest(413, "ImageTooLarge", f"{width}x{height} is over {MAX_PIXELS} pixels.")
        image.load()
    except Image.DecompressionBombError as exc:
        raise BadRequest(413, "ImageTooLarge", str(exc)) from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise BadRequest(400, "NotAnImage", f"The data is not an image Pillow can read: {exc}") from exc
    return image


def predict(data: bytes, top_k: int = 5) -> dict:
    started = time.perf_counter()
    image = _decode(data)
    decoded = time.perf_counter()
    batch = preprocess(image)
    prepared = time.perf_counter()
    with torch.inference_mode():
        probabilities = torch.softmax(MODEL(batch)[0], dim=0)
    values, indices = probabilities.topk(top_k)
    done = time.perf_counter()
    return {
        "predictions": [
            {"label": CLASSES[i], "probability": round(v, 6)}
            for v, i in zip(values.tolist(), indices.tolist(), strict=True)
        ],
        "model": {"architecture": CARD.get("architecture"), "weights_source": CARD.get("weights_source")},
        "timing_ms": {
            "decode": round((decoded - started) * 1000, 3),
            "preprocess": round((prepared - decoded) * 1000, 3),
            "inference": round((done - prepared) * 1000, 3),
            "total": round((done - started) * 1000, 3),
        },
        "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
    }


def handler(event, context):
    http = isinstance(event, dict) and "requestContext" in event
    request_id = getattr(context, "aws_request_id", None)
    try:
        result = predict(*_request(event))
    except BadRequest as exc:
        log.info(json.dumps({"request_id": request_id, "status": exc.status, "error": exc.kind}))
        error = {"error": {"type": exc.kind, "message": exc.message}}
        if http:
            return {
                "statusCode": exc.status,
                "headers": {"content-type": "application/json"},
                "body": json.dumps(error),
            }
        return {**error, "statusCode": exc.status}
    top = result["predictions"][0]
    log.info(
        json.dumps({"request_id": request_id, "status": 200, "top1": top["label"], **result["timing_ms"]})
    )
    if http:
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": json.dumps(result),
        }
    return result
