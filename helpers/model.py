"""Export ResNet-18 for the inference function: weights, ImageNet class names and a model card.

Weights come from, in order: a file you name; torchvision's download, where the network allows it;
else a seeded deterministic initialisation. The last one keeps the workshop working offline (every
timing and the whole pipeline are real) but its predictions are NOT meaningful, and everything that
shows a prediction says so. ``weights_source`` records which one was used.

The folder written here is what goes onto EFS under ``/mnt/ml/model/<version>/``:
``resnet18.pt`` (the state_dict), ``imagenet_classes.json`` and ``model.json``. An offline export is
byte-for-byte deterministic.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ARCHITECTURE = "resnet18"
WEIGHTS_FILE = "resnet18.pt"
CLASSES_FILE = "imagenet_classes.json"
CARD_FILE = "model.json"
DOWNLOAD_TIMEOUT_S = 10.0
MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024
OFFLINE_WARNING = (
    "Using a seeded random initialisation of ResNet-18 ({why}): timings are real, predictions are NOT "
    "meaningful."
)


@dataclass(frozen=True)
class ExportedModel:
    directory: Path
    weights_source: str
    files: dict[str, dict]  # name -> {"sha256", "size"}

    @property
    def meaningful(self) -> bool:
        return not self.weights_source.startswith("seeded")

    @property
    def size(self) -> int:
        return sum(f["size"] for f in self.files.values())


def weights_url() -> str:
    from torchvision.models import ResNet18_Weights

    return ResNet18_Weights.IMAGENET1K_V1.url


def class_names() -> list[str]:
    """The 1000 ImageNet class names, from torchvision's weights metadata (no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def download_state_dict(url: str, timeout: float = DOWNLOAD_TIMEOUT_S) -> dict:
    """Fetch a state_dict over HTTP(S) with a timeout and a size cap; OSError when that fails."""
    import torch

    with urllib.request.urlopen(url, timeout=timeout) as response:
        data = response.read(MAX_DOWNLOAD_BYTES + 1)
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise OSError(f"{url} is larger than {MAX_DOWNLOAD_BYTES} bytes: not a ResNet-18 state_dict.")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def load_weights(
    weights_file: str | Path | None = None,
    *,
    url: str | None = None,
    try_download: bool = True,
    seed: int = 0,
):
    """The torchvision ResNet-18 with weights from the first source that works, and that source's name."""
    import torch
    import torchvision

    if weights_file is not None:
        path = Path(weights_file).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"No weights file at {path}: check WEIGHTS_FILE, or set it to None.")
        model = torchvision.models.resnet18()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval(), f"file:{path.name}"
    why = "no weights file was given and the download was skipped"
    if try_download:
        url = url or weights_url()
        try:
            model = torchvision.models.resnet18()
            model.load_state_dict(download_state_dict(url))
            return model.eval(), "torchvision:IMAGENET1K_V1"
        except (OSError, urllib.error.URLError, RuntimeError, ValueError) as exc:
            log.warning("could not download the ResNet-18 weights from %s: %s", url, exc)
            why = "no weights file was given and the download failed"
    log.warning(OFFLINE_WARNING.format(why=why))
    torch.manual_seed(seed)
    return torchvision.models.resnet18().eval(), f"seeded-random:{seed}"


def export(
    dest: str | Path,
    weights_file: str | Path | None = None,
    *,
    url: str | None = None,
    try_download: bool = True,
    seed: int = 0,
) -> ExportedModel:
    """Write ``resnet18.pt``, ``imagenet_classes.json`` and ``model.json`` into ``dest``."""
    import torch

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    model, source = load_weights(weights_file, url=url, try_download=try_download, seed=seed)
    torch.save(model.state_dict(), dest / WEIGHTS_FILE)
    (dest / CLASSES_FILE).write_text(json.dumps(class_names(), indent=0) + "\n")
    files = {name: _describe(dest / name) for name in (WEIGHTS_FILE, CLASSES_FILE)}
    card = {
        "architecture": ARCHITECTURE,
        "weights_source": source,
        "meaningful_predictions": not source.startswith("seeded"),
        "torch_version": torch.__version__.split("+")[0],
        "input_size": [3, 224, 224],
        "resize": 256,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "files": files,
    }
    (dest / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    files[CARD_FILE] = _describe(dest / CARD_FILE)
    return ExportedModel(directory=dest, weights_source=source, files=files)


def _describe(path: Path) -> dict:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def summary(exported: ExportedModel) -> dict:
    """What a notebook shows about an export."""
    info = asdict(exported)
    info["directory"] = str(exported.directory)
    info["size (MB)"] = round(exported.size / 1e6, 1)
    if not exported.meaningful:
        info["warning"] = OFFLINE_WARNING.format(why="no trained weights were available")
    return info
