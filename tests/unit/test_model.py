"""Model export: weight sources in order, deterministic offline export, and a torch-only ResNet-18
that computes exactly what torchvision's does."""

from __future__ import annotations

import functools
import hashlib
import http.server
import importlib.util
import io
import json
import logging
import socket
import threading
import time
from pathlib import Path

import pytest
import torch
import torchvision
from matplotlib import cbook
from PIL import Image
from torchvision.models import ResNet18_Weights

from helpers import model

ROOT = Path(__file__).resolve().parents[2]


def load_resnet_module():
    spec = importlib.util.spec_from_file_location("resnet_under_test", ROOT / "functions/inference/resnet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def resnet():
    return load_resnet_module()


def test_torch_only_resnet18_gives_exactly_torchvisions_outputs(resnet):
    torch.manual_seed(7)
    reference = torchvision.models.resnet18().eval()
    with torch.no_grad():  # batch-norm statistics away from their 0/1 defaults, so that path is exercised too
        for name, buffer in reference.named_buffers():
            if name.endswith(("running_mean", "running_var")):
                buffer.copy_(torch.rand_like(buffer) + 0.5)
    ours = resnet.ResNet18().eval()
    ours.load_state_dict(reference.state_dict())  # strict: every key and shape matches
    batch = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(ours(batch), reference(batch))


@pytest.mark.parametrize("size", [(512, 600), (640, 427), (300, 200), (224, 224), (1001, 999)])
def test_preprocessing_equals_torchvisions_transforms(resnet, size):
    image = Image.open(cbook.get_sample_data("grace_hopper.jpg")).resize(size)
    expected = ResNet18_Weights.IMAGENET1K_V1.transforms()(image).unsqueeze(0)
    assert torch.equal(resnet.preprocess(image), expected)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_preprocessing_converts_any_image_mode_to_rgb_first(resnet, mode):
    image = Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert(mode)
    expected = ResNet18_Weights.IMAGENET1K_V1.transforms()(image.convert("RGB")).unsqueeze(0)
    assert torch.equal(resnet.preprocess(image), expected)


def test_offline_export_is_byte_deterministic_and_says_predictions_are_not_meaningful(tmp_path):
    first = model.export(tmp_path / "a", try_download=False, seed=3)
    second = model.export(tmp_path / "b", try_download=False, seed=3)
    assert first.files == second.files
    assert first.weights_source == "seeded-random:3" and not first.meaningful
    assert "not meaningful" in model.summary(first)
    other = model.export(tmp_path / "c", try_download=False, seed=4)
    assert other.files["resnet18.pt"]["sha256"] != first.files["resnet18.pt"]["sha256"]


def test_export_writes_the_weights_class_names_and_a_model_card(tmp_path):
    exported = model.export(tmp_path, try_download=False)
    classes = json.loads((tmp_path / "imagenet_classes.json").read_text())
    assert len(classes) == 1000 and classes[0] == "tench"
    card = json.loads((tmp_path / "model.json").read_text())
    assert card["architecture"] == "resnet18" and card["weights_source"] == exported.weights_source
    assert card["input_size"] == [3, 224, 224] and card["mean"] == [0.485, 0.456, 0.406]
    assert card["files"]["resnet18.pt"] == exported.files["resnet18.pt"]
    state = torch.load(tmp_path / "resnet18.pt", weights_only=True)
    assert set(state) == set(torchvision.models.resnet18().state_dict())


def test_a_weights_file_the_user_names_comes_first(tmp_path):
    torch.manual_seed(11)
    weights = tmp_path / "mine.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    exported = model.export(tmp_path / "out", weights, url="http://127.0.0.1:9/never-tried")
    assert exported.weights_source == "file:mine.pth" and exported.meaningful
    saved = torch.load(tmp_path / "out/resnet18.pt", weights_only=True)
    assert torch.equal(saved["fc.weight"], torch.load(weights, weights_only=True)["fc.weight"])


def test_a_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No weights file at .*nope.pth"):
        model.export(tmp_path, tmp_path / "nope.pth")


def test_a_weights_file_that_is_not_a_resnet18_state_dict_is_a_clear_error(tmp_path):
    weights = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, weights)
    with pytest.raises(ValueError, match="other.pth is not a ResNet-18 state_dict"):
        model.export(tmp_path / "out", weights)


