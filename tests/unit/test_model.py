"""Model export and the torch-only EfficientNet-Lite0: the package's ImageNet weights load strictly, classify
photos shipped inside installed packages as a person would, and export deterministically."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from PIL import Image

from helpers import model, samples


@pytest.fixture(scope="module")
def network():
    return model.network()


@pytest.fixture(scope="module")
def trained():
    net, source = model.load_weights()
    return net, source


def top(net, network, image: Image.Image, k: int = 5) -> list[str]:
    classes = model.class_names()
    with torch.inference_mode():
        probabilities = torch.softmax(net(network.preprocess(image))[0], dim=0)
    return [classes[i] for i in probabilities.topk(k).indices.tolist()]


@pytest.mark.parametrize(("photo", "expected"), samples.EXPECTED.items())
def test_the_package_weights_classify_photos_shipped_in_packages_as_a_person_would(
    trained, network, photo, expected
):
    label, rank = expected
    net, source = trained
    assert source == model.PACKAGE_SOURCE
    assert label in top(net, network, Image.open(samples.path(photo)), rank)


def test_untrained_weights_would_fail_that_check(network):
    """The check above can fail: the same network with fresh (untrained) weights does not name the palace."""
    torch.manual_seed(0)
    net = network.EfficientNetLite0().eval()
    assert "palace" not in top(net, network, Image.open(samples.path()), 1)


def test_the_class_names_are_imagenets_1000_in_order():
    classes = model.class_names()
    assert len(classes) == 1000 and len(set(classes)) == 1000
    assert (classes[0], classes[652], classes[698], classes[999]) == (
        "tench",
        "military uniform",
        "palace",
        "toilet tissue",
    )


def test_the_package_file_matches_the_sha256_prefix_in_its_name():
    path = model.package_weights()
    assert hashlib.sha256(path.read_bytes()).hexdigest().startswith(path.stem.rsplit("-", 1)[-1])


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_preprocessing_converts_any_image_mode_to_rgb_first(network, mode):
    image = Image.open(samples.path()).convert(mode)
    batch = network.preprocess(image)
    assert batch.shape == (1, 3, 224, 224) and batch.dtype == torch.float32


def test_preprocessing_scales_pixels_as_the_tensorflow_evaluation_does(network):
    white, black = Image.new("RGB", (300, 200), "white"), Image.new("RGB", (300, 200), "black")
    assert torch.allclose(network.preprocess(white), torch.full((1, 3, 224, 224), 128 / 128))
    assert torch.allclose(network.preprocess(black), torch.full((1, 3, 224, 224), -127 / 128))


def test_same_padding_puts_the_extra_pixel_after_as_tensorflow_does(network):
    conv = network.SameConv(1, 1, 3, 2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    # TensorFlow's SAME for 4 -> 2 with a 3x3 kernel, stride 2: 1 pixel of padding, after (bottom, right)
    assert conv(x)[0, 0].tolist() == [[45.0, 39.0], [66.0, 50.0]]


def test_export_is_byte_deterministic_and_writes_the_weights_class_names_and_a_card(tmp_path):
    first = model.export(tmp_path / "a")
    second = model.export(tmp_path / "b")
    assert first.files == second.files and first.weights_source == model.PACKAGE_SOURCE
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(first.files)
    card = json.loads((tmp_path / "a" / model.CARD_FILE).read_text())
    assert card["architecture"] == "efficientnet-lite0" and card["weights_source"] == model.PACKAGE_SOURCE
    assert card["files"][model.WEIGHTS_FILE]["size"] == first.files[model.WEIGHTS_FILE]["size"]
    state = torch.load(
        tmp_path / "a" / model.WEIGHTS_FILE, mmap=True, weights_only=True
    )  # as the handler does
    assert set(state) == set(torch.load(model.package_weights(), weights_only=True))
    assert "| together |" in model.summary(first)


def test_a_weights_file_the_user_names_comes_first(tmp_path, network):
    torch.manual_seed(1)
    mine = network.EfficientNetLite0().state_dict()
    torch.save(mine, tmp_path / "mine.pth")
    exported = model.export(tmp_path / "out", tmp_path / "mine.pth")
    assert exported.weights_source == "file:mine.pth"
    saved = torch.load(tmp_path / "out" / model.WEIGHTS_FILE, weights_only=True)
    assert all(torch.equal(saved[key], value) for key, value in mine.items())


def test_a_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No weights file at .*WEIGHTS_FILE"):
        model.export(tmp_path / "out", tmp_path / "nope.pth")


def test_a_weights_file_of_another_architecture_is_a_clear_error(tmp_path):
    torch.save({"fc.weight": torch.zeros(10, 512)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not an EfficientNet-Lite0 state_dict"):
        model.export(tmp_path / "out", tmp_path / "other.pth")
