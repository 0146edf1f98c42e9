"""Model export: weight sources in order, deterministic offline export, and a torch-only ResNet-18
that computes exactly what torchvision's does."""

from __future__ import annotations

import functools
import http.server
import importlib.util
import io
import json
import threading
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


def test_offline_export_is_byte_deterministic_and_says_predictions_are_not_meaningful(tmp_path):
    first = model.export(tmp_path / "a", try_download=False, seed=3)
    second = model.export(tmp_path / "b", try_download=False, seed=3)
    assert first.files == second.files
    assert first.weights_source == "seeded-random:3" and not first.meaningful
    assert "NOT meaningful" in model.summary(first)["warning"]
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


@pytest.fixture
def weights_server(tmp_path):
    """A loopback HTTP server holding a ResNet-18 state_dict, as the download would fetch it."""
    torch.manual_seed(5)
    buffer = io.BytesIO()
    torch.save(torchvision.models.resnet18().state_dict(), buffer)
    (tmp_path / "resnet18.pth").write_bytes(buffer.getvalue())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_download_path_loads_weights_over_http(weights_server, tmp_path):
    exported = model.export(tmp_path / "out", url=f"{weights_server}/resnet18.pth")
    assert exported.weights_source == "torchvision:IMAGENET1K_V1"
    downloaded = torch.load(tmp_path / "out/resnet18.pt", weights_only=True)
    served = torch.load(tmp_path / "resnet18.pth", weights_only=True)  # the fixture shares tmp_path
    assert all(torch.equal(downloaded[key], served[key]) for key in served)


def test_a_failed_download_falls_back_to_the_seeded_initialisation(weights_server, tmp_path):
    exported = model.export(tmp_path / "out", url=f"{weights_server}/missing.pth", seed=0)
    assert exported.weights_source == "seeded-random:0"
