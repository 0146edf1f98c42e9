"""ResNet-18 image classification on AWS Lambda, with PyTorch and the weights on Amazon EFS.

Init (module scope, once per execution environment): put the framework folder from EFS first on
``sys.path``, import torch and Pillow (nothing else heavy: no torchvision, numpy or requests), memory-map
the weights into the torch-only ResNet-18, pick a thread count for the memory size, and log one line
saying how long that took and what was loaded. A model missing on EFS fails init with a message naming
the notebook that seeds it.

Requests: a direct invocation ``{"image": "<base64>"}`` or ``{"url": "https://..."}``, optional
``"top_k"`` (1-20, default 5); or an API Gateway HTTP API (payload 2.0) event whose body is that JSON
or the raw image bytes (``top_k`` then in the query string). The answer holds the top-k labels and
probabilities, the model's architecture and weights source, and ``timing_ms``: decode (Pillow),
preprocess, inference, and total (the whole request, reading the image included). Bad input gets a
structured 4xx error and never crashes the environment; one log line per request gives its timing.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import io
import json
import logging
import math
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings

_INIT_STARTED = time.perf_counter()
FRAMEWORK_DIR = os.environ.get("FRAMEWORK_DIR", "/mnt/ml/framework/current")
if os.path.isdir(FRAMEWORK_DIR) and FRAMEWORK_DIR not in sys.path:
    sys.path.insert(0, FRAMEWORK_DIR)

import torch  # noqa: E402  (from EFS when the framework bundle is there)
from PIL import Image, UnidentifiedImageError  # noqa: E402
from resnet import RESIZE, ResNet18, preprocess  # noqa: E402

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)

MODEL_DIR = os.environ.get("MODEL_DIR", "/mnt/ml/model/current")
MODEL_FILES = ("resnet18.pt", "imagenet_classes.json", "model.json")
MAX_PIXELS = 40_000_000  # decompression bombs: refused from the header, before decoding
MAX_IMAGE_BYTES = 10 * 1024 * 1024
DOWNLOAD_TIMEOUT_S = 5.0
DEFAULT_TOP_K = 5
MAX_TOP_K = 20
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class ModelMissing(RuntimeError):
    """The model is not on EFS (init fails with this, and Lambda reports it)."""


class BadRequest(Exception):
    """Input the handler refuses: an HTTP status, an error type and a message for the caller."""

    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def _threads(memory_mb: int) -> int:
    """Lambda gives one vCPU's worth of time per 1769 MB; more threads than that only contend."""
    return max(1, min(os.cpu_count() or 1, math.ceil(memory_mb / 1769)))


def _load(model_dir: str):
    missing = [name for name in MODEL_FILES if not os.path.isfile(os.path.join(model_dir, name))]
    if missing:
        raise ModelMissing(
            f"The model is missing at {model_dir} (no {', '.join(missing)}): run 02_seed_model.ipynb to seed "
            "EFS, then invoke again."
        )
    model = ResNet18()
    model.load_state_dict(torch.load(os.path.join(model_dir, "resnet18.pt"), mmap=True, weights_only=True))
    with open(os.path.join(model_dir, "imagenet_classes.json")) as fh:
        classes = json.load(fh)
    with open(os.path.join(model_dir, "model.json")) as fh:
        card = json.load(fh)
    return model.eval(), classes, card


