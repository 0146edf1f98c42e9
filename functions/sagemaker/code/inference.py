"""EfficientNet-Lite0 on SageMaker Serverless Inference: the PyTorch inference toolkit's four handlers.

The model archive (``model.tar.gz``, built by ``helpers/sagemaker_model.py``) holds ``efficientnet_lite0.pt`` (a
state_dict), ``imagenet_classes.json`` and ``model.json`` at its top, and this file with ``efficientnet.py``
(the torch-only EfficientNet-Lite0, copied from ``functions/inference/``) in ``code/``. SageMaker extracts it to
``/opt/ml/model`` and the PyTorch inference container calls, as its toolkit documents
(https://sagemaker.readthedocs.io/en/stable/frameworks/pytorch/using_pytorch.html#serve-a-pytorch-model):

- ``model_fn(model_dir)`` once per container: the weights memory-mapped into the torch-only model, the
  class names, one warm-up forward pass, one log line with the load time;
- ``input_fn(body, content_type)``: ``image/jpeg``, ``image/png`` or ``application/x-image`` bytes, or
  ``application/json`` ``{"image": "<base64>", "top_k": 5}``; anything else raises ``ValueError``, which
  the toolkit answers with a 500 (a ``ModelError`` for the caller) carrying the message;
- ``predict_fn(data, model)``: softmax over the logits, the top-k classes;
- ``output_fn(prediction, accept)``: JSON (``application/json``, the default ``Accept``).

Every answer has a ``container`` block: the container's ``id``, the ``request`` number it serves, and, in
its first answer only, ``init`` (``phases_ms``: ``import_torch``, ``import_pil``, ``load_weights``,
``first_forward``, and their ``total_ms``, the same phases as the Lambda function reports); and in every
answer ``ready_ms_before_first_request``: how long the model had been loaded when the container's first
request reached it (about 0 for a container started by its request, a cold start; long for a
provisioned one), so any answer tells which kind of container served it.

Torch comes from the container image (the PyTorch DLC on AWS; the framework bundle locally); this code
imports only torch, Pillow and the standard library.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import os
import threading
import time
import uuid
import warnings

_phase = time.perf_counter()
warnings.filterwarnings("ignore", message="Failed to initialize NumPy", category=UserWarning)
import torch  # noqa: E402  (from the container image)

PHASES_MS = {"import_torch": round((time.perf_counter() - _phase) * 1000, 1)}
_phase = time.perf_counter()
from PIL import Image, UnidentifiedImageError  # noqa: E402

PHASES_MS["import_pil"] = round((time.perf_counter() - _phase) * 1000, 1)
from efficientnet import CROP, EfficientNetLite0, preprocess  # noqa: E402  (code/efficientnet.py, beside this file)

log = logging.getLogger(__name__)
logging.basicConfig(level=logging.INFO, format="%(message)s")

IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image")
DEFAULT_TOP_K = 5
MAX_TOP_K = 20
Image.MAX_IMAGE_PIXELS = 40_000_000  # decompression bombs: refused from the header
CONTAINER_ID = uuid.uuid4().hex[:12]
_served = {"requests": 0, "loaded_at": None}
_served_lock = threading.Lock()


def model_fn(model_dir: str) -> dict:
    started = time.perf_counter()
    net = EfficientNetLite0()
    weights = os.path.join(model_dir, "efficientnet_lite0.pt")
    net.load_state_dict(torch.load(weights, mmap=True, weights_only=True))
    net.eval()
    with open(os.path.join(model_dir, "imagenet_classes.json")) as fh:
        classes = json.load(fh)
    with open(os.path.join(model_dir, "model.json")) as fh:
        card = json.load(fh)
    loaded = time.perf_counter()
    with torch.inference_mode():  # warm-up: the first forward pass allocates and picks kernels
        net(torch.zeros(1, 3, CROP, CROP))
    PHASES_MS["load_weights"] = round((loaded - started) * 1000, 1)
    PHASES_MS["first_forward"] = round((time.perf_counter() - loaded) * 1000, 1)
    _served["loaded_at"] = time.perf_counter()
    load_ms = round((time.perf_counter() - started) * 1000, 1)
    log.info(json.dumps({"model_fn_ms": load_ms, "weights_source": card.get("weights_source"),
                         "torch": torch.__version__, "threads": torch.get_num_threads()}))  # fmt: skip
    return {"net": net, "classes": classes, "card": card}


def _top_k(value) -> int:
    if value is None:
        return DEFAULT_TOP_K
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOP_K:
        raise ValueError(f'"top_k" must be an integer from 1 to {MAX_TOP_K}, got {value!r}.')
    return value


def _container(arrived: float) -> dict:
    """This container's block of an answer; the first answer also says how its init went."""
    with _served_lock:
        _served["requests"] += 1
        block = {"id": CONTAINER_ID, "request": _served["requests"]}
        if block["request"] == 1 and _served["loaded_at"] is not None:
            _served["first_ready_ms"] = round(max(arrived - _served["loaded_at"], 0.0) * 1000, 1)
    if block["request"] == 1:
        block["init"] = {"phases_ms": dict(PHASES_MS), "total_ms": round(sum(PHASES_MS.values()), 1)}
    if _served.get("first_ready_ms") is not None:
        block["ready_ms_before_first_request"] = _served["first_ready_ms"]
    return block


def input_fn(request_body, content_type: str) -> dict:
    started = time.perf_counter()
    top_k = DEFAULT_TOP_K
    if content_type in IMAGE_TYPES:
        data = request_body
    elif content_type == "application/json":
        try:
            request = json.loads(request_body)
            data = base64.b64decode("".join(request["image"].split()), validate=True)
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise ValueError(f'A JSON body must be {{"image": "<base64 JPEG or PNG>"}} ({exc}).') from None
        top_k = _top_k(request.get("top_k"))
    else:
        raise ValueError(
            f"Content type {content_type} is not supported: send the image as image/jpeg, image/png or "
            'application/x-image, or as application/json {"image": "<base64>"}.'
        )
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"The body is not a readable JPEG or PNG image ({exc}).") from None
    decoded = time.perf_counter()
    tensor = preprocess(image)
    return {
        "tensor": tensor,
        "top_k": top_k,
        "arrived": started,
        "timing_ms": {"decode": round((decoded - started) * 1000, 2),
                      "preprocess": round((time.perf_counter() - decoded) * 1000, 2)},
    }  # fmt: skip


def predict_fn(data: dict, model: dict) -> dict:
    started = time.perf_counter()
    with torch.inference_mode():
        probabilities = torch.softmax(model["net"](data["tensor"]), dim=1)[0]
    values, indices = probabilities.topk(data["top_k"])
    timing = {**data["timing_ms"], "inference": round((time.perf_counter() - started) * 1000, 2)}
    return {
        "predictions": [
            {"label": model["classes"][i], "class_id": int(i), "probability": round(float(p), 6)}
            for p, i in zip(values.tolist(), indices.tolist(), strict=True)
        ],
        "model": {
            "architecture": model["card"].get("architecture", "efficientnet-lite0"),
            "weights_source": model["card"].get("weights_source"),
        },
        "timing_ms": timing,
        "container": _container(data["arrived"]),
    }


def output_fn(prediction: dict, accept: str):
    if accept not in ("application/json", "*/*") and "application/json" not in accept:
        raise ValueError(f"Accept {accept} is not supported: ask for application/json.")
    log.info(
        json.dumps({"top1": prediction["predictions"][0]["label"], "timing_ms": prediction["timing_ms"]})
    )
    return json.dumps(prediction), "application/json"
