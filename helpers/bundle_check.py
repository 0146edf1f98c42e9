"""Prove a pruned framework folder works before it is packed: torch's CPU build, importable alone.

:func:`check` refuses a CUDA build (``libtorch_cuda*``, ``nvidia-*`` packages, a torch version without
``+cpu``) and a folder over 1 GB, then checks that the files ``import torch`` needs are there
(``torch/bin/torch_shm_manager``: torch/__init__ raises ``Unable to find torch_shm_manager`` without
it; the core libraries; the compiled extensions for the target's Python). Where this machine has an
interpreter of the target's Python version and architecture (the base interpreter for a local bundle,
which the local Lambda sandbox runs), it then imports torch and Pillow from the folder alone:
``python -I -S -B`` (no site-packages, no user site, no environment, no .pyc written), the folder
first on ``sys.path``, and checks that both came from it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAX_BUNDLE_BYTES = 1_000_000_000
NEEDED_AT_IMPORT = (
    "torch/__init__.py",
    "torch/bin/torch_shm_manager",
    "torch/lib/libtorch_cpu.so",
    "torch/lib/libtorch_python.so",
    "torch/lib/libc10.so",
    "torchgen/__init__.py",  # torch.utils._python_dispatch imports it
    "typing_extensions.py",
    "PIL/__init__.py",
    "PIL/Image.py",
)
EXTENSIONS = ("torch/_C", "PIL/_imaging")  # + .cpython-<version>-<platform>.so
IMPORT_CHECK = r"""
import json, os, sys
folder = sys.argv[1]
sys.path.insert(0, folder)
import torch
from PIL import Image
import PIL
print(json.dumps({
    "torch": torch.__version__,
    "cuda": getattr(getattr(torch, "version", None), "cuda", None),
    "torch_from": os.path.dirname(torch.__file__),
    "pil_from": os.path.dirname(PIL.__file__),
    "outside": sorted(
        name for name, module in list(sys.modules.items())
        if os.path.isabs(getattr(module, "__file__", None) or "")
        and not module.__file__.startswith((folder, sys.base_prefix))
    ),
}))
"""


class CheckFailed(RuntimeError):
    """The folder is not a bundle the function can import; the message says what is wrong and the fix."""


@dataclass(frozen=True)
class Checked:
    """What the check found: the folder's size, torch's version and build, and how it was proven."""

    size: int
    torch_version: str
    build: str
    proof: str


def sha256_text(text: str) -> str:
    """sha256 of a string, hex."""
    return hashlib.sha256(text.encode()).hexdigest()


def folder_size(folder: Path) -> int:
    """Bytes of the regular files under ``folder``."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink())


def torch_version(folder: Path) -> str | None:
    """torch's version from its dist-info folder (readable whatever the target's Python)."""
    found = sorted(Path(folder).glob("torch-*.dist-info"))
    return found[0].name[len("torch-") : -len(".dist-info")] if found else None


def refuse_cuda(folder: Path) -> None:
    """Raise CheckFailed if anything in ``folder`` belongs to a CUDA build of torch."""
    cuda = [p.name for p in Path(folder).iterdir() if p.name.lower().startswith("nvidia")]
    cuda += [p.name for p in Path(folder).rglob("libtorch_cuda*")]
    if cuda:
        raise CheckFailed(
            f"The framework folder {folder} holds a CUDA build ({', '.join(sorted(cuda)[:3])}): install "
            "torch's CPU build (the PyTorch CPU index or a +cpu wheel), never PyPI's Linux torch."
        )
    version = torch_version(folder)
    if version is None:
        raise CheckFailed(
            f"The framework folder {folder} has no torch-*.dist-info, so its build cannot be told: install "
            "torch with pip into it (pip install --target), not by copying."
        )
    if not version.endswith("+cpu"):
        raise CheckFailed(
            f"The framework folder {folder} holds torch {version}, not a +cpu build: pin torch==<version>+cpu."
        )


def missing_files(folder: Path, python_version: str) -> list[str]:
    """The files ``import torch`` and ``from PIL import Image`` need that ``folder`` lacks."""
    folder = Path(folder)
    missing = [rel for rel in NEEDED_AT_IMPORT if not (folder / rel).is_file()]
    tag = python_version.replace(".", "")
    for stem in EXTENSIONS:
        if not list(folder.glob(f"{stem}.cpython-{tag}-*.so")):
            missing.append(f"{stem}.cpython-{tag}-*.so")
    return missing


def interpreter(python_version: str, machine: str) -> str | None:
    """An interpreter on this machine of ``python_version`` and ``machine`` (the base one first), or None."""
    if machine != platform.machine():
        return None
    candidates = [
        Path(sys.base_prefix) / "bin" / f"python{python_version}",
        shutil.which(f"python{python_version}"),
    ]
    for candidate in candidates:
        if not candidate or not os.access(candidate, os.X_OK):
            continue
        done = subprocess.run(
            [str(candidate), "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if done.returncode == 0 and done.stdout.strip() == python_version:
            return str(candidate)
    return None


def import_alone(folder: Path, python: str, timeout: float = 180) -> dict:
    """Import torch and Pillow from ``folder`` alone with ``python``; what was imported, from where."""
    folder = Path(folder).resolve()
    with tempfile.TemporaryDirectory() as cwd:
        done = subprocess.run(
            [python, "-I", "-S", "-B", "-c", IMPORT_CHECK, str(folder)],
            capture_output=True,
            text=True,
            cwd=cwd,
            env={"PATH": os.defpath, "LANG": "C.UTF-8", "HOME": cwd},
            timeout=timeout,
        )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CheckFailed(
            f"torch or Pillow does not import from {folder} alone ({last}): rebuild the bundle, and keep "
            "whatever that error names out of the prune rules."
        )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("torch_from", "pil_from"):
        if not found[key].startswith(str(folder)):
            raise CheckFailed(
                f"{key[:-5]} was imported from {found[key]}, not from {folder}: rebuild the bundle."
            )
    if found["outside"]:
        raise CheckFailed(f"Importing from {folder} loaded modules from elsewhere: {found['outside'][:5]}.")
    return found


def check(folder: Path, python_version: str, machine: str) -> Checked:
    """Refuse CUDA and oversize, require the import files, and import it where an interpreter allows."""
    folder = Path(folder)
    refuse_cuda(folder)
    size = folder_size(folder)
    if size > MAX_BUNDLE_BYTES:
        raise CheckFailed(
            f"The framework folder {folder} is {size / 1e9:.2f} GB, over the {MAX_BUNDLE_BYTES / 1e9:.0f} GB a "
            "CPU build of torch with Pillow needs: something else was installed; build from the pinned list."
        )
    missing = missing_files(folder, python_version)
    if missing:
        raise CheckFailed(
            f"The framework folder {folder} lacks {', '.join(missing)}, which import torch needs: keep them "
            "out of the prune rules and rebuild."
        )
    python = interpreter(python_version, machine)
    if python is None:
        proof = f"the files torch needs at import are there (no Python {python_version} {machine} here to import it)"
        return Checked(size, torch_version(folder) or "?", "cpu", proof)
    found = import_alone(folder, python)
    if found["cuda"]:
        raise CheckFailed(
            f"torch {found['torch']} in {folder} is a CUDA {found['cuda']} build: use the CPU build."
        )
    return Checked(size, found["torch"], "cpu", f"imported alone with {python} -I -S")