MEMORY_MB = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1769"))
torch.set_num_threads(_threads(MEMORY_MB))
MODEL, CLASSES, CARD = _load(MODEL_DIR)
log.info(
    json.dumps(
        {
            "init_ms": round((time.perf_counter() - _INIT_STARTED) * 1000, 1),
            "model_dir": os.path.realpath(MODEL_DIR),
            "weights_source": CARD.get("weights_source"),
            "torch": torch.__version__,
            "torch_from": os.path.dirname(torch.__file__),
            "memory_mb": MEMORY_MB,
            "threads": torch.get_num_threads(),
        }
    )
)


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) only (urllib would also follow one to ftp://)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise BadRequest(400, "InvalidUrl", f"The URL redirects to {newurl[:100]}, which is not http(s).")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def _image_from_url(url: str) -> bytes:
    """The body at ``url``, streamed with a byte cap; the whole download is bounded by DOWNLOAD_TIMEOUT_S.

    The deadline is checked between reads, each of which may wait up to the timeout itself: a download
    that trickles is stopped after at most about twice DOWNLOAD_TIMEOUT_S.
    """
    try:
        scheme = urllib.parse.urlsplit(url).scheme
    except ValueError as exc:
        raise BadRequest(400, "InvalidUrl", f"{url[:100]!r} is not a URL: {exc}") from exc
    if scheme not in ("http", "https"):
        raise BadRequest(
            400, "InvalidUrl", f"Only http(s) URLs are fetched, not {scheme or 'no scheme'}: {url[:100]}"
        )
    too_slow = BadRequest(408, "DownloadTimeout", f"The download took over {DOWNLOAD_TIMEOUT_S:g} s.")
    too_large = BadRequest(413, "ImageTooLarge", f"The download exceeds {MAX_IMAGE_BYTES} bytes.")
    deadline = time.monotonic() + DOWNLOAD_TIMEOUT_S
    chunks, size = [], 0
    try:
        with _OPENER.open(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_IMAGE_BYTES:
                raise too_large
            while chunk := response.read1(64 * 1024):
                size += len(chunk)
                if size > MAX_IMAGE_BYTES:
                    raise too_large
                if time.monotonic() > deadline:
                    raise too_slow
                chunks.append(chunk)
    except TimeoutError as exc:
        raise too_slow from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):  # a connection that timed out
            raise too_slow from exc
        raise BadRequest(400, "DownloadFailed", f"Could not download {url[:100]}: {exc}") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise BadRequest(400, "DownloadFailed", f"Could not download {url[:100]}: {exc}") from exc
    return b"".join(chunks)


def _image_from_base64(data) -> bytes:
    if not isinstance(data, str):
        raise BadRequest(400, "InvalidImage", '"image" must be a base64 string.')
    if len(data) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise BadRequest(413, "ImageTooLarge", f"The image exceeds {MAX_IMAGE_BYTES} bytes.")
    try:
        return base64.b64decode("".join(data.split()), validate=True)  # line breaks, as `base64` wraps
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(400, "InvalidBase64", f'"image" is not valid base64: {exc}') from exc


def _top_k(value) -> int:
    if value is None:
        return DEFAULT_TOP_K
    if isinstance(value, str) and value.isascii() and value.isdigit():  # from a query string
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOP_K:
        raise BadRequest(
            400, "InvalidTopK", f'"top_k" must be a whole number from 1 to {MAX_TOP_K}, not {value!r}.'
        )
    return value


def _http_body(event: dict) -> tuple[bytes, bool, dict]:
    """(body bytes, whether it is JSON, query parameters) of an HTTP API event."""
    body, headers, query = (
        event.get("body") or "",
        event.get("headers") or {},
        event.get("queryStringParameters") or {},
    )
    if not isinstance(body, str) or not isinstance(headers, dict) or not isinstance(query, dict):
        raise BadRequest(
            400, "InvalidRequest", "Malformed HTTP API event: body, headers or query of the wrong type."
        )
    try:
        raw = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else body.encode()
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(400, "InvalidBase64", f"The body is marked base64 but is not: {exc}") from exc
    content_type = str({k.lower(): v for k, v in headers.items()}.get("content-type", ""))
    # curl -d sends JSON as form data: a body that starts like a JSON object is one (no image does).
    is_json = content_type.startswith("application/json") or raw.lstrip()[:1] == b"{"
    return raw, is_json, query


def _request(event) -> tuple[bytes, int]:
    """(image bytes, top_k) from a direct invocation or an HTTP API event."""
    if not isinstance(event, dict):
        raise BadRequest(
            400, "InvalidRequest", 'The event must be a JSON object such as {"image": "<base64>"}.'
        )
    query = {}
    if "requestContext" in event:  # API Gateway HTTP API, payload 2.0
        raw, is_json, query = _http_body(event)
        if not is_json:
            if not raw:
                raise BadRequest(
                    400, "InvalidRequest", "Send the image as the body, or JSON with an image or url."
                )
            return raw, _top_k(query.get("top_k"))
        try:
            event = json.loads(raw)
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
    """The decoded image; its size is checked from the header first, so a bomb is never decoded."""
    try:
        with warnings.catch_warnings():  # the size checks below refuse what Pillow only warns about
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise BadRequest(413, "ImageTooLarge", f"{width}x{height} is over {MAX_PIXELS} pixels.")
        short, long = sorted((width, height))
        if short < 1 or RESIZE * RESIZE * long / short > MAX_PIXELS:
            raise BadRequest(
                400,
                "UnsupportedImage",
                f"{width}x{height} is too elongated: resizing its shorter side to {RESIZE} would exceed "
                f"{MAX_PIXELS} pixels.",
            )
        image.load()
    except Image.DecompressionBombError as exc:
        raise BadRequest(413, "ImageTooLarge", str(exc)) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise BadRequest(400, "NotAnImage", f"The data is not an image Pillow can read: {exc}") from exc
    return image


def predict(data: bytes, top_k: int = DEFAULT_TOP_K, started: float | None = None) -> dict:
    """The top-k classes of an encoded image; ``started`` (perf_counter) is when the request began."""
    started = time.perf_counter() if started is None else started
    decoding = time.perf_counter()
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
            "decode": round((decoded - decoding) * 1000, 3),
            "preprocess": round((prepared - decoded) * 1000, 3),
            "inference": round((done - prepared) * 1000, 3),
            "total": round((done - started) * 1000, 3),
        },
        "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
    }


def _http_response(status: int, body: dict) -> dict:
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def handler(event, context):
    started = time.perf_counter()
    http = isinstance(event, dict) and "requestContext" in event
    request_id = getattr(context, "aws_request_id", None)
    try:
        result = predict(*_request(event), started=started)
    except BadRequest as exc:
        ms = round((time.perf_counter() - started) * 1000, 3)
        log.info(
            json.dumps({"request_id": request_id, "status": exc.status, "error": exc.kind, "total_ms": ms})
        )
        error = {"error": {"type": exc.kind, "message": exc.message}}
        return _http_response(exc.status, error) if http else {**error, "statusCode": exc.status}
    top = result["predictions"][0]
    log.info(
        json.dumps({"request_id": request_id, "status": 200, "top1": top["label"], **result["timing_ms"]})
    )
    return _http_response(200, result) if http else result
