"""The inference handler, run in-process on a small model folder built by the test."""

from __future__ import annotations

import base64
import functools
import http.server
import importlib.util
import io
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from helpers import model, samples

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = ROOT / "functions" / "inference"
IMAGE = samples.read()


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
    model.export(folder)
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
    assert result["model"] == {"architecture": "efficientnet-lite0", "weights_source": model.PACKAGE_SOURCE}
    assert set(result["timing_ms"]) == {"decode", "preprocess", "inference", "total"}
    assert result["init_type"] == "on-demand"


def test_the_prediction_equals_an_in_process_forward_pass_with_the_same_weights(app, model_dir):
    network = model.network()
    net = network.EfficientNetLite0().eval()
    net.load_state_dict(torch.load(model_dir / model.WEIGHTS_FILE, weights_only=True))
    with torch.no_grad():
        probabilities = torch.softmax(net(network.preprocess(Image.open(io.BytesIO(IMAGE))))[0], dim=0)
    values, indices = probabilities.topk(3)
    expected = [
        {"label": app.CLASSES[i], "probability": round(v, 6)}
        for v, i in zip(values.tolist(), indices.tolist(), strict=True)
    ]
    assert app.handler({"image": b64(IMAGE), "top_k": 3}, None)["predictions"] == expected


def test_threads_follow_the_memory_size_and_never_exceed_the_cpus(app):
    assert app._threads(128) == app._threads(1769) == app._threads(2048) == 1  # 1.16 vCPU: one thread
    assert app._threads(3008) == app._threads(3538) == min(2, os.cpu_count())  # 1.70 and 2.00 vCPUs
    assert app._threads(10240) == min(6, os.cpu_count())  # 5.79 vCPUs
    assert app.torch.get_num_threads() == 1  # the fixture's 2048 MB: 1.16 vCPU


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
        ({"image": b64(IMAGE), "top_k": 2.5}, 400, "InvalidTopK"),
        (
            {"image": b64(IMAGE), "top_k": "\u00b2"},
            400,
            "InvalidTopK",
        ),  # str.isdigit() says yes, int() says no
        ({"image": None}, 400, "InvalidImage"),
        ({"url": "file:///etc/passwd"}, 400, "InvalidUrl"),
        ({"url": "ftp://example.com/a.jpg"}, 400, "InvalidUrl"),
        ({"url": 3}, 400, "InvalidUrl"),
        ({"url": "http://[::1/a.jpg"}, 400, "InvalidUrl"),
        ({"url": "http://127.0.0.1:1/a.jpg"}, 403, "UrlNotAllowed"),  # loopback: see test_url_safety.py
        ({"url": "http://169.254.169.254/latest/meta-data/"}, 403, "UrlNotAllowed"),
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


def test_an_image_too_elongated_to_resize_is_refused_before_decoding(app):
    buffer = io.BytesIO()
    Image.new("L", (1, 2000)).save(buffer, "PNG")  # 2000 pixels that would resize to 256x512000
    result = app.handler({"image": b64(buffer.getvalue())}, None)
    assert result["statusCode"] == 400 and result["error"]["type"] == "UnsupportedImage"
    good(app)


