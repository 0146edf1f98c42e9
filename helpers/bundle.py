"""Archives for EFS (a folder + its manifest, as a deterministic .tar.gz) and the framework bundle.

An archive holds the folder's files at top level plus ``manifest.json``::

    {"format": 1, "name": "model", "files": {"resnet18.pt": {"sha256": "...", "size": 46835659}, ...}}

The seeder function verifies every file against it on EFS. The same folder always gives the same
bytes (sorted members, fixed times, owners and modes, gzip without a timestamp).

The framework bundle is what the function imports from EFS: on AWS, the Lambda platform's CPU build
of torch plus Pillow, installed by pip for the function's architecture and Python version from the
PyTorch CPU index (PyPI's Linux torch is a multi-GB CUDA build). torch >= 2.6 publishes only
``manylinux_2_28`` wheels, which the python3.12+ runtimes (Amazon Linux 2023, glibc 2.34) run, so the
command accepts ``manylinux_2_28`` as well as ``manylinux2014``. On the local backend the execution
environments run this machine's interpreter, so the bundle holds only what it lacks: usually nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import logging
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
NAMES = ("model", "framework")  # the folders the seeder writes under the EFS mount
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYPI_INDEX = "https://pypi.org/simple"
LAMBDA_TORCH = "torch==2.14.1"  # the workshop's torch; the CPU index serves its +cpu build
REQUIRED_MODULES = {"torch": LAMBDA_TORCH, "PIL": "Pillow"}
PRUNE = ("__pycache__", "tests", "test", "include", "bin")
PRUNE_SUFFIXES = (".pyi", ".pyc", ".a")
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ArchiveInfo:
    """A packed archive: where it is, its sha256, and the manifest's sha256 the seeder checks."""

    name: str
    path: Path
    sha256: str
    size: int
    manifest_sha256: str
    files: int
    content_bytes: int

    @property
    def version(self) -> str:
        """The version id the seeder gives this content on EFS."""
        return self.manifest_sha256[:16]


@dataclass(frozen=True)
class FrameworkBundle:
    """A built framework folder, its size, and a sentence saying what it holds and why."""

    directory: Path
    backend: str
    packages: list[str]
    size: int
    note: str
    command: list[str] = field(default_factory=list)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> tuple[str, int]:
    """sha256 and size of a file, read in chunks (framework libraries are hundreds of MB)."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def manifest(src: Path, name: str) -> dict:
    """The manifest of every regular file under ``src`` (symlinks and special files are refused)."""
    src = Path(src)
    files = {}
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src).as_posix()
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise ValueError(f"{path} is a link or special file: archives for EFS hold regular files only.")
        if path.is_file() and rel != MANIFEST:
            sha256, size = _file_sha256(path)
            files[rel] = {"sha256": sha256, "size": size}
    return {"format": 1, "name": name, "files": files}


def pack_folder(src: str | Path, name: str, dest: str | Path) -> ArchiveInfo:
    """Pack ``src`` with its manifest into the .tar.gz ``dest``; the same folder gives the same bytes."""
    src, dest = Path(src), Path(dest)
    if not src.is_dir():
        raise FileNotFoundError(f"No folder at {src} to pack.")
    if name not in NAMES:
        raise ValueError(f"Unknown archive name {name!r}: the seeder accepts {' or '.join(NAMES)}.")
    doc = manifest(src, name)
    manifest_bytes = json.dumps(doc, indent=1, sort_keys=True).encode()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as zipped:
        with tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, MANIFEST, io.BytesIO(manifest_bytes), len(manifest_bytes))
            for rel, meta in doc["files"].items():
                with open(src / rel, "rb") as fh:
                    _add(tar, rel, fh, meta["size"])
    sha256, size = _file_sha256(dest)
    log.info("packed %d files of %s into %s (%.1f MB)", len(doc["files"]), src, dest, size / 1e6)
    return ArchiveInfo(
        name=name,
        path=dest,
        sha256=sha256,
        size=size,
        manifest_sha256=_sha256(manifest_bytes),
        files=len(doc["files"]),
        content_bytes=sum(f["size"] for f in doc["files"].values()),
    )


def _add(tar: tarfile.TarFile, name: str, fileobj, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, fileobj)


def lambda_platforms(architecture: str) -> list[str]:
    """pip ``--platform`` tags of wheels that run on Lambda's python3.12+ runtimes for ``architecture``."""
    machine = {"x86_64": "x86_64", "arm64": "aarch64"}.get(architecture)
    if machine is None:
        raise ValueError(f"Architecture {architecture!r} is not a Lambda architecture: use x86_64 or arm64.")
    return [f"manylinux_2_28_{machine}", f"manylinux2014_{machine}"]


