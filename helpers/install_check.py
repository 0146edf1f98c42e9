"""Check the workshop's virtualenv after ``make install``: torch's CPU build, no CUDA libraries, its size.

PyPI's Linux torch is a CUDA build that pulls some 3 GB of ``nvidia-*`` libraries and triton, which a CPU-only
workshop never uses (and which a SageMaker notebook instance's default 5 GB volume cannot hold). ``make install``
installs the CPU build first; this check fails the install if a CUDA build or any ``nvidia-*`` package got in
anyway (another package asking for a newer torch, for example), and prints the venv's size.
Run it as ``python -m helpers.install_check``.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path

CUDA_PACKAGES = ("nvidia-", "triton")


def cuda_packages() -> list[str]:
    """The installed distributions that only a CUDA build of torch needs."""
    names = {(dist.metadata["Name"] or "").lower() for dist in metadata.distributions()}
    return sorted(name for name in names if name.startswith(CUDA_PACKAGES))


def torch_version() -> str | None:
    """The installed torch's version (``2.13.0+cpu`` for the CPU build), None without torch."""
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def size_bytes(root: str | Path = sys.prefix) -> int:
    """Bytes of the files under ``root`` (the venv), symlinks not followed."""
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                total += os.path.getsize(path)
    return total


def problems() -> list[str]:
    """What is wrong with this environment for the workshop, one sentence each (empty when nothing is)."""
    found = []
    version = torch_version()
    if version is None:
        found.append("torch is not installed: run make install.")
    elif not version.endswith("+cpu"):
        found.append(
            f"torch {version} is not the CPU build: remove the venv and run make install, which installs "
            "torch from the PyTorch CPU index (or pip's find-links) first."
        )
    extra = cuda_packages()
    if extra:
        found.append(f"CUDA packages are installed, which the workshop never uses: {', '.join(extra)}.")
    return found


def main() -> int:
    found = problems()
    for line in found:
        print(line, file=sys.stderr)
    print(f"venv {sys.prefix}: torch {torch_version()}, {size_bytes() / 1e9:.2f} GB")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
