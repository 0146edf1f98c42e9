"""The inference handler, run in-process on a small model folder built by the test."""

from __future__ import annotations

import base64
import functools
import http.server
import importlib.util
import io
import json
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from matplotlib import cbook
from PIL import Image

from helpers import model

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = ROOT / "functions" / "inference"
IMAGE = cbook.get_sample_data("grace_hopper.jpg").read()


def load_handler(model_dir: Path, monkeypatch, **env):
    """A fresh import of functions/inference/app.py with MODEL_DIR (and any other variable) set."""
    monkeypatch.setenv("MODEL_DIR", str(model_dir))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(FUNCTION))
    spec = importlib.util.spec_from_file_location(f"inference_app_{time.monotonic_ns()}", FUNCTION / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    model.export(folder, try_download=False, seed=1)
    return folder


@pytest.fixture(scope="module")
def app(model_dir):
    mp = pytest.MonkeyPatch()
    module = load_handler(model_dir, mp, AWS_LAMBDA_FUNCTION_MEMORY_SIZE="2048")
    yield module
    mp.undo()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def good(app) -> None:
    """A valid request still works: bad input never breaks the environment."""
    assert len(app.handler({"image": b64(IMAGE)}, None)["predictions"]) == 5


def test_a_base64_image_gets_the_top_5_with_timing_and_weights_source(app):
    result = app.handler({"image": b64(IMAGE)}, None)
    probabilities = [p["probability"] for p in result["predictions"]]
    assert len(probabilities) == 5 and probabilities == sorted(probabilities, reverse=True)
    assert all(p["label"] in app.CLASSES for p in result["predictions"])
    assert result["model"] == {"architecture": "resnet18", "weights_source": "seeded-random:1"}
    assert set(result["timing_ms"]) == {"decode", "preprocess", "inference", "total"}
    assert result["init_type"] == "on-demand"


def test_the_prediction_equals_an_in_process_forward_pass_with_the_same_weights(app, model_dir):
    spec = importlib.util.spec_from_file_location("resnet_reference", FUNCTION / "resnet.py")
    resnet = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(resnet)
    net = resnet.ResNet18().eval()
    net.load_state_dict(torch.load(model_dir / "resnet18.pt", weights_only=True))
    with torch.no_grad():
        probabilities = torch.softmax(net(resnet.preprocess(Image.open(io.BytesIO(IMAGE))))[0], dim=0)
    values, indices = probabilities.topk(3)
    expected = [
        {"label": app.CLASSES[i], "probability": round(v, 6)}
        for v, i in zip(values.tolist(), indices.tolist(), strict=True)
    ]
    assert app.handler({"image": b64(IMAGE), "top_k": 3}, None)["predictions"] == expected


def test_threads_follow_the_memory_size(app):
    assert app._threads(1024) == 1
    assert app._threads(10240) == min(6, __import__("os").cpu_count())


@pytest.mark.parametrize(
    ("event", "status", "kind"),
    [
        ({}, 400, "InvalidRequest"),
        ({"image": "x", "url": "http://example.com/a.jpg"}, 400, "InvalidRequest"),
        ("not a dict", 400, "InvalidRequest"),
        ({"image": "%%%not-base64%%%"}, 400, "InvalidBase64"),
        ({"image": 42}, 400, "InvalidImage"),
        ({"image": b64(b"plain text, not an image")}, 400, "NotAnImage"),
        ({"image": b64(IMAGE), "top_k": 0}, 400, "InvalidTopK"),
        ({"image": b64(IMAGE), "top_k": 21}, 400, "InvalidTopK"),
        ({"image": b64(IMAGE), "top_k": "five"}, 400, "InvalidTopK"),
        ({"image": b64(IMAGE), "top_k": True}, 400, "InvalidTopK"),
        ({"url": "file:///etc/passwd"}, 400, "InvalidUrl"),
        ({"url": "ftp://example.com/a.jpg"}, 400, "InvalidUrl"),
        ({"url": 3}, 400, "InvalidUrl"),
    ],
)
def test_bad_input_gets_a_structured_error_and_the_next_request_works(app, event, status, kind):
    result = app.handler(event, None)
    assert result["statusCode"] == status and result["error"]["type"] == kind and result["error"]["message"]
    good(app)


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(app):
    buffer = io.BytesIO()
    Image.new("L", (8000, 6000)).save(buffer, "PNG")  # 48 MP, a few KB compressed
    result = app.handler({"image": b64(buffer.getvalue())}, None)
    assert result["statusCode"] == 413 and result["error"]["type"] == "ImageTooLarge"
    good(app)


class _Images(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path == "/slow.jpg":
            self.send_response(200)
            self.end_headers()
            for _ in range(20):
                self.wfile.write(IMAGE[:1024])
                self.wfile.flush()
                time.sleep(0.1)
            return
        if self.path == "/big.jpg":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(IMAGE * 4)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def image_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    (folder / "hopper.jpg").write_bytes(IMAGE)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Images, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_image_url_is_downloaded_and_classified_like_the_same_bytes(app, image_server):
    by_url = app.handler({"url": f"{image_server}/hopper.jpg"}, None)
    assert by_url["predictions"] == app.handler({"image": b64(IMAGE)}, None)["predictions"]


def test_a_url_that_fails_is_a_download_error(app, image_server):
    result = app.handler({"url": f"{image_server}/missing.jpg"}, None)
    assert result["statusCode"] == 400 and result["error"]["type"] == "DownloadFailed"
    good(app)


def test_a_too_slow_download_times_out(app, image_server, monkeypatch):
    monkeypatch.setattr(app, "DOWNLOAD_TIMEOUT_S", 0.5)
    result = app.handler({"url": f"{image_server}/slow.jpg"}, None)
    assert result["statusCode"] == 408 and result["error"]["type"] == "DownloadTimeout"
    good(app)


def test_a_too_large_download_is_cut_off(app, image_server, monkeypatch):
    monkeypatch.setattr(app, "MAX_IMAGE_BYTES", len(IMAGE) * 2)
    result = app.handler({"url": f"{image_server}/big.jpg"}, None)
    assert result["statusCode"] == 413 and result["error"]["type"] == "ImageTooLarge"
    good(app)


def http_event(body: bytes, content_type: str, query: dict | None = None) -> dict:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "headers": {"content-type": content_type},
        "queryStringParameters": query,
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def test_an_http_api_event_with_a_json_body(app):
    response = app.handler(
        http_event(json.dumps({"image": b64(IMAGE), "top_k": 2}).encode(), "application/json"), None
    )
    assert response["statusCode"] == 200 and response["headers"]["content-type"] == "application/json"
    assert len(json.loads(response["body"])["predictions"]) == 2


def test_an_http_api_event_with_the_raw_image_as_body(app):
    response = app.handler(http_event(IMAGE, "image/jpeg", {"top_k": "3"}), None)
    assert response["statusCode"] == 200 and len(json.loads(response["body"])["predictions"]) == 3


def test_an_http_api_event_with_bad_json_gets_a_400_body(app):
    response = app.handler(http_event(b"{not json", "application/json"), None)
    assert response["statusCode"] == 400 and json.loads(response["body"])["error"]["type"] == "InvalidJson"
    good(app)


def test_a_missing_model_fails_init_naming_the_notebook_to_run(tmp_path, monkeypatch):
    with pytest.raises(Exception, match=r"No model at .*resnet18.pt.*02_seed_model.ipynb") as raised:
        load_handler(tmp_path / "empty", monkeypatch)
    assert type(raised.value).__name__ == "ModelMissing"


def test_the_framework_folder_goes_first_on_the_path(model_dir, tmp_path, monkeypatch):
    framework = tmp_path / "framework"
    framework.mkdir()
    load_handler(model_dir, monkeypatch, FRAMEWORK_DIR=str(framework))
    assert sys.path[0] == str(framework)
