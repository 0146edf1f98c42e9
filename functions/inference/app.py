"""EfficientNet-Lite0 image classification on AWS Lambda, with PyTorch and the weights on Amazon EFS.

Init (module scope, once per execution environment): put the framework folder from EFS first on
``sys.path``, import torch and Pillow (nothing else heavy: no torchvision, numpy or requests), memory-map
the weights into the torch-only EfficientNet-Lite0, pick a thread count for the memory size, run one warm-up
forward pass (so a provisioned environment is fully warm), and log one line saying how long that took
and what was loaded. A model missing on EFS fails init with a message naming the notebook that seeds it.
Init is timed in phases (ms): ``runtime_start`` (process start to this module's first line, from
/proc), ``import_torch``, ``import_pil``, ``load_weights``, ``first_forward``. The first response of
each environment carries them as ``"init": {"phases_ms", "total_ms", "torch": {"version", "from",
"build"}}``; later responses do not.

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
import io
import json
import logging
import os
import sys
import time
import warnings

_INIT_STARTED = time.perf_counter()


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _since_process_start_ms() -> tuple[float, str | None]:
    """Milliseconds from this process's start until now, from /proc; 0.0 and why where unreadable.

    The 22nd field of /proc/self/stat is the process's start in clock ticks after boot, the first of
    /proc/uptime is now in seconds after boot (proc(5)); the resolution is one clock tick (10 ms).
    """
    try:
        with open("/proc/self/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()  # the command name may hold spaces
        with open("/proc/uptime") as fh:
            uptime_s = float(fh.read().split()[0])
        started_s = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        return round(max(0.0, uptime_s - started_s) * 1000, 1), None
    except (OSError, ValueError, IndexError) as exc:
        return 0.0, f"runtime_start is 0.0: /proc/self/stat or /proc/uptime is unreadable ({exc})"


_RUNTIME_START_MS, _RUNTIME_START_NOTE = _since_process_start_ms()
PHASES_MS = {"runtime_start": _RUNTIME_START_MS}
FRAMEWORK_DIR = os.environ.get("FRAMEWORK_DIR", "/mnt/ml/framework/current")
if os.path.isdir(FRAMEWORK_DIR) and FRAMEWORK_DIR not in sys.path:
    sys.path.insert(0, FRAMEWORK_DIR)

# The bundle leaves numpy out on purpose (the handler never converts to or from it): torch's warning
# about it at every cold start would only be noise in the function's log.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy", category=UserWarning)
# OpenMP threads that spin while they wait burn a CPU quota that Lambda sizes by memory; a function's own
# setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_phase = time.perf_counter()
import torch  # noqa: E402  (from EFS when the framework bundle is there)

PHASES_MS["import_torch"] = _ms_since(_phase)
_phase = time.perf_counter()
from PIL import Image, UnidentifiedImageError  # noqa: E402

PHASES_MS["import_pil"] = _ms_since(_phase)
from efficientnet import CROP, RESIZE, EfficientNetLite0, preprocess  # noqa: E402

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)

MODEL_DIR = os.environ.get("MODEL_DIR", "/mnt/ml/model/current")
WEIGHTS = "efficientnet_lite0.pt"
MODEL_FILES = (WEIGHTS, "imagenet_classes.json", "model.json")
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
    """One thread per vCPU the memory size gives, rounded: Lambda gives one vCPU per 1769 MB
    (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html), so 2048 MB (1.16 vCPUs) runs 1
    thread and 3008 MB (1.70) runs 2. Two threads on 1.16 vCPUs fight over the quota: measured in the local
    sandbox, one forward pass took 330 ms with 2 threads against 59 ms with 1."""
    return max(1, min(os.cpu_count() or 1, round(memory_mb / 1769)))


def _load(model_dir: str):
    missing = [name for name in MODEL_FILES if not os.path.isfile(os.path.join(model_dir, name))]
    if missing:
        raise ModelMissing(
            f"The model is missing at {model_dir} (no {', '.join(missing)}): run 02_seed_model.ipynb to seed "
            "EFS, then invoke again."
        )
    model = EfficientNetLite0()
    model.load_state_dict(torch.load(os.path.join(model_dir, WEIGHTS), mmap=True, weights_only=True))
    with open(os.path.join(model_dir, "imagenet_classes.json")) as fh:
        classes = json.load(fh)
    with open(os.path.join(model_dir, "model.json")) as fh:
        card = json.load(fh)
    return model.eval(), classes, card


def _with_init(body: dict) -> dict:
    """``body`` plus ``"init"`` for the first response of this environment, ``body`` as is afterwards."""
    global _INIT_PENDING
    if _INIT_PENDING is None:
        return body
    body, _INIT_PENDING = {**body, "init": _INIT_PENDING}, None
    return body


MEMORY_MB = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1769"))
torch.set_num_threads(_threads(MEMORY_MB))
_phase = time.perf_counter()
MODEL, CLASSES, CARD = _load(MODEL_DIR)
PHASES_MS["load_weights"] = _ms_since(_phase)
_phase = time.perf_counter()
with torch.inference_mode():  # warm-up: the first forward pass allocates and picks kernels
    MODEL(torch.zeros(1, 3, CROP, CROP))
PHASES_MS["first_forward"] = _ms_since(_phase)
TORCH = {
    "version": torch.__version__,
    "from": os.path.dirname(torch.__file__),
    "build": "cuda" if torch.version.cuda else "cpu",
}
INIT = {
    "phases_ms": PHASES_MS,
    "total_ms": round(_RUNTIME_START_MS + _ms_since(_INIT_STARTED), 1),
    "torch": TORCH,
}
if _RUNTIME_START_NOTE:
    INIT["note"] = _RUNTIME_START_NOTE
_INIT_PENDING: dict | None = INIT  # sent once, with this environment's first response
log.info(
    json.dumps(
        {
            "init_ms": _ms_since(_INIT_STARTED),
            "init": INIT,
            "model_dir": os.path.realpath(MODEL_DIR),
            "weights_source": CARD.get("weights_source"),
            "torch": torch.__version__,
            "torch_from": TORCH["from"],
            "torch_build": TORCH["build"],
            "memory_mb": MEMORY_MB,
            "threads": torch.get_num_threads(),
        }
    )
)


import download  # noqa: E402  (guarded downloads: standard library only, imported after init's timing)
from PIL import ImageOps  # noqa: E402


def _image_from_url(url: str) -> bytes:
    """The body at ``url`` through the guarded downloader (see download.py for what it refuses)."""
    try:
        return download.fetch(url, max_bytes=MAX_IMAGE_BYTES, timeout=DOWNLOAD_TIMEOUT_S)
    except download.DownloadError as exc:
        raise BadRequest(exc.status, exc.kind, exc.message) from exc


def _image_from_base64(data) -> bytes:
    if not isinstance(data, str):
        raise BadRequest(400, "InvalidImage", '"image" must be a base64 string.')
    if len(data) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise BadRequest(
            413,
            "ImageTooLarge",
            f"The image exceeds {MAX_IMAGE_BYTES} bytes: resize or recompress it (a JPEG of a few hundred KB "
            "is plenty for a 224x224 model).",
        )
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
    content_type = str({k.lower(): v for k, v in headers.items()}.get("content-type", "")).lower()
    if content_type.startswith("multipart/"):
        raise BadRequest(
            415,
            "UnsupportedMediaType",
            "Multipart form uploads (curl -F) are not read: send the image file itself as the body "
            '(curl --data-binary @photo.jpg -H \'content-type: image/jpeg\') or JSON {"image": "<base64>"}.',
        )
    if len(raw) > MAX_IMAGE_BYTES:
        raise BadRequest(
            413,
            "ImageTooLarge",
            f"The body is {len(raw)} bytes, over the {MAX_IMAGE_BYTES}-byte limit: resize or recompress the "
            "image (a JPEG of a few hundred KB is plenty for a 224x224 model).",
        )
    # curl -d sends JSON as form data, and a client may label JSON image/jpeg: a body that starts like a
    # JSON object is one whatever its content type (no image format starts with "{").
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
        except RecursionError:  # nested deeper than the parser goes: bad input too, not a crash
            raise BadRequest(
                400, "InvalidJson", "The body is not valid JSON: it is nested too deeply."
            ) from None
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


def _not_an_image(data: bytes) -> str:
    """What the bytes look like instead, and how to send an image."""
    head = data[:512].lstrip()
    if head[:1] in (b"{", b"["):
        hint = (
            "they look like JSON: send JSON with content-type application/json, as "
            '{"image": "<base64>"} or {"url": "https://..."}'
        )
    elif head[:2] == b"--" and b"content-disposition" in head.lower():
        hint = "they look like a multipart form upload: send the image file itself as the body (curl --data-binary)"
    elif head[:1] == b"<":
        hint = "they look like a web page or XML: use the URL of the image file itself"
    else:
        hint = "send the bytes of a JPEG, PNG, GIF, WebP or BMP file"
    return f"The {len(data)} bytes received are not an image Pillow can read: {hint}."


def _decode(data: bytes) -> Image.Image:
    """The decoded image, upright; its size is checked from the header first, so a bomb is never decoded."""
    if not data:
        raise BadRequest(400, "NotAnImage", "The image is empty: send the bytes of a JPEG or PNG file.")
    image = None
    try:
        with warnings.catch_warnings():  # the size checks below refuse what Pillow only warns about
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise BadRequest(
                413,
                "ImageTooLarge",
                f"{width}x{height} is over {MAX_PIXELS} pixels: resize the image (the model sees 224x224).",
            )
        short, long = sorted((width, height))
        if short < 1 or RESIZE * RESIZE * long / short > MAX_PIXELS:
            raise BadRequest(
                400,
                "UnsupportedImage",
                f"{width}x{height} is too elongated: resizing its shorter side to {RESIZE} would exceed "
                f"{MAX_PIXELS} pixels; crop it closer to a square.",
            )
        image.load()
        # A phone photo is stored sideways with an EXIF Orientation tag that viewers apply: apply it too,
        # so the model sees the picture as a person does.
        ImageOps.exif_transpose(image, in_place=True)
    except Image.DecompressionBombError as exc:
        raise BadRequest(
            413,
            "ImageTooLarge",
            f"The image is over {MAX_PIXELS} pixels: resize it (the model sees 224x224).",
        ) from exc
    except UnidentifiedImageError as exc:
        raise BadRequest(400, "NotAnImage", _not_an_image(data)) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # Pillow knew the format, then the data broke
        log.info("decode failed: %r", exc)
        raise BadRequest(
            400,
            "NotAnImage",
            f"The {len(data)} bytes received are a truncated or corrupt {getattr(image, 'format', None) or 'image'}: send the "
            "whole file (with curl, --data-binary @file, not -d, which strips line breaks).",
        ) from exc
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
        error = _with_init({"error": {"type": exc.kind, "message": exc.message}})
        return _http_response(exc.status, error) if http else {**error, "statusCode": exc.status}
    top = result["predictions"][0]
    log.info(
        json.dumps({"request_id": request_id, "status": 200, "top1": top["label"], **result["timing_ms"]})
    )
    result = _with_init(result)
    return _http_response(200, result) if http else result