@pytest.fixture
def weights_server(tmp_path):
    """A loopback HTTP server holding a ResNet-18 state_dict named as torch.hub names its files.

    Yields (base URL, the served file); the server stops at the end of the test.
    """
    torch.manual_seed(5)
    buffer = io.BytesIO()
    torch.save(torchvision.models.resnet18().state_dict(), buffer)
    served = tmp_path / "www" / f"resnet18-{hashlib.sha256(buffer.getvalue()).hexdigest()[:8]}.pth"
    served.parent.mkdir()
    served.write_bytes(buffer.getvalue())
    (served.parent / "resnet18-00000000.pth").write_bytes(buffer.getvalue())  # its name lies about its hash
    handler = functools.partial(QuietHandler, directory=str(served.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_the_download_path_loads_weights_over_http_into_torch_hubs_cache(weights_server, tmp_path):
    base, served = weights_server
    url = f"{base}/{served.name}"
    exported = model.export(tmp_path / "out", url=url, cache_dir=tmp_path / "cache")
    assert exported.weights_source == f"url:{url}" and exported.meaningful
    downloaded = torch.load(tmp_path / "out/resnet18.pt", weights_only=True)
    expected = torch.load(served, weights_only=True)
    assert downloaded.keys() == expected.keys()
    assert all(torch.equal(downloaded[key], expected[key]) for key in expected)
    assert (tmp_path / "cache" / served.name).read_bytes() == served.read_bytes()


def test_a_cached_download_is_reused_without_the_network(weights_server, tmp_path):
    base, served = weights_server
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / served.name).write_bytes(served.read_bytes())
    served.unlink()  # the server would now answer 404
    exported = model.export(tmp_path / "out", url=f"{base}/{served.name}", cache_dir=cache)
    assert exported.meaningful


def test_a_failed_download_falls_back_to_the_seeded_initialisation_and_says_so(
    weights_server, tmp_path, caplog
):
    base, _ = weights_server
    with caplog.at_level(logging.WARNING, logger="helpers.model"):
        exported = model.export(
            tmp_path / "out", url=f"{base}/missing.pth", cache_dir=tmp_path / "cache", seed=0
        )
    assert exported.weights_source == "seeded-random:0"
    assert "download failed" in caplog.text and "NOT meaningful" in caplog.text


def test_a_download_whose_hash_does_not_match_its_name_is_not_used(weights_server, tmp_path):
    base, _ = weights_server
    exported = model.export(
        tmp_path / "out", url=f"{base}/resnet18-00000000.pth", cache_dir=tmp_path / "cache", seed=0
    )
    assert exported.weights_source == "seeded-random:0"
    assert not (tmp_path / "cache" / "resnet18-00000000.pth").exists()


def test_an_unreachable_download_falls_back_quickly(tmp_path, monkeypatch):
    with socket.socket() as listener:  # a port that accepts nothing: connection refused
        listener.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/resnet18-f37072fd.pth"
    started = time.monotonic()
    _, source = model.load_weights(url=url, cache_dir=tmp_path)
    assert source == "seeded-random:0" and time.monotonic() - started < model.DOWNLOAD_TIMEOUT_S


def test_the_seeded_initialisation_leaves_the_callers_random_state_alone(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    model.load_weights(try_download=False, seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_a_download_that_is_not_a_resnet18_leaves_the_seeded_initialisation_untouched(
    weights_server, tmp_path
):
    base, served = weights_server
    torch.manual_seed(6)
    wrong = torchvision.models.resnet18(num_classes=10).state_dict()  # every key, fc of the wrong shape
    buffer = io.BytesIO()
    torch.save(wrong, buffer)
    name = f"resnet18-{hashlib.sha256(buffer.getvalue()).hexdigest()[:8]}.pth"
    (served.parent / name).write_bytes(buffer.getvalue())
    fallback, source = model.load_weights(url=f"{base}/{name}", cache_dir=tmp_path, seed=2)
    seeded, _ = model.load_weights(try_download=False, seed=2)
    assert source == "seeded-random:2"
    assert all(torch.equal(value, seeded.state_dict()[key]) for key, value in fallback.state_dict().items())


def test_an_export_without_the_network_warns_once_and_its_summary_is_a_short_table(
    tmp_path, monkeypatch, caplog, capsys
):
    """02 showed three warnings for one fact (the download failed, the seeded fallback, and the summary's
    own), a torch.hub 'Downloading:' line, and the files' full sha256 hashes in a nested dict."""
    import logging
    import sys
    import urllib.error

    def offline(*args, **kwargs):
        sys.stderr.write(
            'Downloading: "https://download.pytorch.org/models/resnet18.pth"\n'
        )  # as torch.hub does
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(model, "_fetch_state_dict", offline)
    with caplog.at_level(logging.INFO, logger=model.log.name):
        exported = model.export(tmp_path / "m", seed=1)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert (
        len(warnings) == 1 and "NOT meaningful" in warnings[0] and "Name or service not known" in warnings[0]
    )
    assert "Downloading" not in capsys.readouterr().err
    shown = model.summary(exported)
    assert shown.startswith("| file | MB | sha256 |") and "| resnet18.pt | 46.8 |" in shown
    assert exported.files["resnet18.pt"]["sha256"] not in shown  # hashes shortened
    assert exported.files["resnet18.pt"]["sha256"][:12] in shown
    assert "NOT meaningful" not in shown  # the warning is said once, above