def pip_command(
    target: str | Path,
    packages: list[str],
    *,
    python_version: str = "3.12",
    architecture: str = "x86_64",
    host: bool = False,
    index_url: str | None = TORCH_CPU_INDEX,
    extra_index_url: str | None = PYPI_INDEX,
    extra_args: list[str] | None = None,
) -> list[str]:
    """The pip command that installs ``packages`` into ``target`` for Lambda's platform.

    With ``host=True`` it installs for this machine's interpreter instead (a local-backend bundle).
    """
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target)]
    if not host:
        for platform in lambda_platforms(architecture):
            cmd += ["--platform", platform]
        cmd += ["--python-version", python_version, "--only-binary=:all:", "--implementation", "cp"]
    if index_url:
        cmd += ["--index-url", index_url]
    if extra_index_url:
        cmd += ["--extra-index-url", extra_index_url]
    return cmd + list(extra_args or []) + list(packages)


def missing_on_host() -> list[str]:
    """The required packages this interpreter cannot import (what a local bundle must carry)."""
    return [
        package for module, package in REQUIRED_MODULES.items() if importlib.util.find_spec(module) is None
    ]


def build_framework_bundle(
    target: str | Path,
    *,
    backend: str,
    python_version: str = "3.12",
    architecture: str = "x86_64",
    packages: list[str] | None = None,
    pip_args: dict | None = None,
) -> FrameworkBundle:
    """Fill ``target`` with the framework the function imports from EFS (see the module docstring).

    ``pip_args`` overrides ``index_url``, ``extra_index_url`` and ``extra_args`` of :func:`pip_command`.
    The AWS build downloads from the PyTorch CPU index, which only a machine with internet access can
    reach; the tests run the same code path on a small wheel served from a local folder instead.
    """
    if backend not in ("aws", "local"):
        raise ValueError(f"Unknown backend {backend!r}: use 'aws' or 'local'.")
    target = Path(target)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    if backend == "local":
        packages = missing_on_host() if packages is None else packages
        if not packages:
            return FrameworkBundle(
                target, backend, [], 0,
                "The local backend runs functions on this machine's Python, which already has torch and "
                "Pillow: the framework bundle is empty, and the functions import the host's packages.",
            )  # fmt: skip
        where = f"this machine's Python {sys.version_info.major}.{sys.version_info.minor}, which lacks them"
    else:
        packages = packages if packages is not None else list(REQUIRED_MODULES.values())
        where = f"Lambda {architecture} / Python {python_version}"
    cmd = pip_command(
        target,
        packages,
        python_version=python_version,
        architecture=architecture,
        host=backend == "local",
        **(pip_args or {}),
    )
    log.info("installing %s into %s", " ".join(packages), target)
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"pip could not build the framework bundle ({' '.join(packages)}); check the index is reachable "
            f"and the versions exist for {where}:\n{done.stderr[-2000:]}"
        )
    prune(target)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    note = f"{', '.join(packages)} for {where}: {size / 1e6:.1f} MB unpacked."
    log.info(note)
    return FrameworkBundle(target, backend, packages, size, note, cmd)


def prune(target: Path) -> None:
    """Remove what Lambda never imports: caches, tests, headers, type stubs, static libraries."""
    for path in sorted(Path(target).rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path.name in PRUNE:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix in PRUNE_SUFFIXES:
            path.unlink()