def test_a_truncated_image_is_not_an_image(app):
    result = app.handler({"image": b64(IMAGE[: len(IMAGE) // 2])}, None)
    assert result["statusCode"] == 400 and result["error"]["type"] == "NotAnImage"
    good(app)


def test_base64_wrapped_over_several_lines_is_accepted(app):
    wrapped = base64.encodebytes(IMAGE).decode()  # 76 characters a line, as the base64 tool writes it
    assert (
        app.handler({"image": wrapped}, None)["predictions"]
        == app.handler({"image": b64(IMAGE)}, None)["predictions"]
    )


class _Images(http.server.SimpleHTTPRequestHandler):
    """Serves hopper.jpg from its folder, and endpoints that misbehave as real servers do."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        endpoint = {
            "/slow.jpg": self._slow,
            "/big.jpg": self._big,
            "/declared-huge.jpg": self._declared_huge,
            "/to-ftp.jpg": functools.partial(self._redirect, "ftp://127.0.0.1/hopper.jpg"),
            "/to-hopper.jpg": functools.partial(self._redirect, "/hopper.jpg"),
        }.get(self.path)
        if endpoint is None:
            super().do_GET()
            return
        try:
            endpoint()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the handler under test hung up, as it should

    def _slow(self):  # 40 KB over 4 s
        self.send_response(200)
        self.end_headers()
        for _ in range(40):
            self.wfile.write(IMAGE[:1024])
            self.wfile.flush()
            time.sleep(0.1)

    def _big(self):  # no Content-Length: only counting the bytes finds out
        self.send_response(200)
        self.end_headers()
        self.wfile.write(IMAGE * 4)

    def _declared_huge(self):  # says it is huge, then never sends it
        self.send_response(200)
        self.send_header("Content-Length", str(10**12))
        self.end_headers()
        self.wfile.write(IMAGE[:1024])
        self.wfile.flush()
        time.sleep(4)

    def _redirect(self, location: str):
        self.send_response(302)
        self.send_header("Location", location)
        self.end_headers()

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
    # The handler refuses loopback; a test reaches its own server through this test-only allowance.
    mp = pytest.MonkeyPatch()
    mp.setenv("ALLOWED_URL_HOSTS", f"127.0.0.1:{server.server_address[1]}")
    yield f"http://127.0.0.1:{server.server_address[1]}"
    mp.undo()
    server.shutdown()


def test_an_image_url_is_downloaded_and_classified_like_the_same_bytes(app, image_server):
    by_url = app.handler({"url": f"{image_server}/hopper.jpg"}, None)
    assert by_url["predictions"] == app.handler({"image": b64(IMAGE)}, None)["predictions"]


def test_a_url_that_fails_is_a_download_error(app, image_server):
    result = app.handler({"url": f"{image_server}/missing.jpg"}, None)
    assert result["statusCode"] == 400 and result["error"]["type"] == "DownloadFailed"
    good(app)


def test_a_too_slow_download_times_out_at_the_deadline(app, image_server, monkeypatch):
    monkeypatch.setattr(app, "DOWNLOAD_TIMEOUT_S", 0.5)
    started = time.monotonic()
    result = app.handler({"url": f"{image_server}/slow.jpg"}, None)  # trickles for 4 s
    assert result["statusCode"] == 408 and result["error"]["type"] == "DownloadTimeout"
    assert time.monotonic() - started < 3  # the 0.5 s deadline, with room for a loaded machine
    good(app)


def test_a_download_declared_too_large_is_refused_before_reading_it(app, image_server):
    started = time.monotonic()
    result = app.handler({"url": f"{image_server}/declared-huge.jpg"}, None)
    assert result["statusCode"] == 413 and result["error"]["type"] == "ImageTooLarge"
    assert time.monotonic() - started < 3  # before the server's 4 s pause: it did not wait for the body
    good(app)


def test_a_redirect_to_http_is_followed_and_one_to_ftp_is_refused(app, image_server):
    assert len(app.handler({"url": f"{image_server}/to-hopper.jpg"}, None)["predictions"]) == 5
    result = app.handler({"url": f"{image_server}/to-ftp.jpg"}, None)
    assert result["statusCode"] == 400 and result["error"]["type"] == "InvalidUrl"
    good(app)


def test_a_too_large_download_is_cut_off(app, image_server, monkeypatch):
    monkeypatch.setattr(app, "MAX_IMAGE_BYTES", len(IMAGE) * 2)
    result = app.handler({"url": f"{image_server}/big.jpg"}, None)
    assert result["statusCode"] == 413 and result["error"]["type"] == "ImageTooLarge"
    good(app)


def http_event(payload: bytes, content_type: str, query: dict | None = None, **fields) -> dict:
    """An API Gateway HTTP API (payload 2.0) event, its body base64-encoded as API Gateway sends binary."""
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "headers": {"content-type": content_type},
        "queryStringParameters": query,
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "body": base64.b64encode(payload).decode(),
        "isBase64Encoded": True,
    }
    return {**event, **fields}


def test_an_http_api_event_with_a_json_body(app):
    response = app.handler(
        http_event(json.dumps({"image": b64(IMAGE), "top_k": 2}).encode(), "application/json"), None
    )
    assert response["statusCode"] == 200 and response["headers"]["content-type"] == "application/json"
    assert len(json.loads(response["body"])["predictions"]) == 2


def test_an_http_api_event_with_the_raw_image_as_body(app):
    response = app.handler(http_event(IMAGE, "image/jpeg", {"top_k": "3"}), None)
    assert response["statusCode"] == 200 and len(json.loads(response["body"])["predictions"]) == 3


def test_an_http_api_event_with_json_sent_as_form_data_is_read_as_json(app):
    body = json.dumps({"image": b64(IMAGE), "top_k": 1}).encode()  # what curl -d sends, content type aside
    response = app.handler(http_event(body, "application/x-www-form-urlencoded"), None)
    assert response["statusCode"] == 200 and len(json.loads(response["body"])["predictions"]) == 1


def test_an_http_api_event_with_a_plain_text_json_body(app):
    event = http_event(b"", "application/json", body=json.dumps({"image": b64(IMAGE)}), isBase64Encoded=False)
    assert app.handler(event, None)["statusCode"] == 200


@pytest.mark.parametrize(
    ("event", "status", "kind"),
    [
        (http_event(b"{not json", "application/json"), 400, "InvalidJson"),
        (http_event(b"[" * 3000 + b"]" * 3000, "application/json"), 400, "InvalidJson"),  # RecursionError
        (http_event(b"[1, 2]", "application/json"), 400, "InvalidRequest"),
        (http_event(b"{}", "application/json"), 400, "InvalidRequest"),
        (
            http_event(json.dumps({"image": "x", "url": "http://a/b.jpg"}).encode(), "application/json"),
            400,
            "InvalidRequest",
        ),
        (
            http_event(json.dumps({"image": b64(IMAGE), "top_k": 50}).encode(), "application/json"),
            400,
            "InvalidTopK",
        ),
        (http_event(IMAGE, "image/jpeg", {"top_k": "0"}), 400, "InvalidTopK"),
        (http_event(b"", "image/jpeg"), 400, "InvalidRequest"),
        (http_event(b"GIF89a but not really", "image/gif"), 400, "NotAnImage"),
        (http_event(b"", "image/jpeg", body="%%% not base64 %%%"), 400, "InvalidBase64"),
        (http_event(b"", "image/jpeg", body={"a": 1}), 400, "InvalidRequest"),
        (http_event(IMAGE, "image/jpeg", headers=["content-type"]), 400, "InvalidRequest"),
        (http_event(IMAGE, "image/jpeg", queryStringParameters="top_k=3"), 400, "InvalidRequest"),
    ],
)
def test_a_bad_http_api_event_gets_a_json_4xx_response(app, event, status, kind):
    response = app.handler(event, None)
    assert response["statusCode"] == status and response["headers"]["content-type"] == "application/json"
    assert json.loads(response["body"])["error"]["type"] == kind
    good(app)


def test_a_missing_model_fails_init_naming_the_path_and_the_notebook_to_run(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    with pytest.raises(
        Exception, match=rf"model is missing at {empty} .*efficientnet_lite0.pt.*02_seed_model.ipynb"
    ) as raised:
        load_handler(empty, monkeypatch)
    assert type(raised.value).__name__ == "ModelMissing"


def test_a_model_folder_without_its_class_names_fails_init_the_same_way(model_dir, tmp_path, monkeypatch):
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in (model.WEIGHTS_FILE, "model.json"):
        (partial / name).symlink_to(model_dir / name)
    with pytest.raises(Exception, match=r"no imagenet_classes.json\): run 02_seed_model.ipynb"):
        load_handler(partial, monkeypatch)


def test_init_logs_one_line_with_its_duration_and_what_it_loaded(model_dir, monkeypatch, caplog):
    with caplog.at_level(logging.INFO):
        module = load_handler(model_dir, monkeypatch, AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == module.__name__]
    assert len(lines) == 1 and lines[0]["init_ms"] > 0
    assert lines[0]["weights_source"] == model.PACKAGE_SOURCE and lines[0]["threads"] == 1
    assert lines[0]["model_dir"] == str(model_dir.resolve())


def test_each_request_logs_one_line_with_its_timing(app, caplog):
    with caplog.at_level(logging.INFO, logger=app.__name__):
        app.handler({"image": b64(IMAGE)}, None)
        app.handler({}, None)
    ok, bad = (json.loads(r.getMessage()) for r in caplog.records)
    assert ok["status"] == 200 and ok["total"] >= ok["decode"] + ok["preprocess"] + ok["inference"]
    assert bad["status"] == 400 and bad["error"] == "InvalidRequest" and bad["total_ms"] >= 0


def test_the_initialisation_type_comes_from_lambdas_environment(app, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "provisioned-concurrency")
    assert app.handler({"image": b64(IMAGE)}, None)["init_type"] == "provisioned-concurrency"


def test_the_framework_folder_goes_first_on_the_path(model_dir, tmp_path, monkeypatch):
    framework = tmp_path / "framework"
    framework.mkdir()
    load_handler(model_dir, monkeypatch, FRAMEWORK_DIR=str(framework))
    assert sys.path[0] == str(framework)


def _captured_preprocess_input(app, monkeypatch, data: bytes) -> Image.Image:
    seen = []

    def spy(image):
        seen.append(image.copy())
        return app.preprocess.__wrapped__(image)

    spy.__wrapped__ = app.preprocess
    monkeypatch.setattr(app, "preprocess", spy)
    assert app.handler({"image": b64(data)}, None)["predictions"]
    return seen[0]


def test_an_exif_rotated_photo_is_classified_upright(app, monkeypatch):
    """A phone stores the photo sideways with EXIF Orientation 6 (rotate 90 degrees clockwise to view)."""
    upright = Image.open(io.BytesIO(IMAGE)).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(buffer, "JPEG", quality=95, exif=exif)
    sideways = buffer.getvalue()
    expected = Image.open(io.BytesIO(sideways)).transpose(Image.Transpose.ROTATE_270)  # what a viewer shows
    seen = _captured_preprocess_input(app, monkeypatch, sideways)
    assert seen.size == upright.size == expected.size
    assert seen.tobytes() == expected.convert(seen.mode).tobytes()


def test_an_image_without_exif_reaches_the_model_unchanged(app, monkeypatch):
    seen = _captured_preprocess_input(app, monkeypatch, IMAGE)
    assert seen.tobytes() == Image.open(io.BytesIO(IMAGE)).tobytes()


@pytest.mark.parametrize(
    ("payload", "content_type", "status", "kind", "fix"),
    [
        (
            b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
            + IMAGE
            + b"\r\n--xyz--",
            "multipart/form-data; boundary=xyz",
            415,
            "UnsupportedMediaType",
            "--data-binary",
        ),
        (b"x" * (10 * 1024 * 1024 + 1), "image/jpeg", 413, "ImageTooLarge", "resize or recompress"),
        (b"<html><body>Not found</body></html>", "image/jpeg", 400, "NotAnImage", "URL of the image file"),
        (b"just some text", "image/png", 400, "NotAnImage", "JPEG, PNG"),
        (b"[1, 2, 3]", "image/jpeg", 400, "NotAnImage", "application/json"),
        (IMAGE[:5000], "image/jpeg", 400, "NotAnImage", "send the whole file"),
    ],
)
def test_bad_bodies_get_a_4xx_that_names_the_fix_and_never_a_python_repr(
    app, payload, content_type, status, kind, fix
):
    response = app.handler(http_event(payload, content_type), None)
    error = json.loads(response["body"])["error"]
    assert response["statusCode"] == status and error["type"] == kind
    assert (
        fix in error["message"] and " object at 0x" not in error["message"] and "<_io" not in error["message"]
    )
    good(app)


def test_json_sent_with_an_image_content_type_is_read_as_json(app):
    response = app.handler(
        http_event(json.dumps({"image": b64(IMAGE), "top_k": 2}).encode(), "image/jpeg"), None
    )
    assert response["statusCode"] == 200 and len(json.loads(response["body"])["predictions"]) == 2
