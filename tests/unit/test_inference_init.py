"""The inference function's init contract: phases timed at module scope, reported once per environment
(first response and init log line), and torch imported from the framework bundle alone."""

from __future__ import annotations

import base64
import builtins
import importlib.util
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import bundle, model, samples

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = ROOT / "functions" / "inference"
IMAGE = base64.b64encode(samples.read()).decode()
PHASES = ["runtime_start", "import_torch", "import_pil", "load_weights", "first_forward"]
HTTP = {"requestContext": {"http": {"method": "POST"}}, "body": json.dumps({"image": IMAGE}), "headers": {}}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    model.export(folder)
    return folder


def load(model_dir: Path, monkeypatch):
    """A fresh environment: functions/inference/app.py imported anew."""
    monkeypatch.setenv("MODEL_DIR", str(model_dir))
    monkeypatch.syspath_prepend(str(FUNCTION))
    spec = importlib.util.spec_from_file_location(
        f"inference_init_{time.monotonic_ns()}", FUNCTION / "app.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_init(init: dict) -> None:
    phases = init["phases_ms"]
    assert list(phases) == PHASES and all(isinstance(v, float) and v >= 0 for v in phases.values())
    assert phases["first_forward"] > 0 and phases["load_weights"] > 0
    assert init["total_ms"] >= sum(phases.values()) - 1  # the phases plus the bits between them
    assert set(init["torch"]) == {"version", "from", "build"}


def test_the_first_response_carries_init_and_later_ones_do_not(model_dir, monkeypatch):
    app = load(model_dir, monkeypatch)
    first, second = app.handler({"image": IMAGE}, None), app.handler({"image": IMAGE}, None)
    assert_init(first["init"])
    assert first["init"]["torch"] == {
        "version": torch.__version__,
        "from": os.path.dirname(torch.__file__),
        "build": "cuda" if torch.version.cuda else "cpu",
    }
    assert "init" not in second and first["predictions"] == second["predictions"]


def test_an_http_environment_reports_init_in_its_first_body_even_for_a_bad_request(model_dir, monkeypatch):
    app = load(model_dir, monkeypatch)
    bad = json.loads(app.handler({**HTTP, "body": "{}"}, None)["body"])
    good = json.loads(app.handler(HTTP, None)["body"])
    assert bad["error"]["type"] == "InvalidRequest" and "init" not in good
    assert_init(bad["init"])


def test_runtime_start_is_the_time_since_the_process_started(model_dir, monkeypatch):
    app = load(model_dir, monkeypatch)
    with open("/proc/self/stat") as fh:
        ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as fh:
        expected_ms = (float(fh.read().split()[0]) - ticks / os.sysconf("SC_CLK_TCK")) * 1000
    assert 0 < app.INIT["phases_ms"]["runtime_start"] <= expected_ms + 20  # 10 ms ticks, either side


def test_without_proc_runtime_start_is_zero_and_says_why(model_dir, monkeypatch):
    real_open = builtins.open

    def no_proc(path, *args, **kwargs):
        if str(path).startswith("/proc/"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_proc)
    app = load(model_dir, monkeypatch)
    monkeypatch.setattr(builtins, "open", real_open)
    assert app.INIT["phases_ms"]["runtime_start"] == 0.0 and "unreadable" in app.INIT["note"]


def test_the_init_log_line_carries_the_phases_and_the_torch_fields(model_dir, monkeypatch, caplog):
    with caplog.at_level(logging.INFO):
        app = load(model_dir, monkeypatch)
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == app.__name__]
    assert_init(line["init"])
    assert line["torch"] == torch.__version__ and line["torch_from"] == line["init"]["torch"]["from"]
    assert line["torch_build"] == line["init"]["torch"]["build"]


SERVE_TWICE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import app
event = {"image": open(sys.argv[2]).read()}
print(json.dumps([app.handler(event, None), app.handler(event, None), sorted(sys.modules)]))
"""


@pytest.mark.slow
def test_from_the_real_bundle_alone_the_handler_imports_torch_cpu_from_it_and_reports_init(
    model_dir, tmp_path
):
    image = tmp_path / "image.b64"  # a file: the photo's base64 is longer than one argument may be
    image.write_text(IMAGE)
    real = bundle.build_framework_bundle(bundle.local_target())  # cached under build/bundles/
    python = f"{sys.base_prefix}/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    env = {"PATH": os.defpath, "FRAMEWORK_DIR": str(real.directory), "MODEL_DIR": str(model_dir)}
    done = subprocess.run(
        [python, "-I", "-S", "-B", "-c", SERVE_TWICE, str(FUNCTION), str(image)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    first, second, modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert_init(first["init"])
    assert first["init"]["torch"] == {
        "version": real.torch_version,
        "from": str(real.directory / "torch"),
        "build": "cpu",
    }
    assert first["init"]["phases_ms"]["import_torch"] > 100  # a real import this time, not a cached module
    assert "init" not in second and len(second["predictions"]) == 5
    assert "numpy" not in modules and "torchvision" not in modules
    assert "Failed to initialize NumPy" not in done.stderr  # numpy is left out on purpose: no noise
