"""Export ResNet-18 for the inference function: weights, ImageNet class names and a model card.

Weights come from, in order: a file you name; torchvision's download (through torch.hub's cache, so a
file downloaded once is reused offline), where the network allows it; else a seeded deterministic
initialisation. The last one keeps the workshop working offline (every timing and the whole pipeline are
real) but its predictions are NOT meaningful, and everything that shows a prediction says so.
``weights_source`` records which one was used.

The folder written here is what goes onto EFS under ``/mnt/ml/model/<version>/``:
``resnet18.pt`` (the state_dict), ``imagenet_classes.json`` and ``model.json``. An offline export is
byte-for-byte deterministic: torch.save writes fixed zip timestamps and names its records after the
file, and the JSON files hold no timestamps.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import logging
import pickle
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ARCHITECTURE = "resnet18"
WEIGHTS_FILE = "resnet18.pt"
CLASSES_FILE = "imagenet_classes.json"
CARD_FILE = "model.json"
TORCHVISION_SOURCE = "torchvision:IMAGENET1K_V1"
DOWNLOAD_TIMEOUT_S = 10.0
OFFLINE_WARNING = (
    "Using a seeded random initialisation of ResNet-18 ({why}): timings are real, predictions are NOT "
    "meaningful."
)
# What a failed or corrupted download raises: the network (OSError covers URLError, HTTPError and
# timeouts), torch.hub's hash check (RuntimeError), or torch.load on a file that is not a state_dict.
_DOWNLOAD_ERRORS = (
    OSError,
    http.client.HTTPException,
    RuntimeError,
    ValueError,
    EOFError,
    pickle.UnpicklingError,
)


@dataclass(frozen=True)
class ExportedModel:
    """What :func:`export` wrote: the folder, where the weights came from, and each file's sha256 and size."""

    directory: Path
    weights_source: str
    files: dict[str, dict]  # file name in ``directory`` -> {"sha256": hex, "size": bytes}

    @property
    def meaningful(self) -> bool:
        """False for the seeded initialisation: its predictions are not ImageNet classes."""
        return not self.weights_source.startswith("seeded")

    @property
    def size(self) -> int:
        return sum(f["size"] for f in self.files.values())


def class_names() -> list[str]:
    """The 1000 ImageNet class names, from torchvision's weights metadata (no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """torch.hub opens its connection without a timeout; bound it so an offline machine falls back fast."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def download_state_dict(
    url: str | None = None, *, cache_dir: str | Path | None = None, timeout: float = DOWNLOAD_TIMEOUT_S
) -> dict:
    """torchvision's ImageNet ResNet-18 weights (or those at ``url``) through torch.hub's cache.

    A file already in the cache (``~/.cache/torch/hub/checkpoints`` unless ``cache_dir``) is used without
    the network; a download is checked against the sha256 prefix in its file name. Raises what the
    network, the hash check or torch.load raise.
    """
    options = {
        "model_dir": None if cache_dir is None else str(cache_dir),
        "map_location": "cpu",
        "progress": False,
        "check_hash": True,
        "weights_only": True,
    }
    said = io.StringIO()  # torch.hub writes 'Downloading: ...' to stderr even with progress=False
    try:
        with _socket_timeout(timeout), contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
            return _fetch_state_dict(url, options)
    finally:
        if said.getvalue().strip():
            log.info("torch.hub: %s", said.getvalue().strip())


def _fetch_state_dict(url: str | None, options: dict) -> dict:
    import torch
    from torchvision.models import ResNet18_Weights

    if url is None:
        return ResNet18_Weights.IMAGENET1K_V1.get_state_dict(**options)
    return torch.hub.load_state_dict_from_url(url, **options)


def load_weights(
    weights_file: str | Path | None = None,
    *,
    url: str | None = None,
    try_download: bool = True,
    cache_dir: str | Path | None = None,
    seed: int = 0,
):
    """torchvision's ResNet-18 (eval mode) with weights from the first source that works, and its name.

    The name is ``file:<name>``, ``torchvision:IMAGENET1K_V1`` (or ``url:<url>`` for another URL), or
    ``seeded-random:<seed>``; the last one is logged as a warning.
    """
    import torch

    if weights_file is not None:
        path = Path(weights_file).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"No weights file at {path}: check WEIGHTS_FILE, or set it to None.")
        model = _resnet18(seed)
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except (RuntimeError, pickle.UnpicklingError) as exc:
            raise ValueError(
                f"{path} is not a ResNet-18 state_dict (save one with torch.save(model.state_dict(), path)): {exc}"
            ) from exc
        log.info("ResNet-18 weights from the file %s", path)
        return model.eval(), f"file:{path.name}"
    why = "no weights file was given and the download was skipped"
    if try_download:
        try:
            model = _resnet18(seed)
            model.load_state_dict(download_state_dict(url, cache_dir=cache_dir))
        except _DOWNLOAD_ERRORS as exc:  # said once, in the warning below
            why = f"no weights file was given and the download failed: {url or 'torchvision'}: {exc}"
        else:
            source = TORCHVISION_SOURCE if url is None else f"url:{url}"
            log.info("ResNet-18 weights from %s", source)
            return model.eval(), source
    log.warning(OFFLINE_WARNING.format(why=why))
    return _resnet18(seed).eval(), f"seeded-random:{seed}"


def _resnet18(seed: int):
    """A freshly initialised torchvision ResNet-18, seeded, leaving the caller's random state as it was."""
    import torch
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torchvision.models.resnet18()


def export(
    dest: str | Path,
    weights_file: str | Path | None = None,
    *,
    url: str | None = None,
    try_download: bool = True,
    cache_dir: str | Path | None = None,
    seed: int = 0,
) -> ExportedModel:
    """Write ``resnet18.pt``, ``imagenet_classes.json`` and ``model.json`` into ``dest``.

    Weights as :func:`load_weights` finds them. ``model.json`` records the architecture, the weights'
    source, each file's sha256 and size, the torch version and the preprocessing (input size, resize,
    mean, std).
    """
    import torch

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    model, source = load_weights(
        weights_file, url=url, try_download=try_download, cache_dir=cache_dir, seed=seed
    )
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


def summary(exported: ExportedModel) -> str:
    """What a notebook shows about an export, as a short Markdown table (hashes shortened; a seeded
    initialisation is named, its warning was logged once by :func:`load_weights`)."""
    rows = ["| file | MB | sha256 |", "|---|---:|---|"]
    for name, meta in exported.files.items():
        rows.append(f"| {name} | {meta['size'] / 1e6:.1f} | {meta['sha256'][:12]}… |")
    rows.append(f"| together | {exported.size / 1e6:.1f} | |")
    note = "" if exported.meaningful else " (predictions are not meaningful: see the warning above)"
    return "\n".join(rows) + f"\n\nIn `{exported.directory}`, weights from `{exported.weights_source}`{note}."
