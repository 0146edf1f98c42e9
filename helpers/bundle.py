"""The framework bundle: torch's CPU build and Pillow, built one way for both backends.

:func:`build_framework_bundle` pip-installs the packages into a folder (``--target``, ``--no-deps``),
prunes what is never imported, checks the result and packs it (:mod:`helpers.archives`). Only the
:class:`BundleTarget` differs between the backends:

- **AWS**: the function's runtime and architecture, ``--platform manylinux_2_28_x86_64`` (torch >= 2.6
  publishes only ``manylinux_2_28`` wheels, which the python3.12+ runtimes on Amazon Linux 2023, glibc
  2.34, run) and ``manylinux2014``, ``--python-version 3.12 --only-binary=:all:``, from the PyTorch CPU
  index, with PyPI as extra index for Pillow and typing_extensions. Pin ``torch==2.14.1+cpu``: the
  workshop's torch (the one that exports the weights), in its CPU build.
- **local**: this machine's interpreter, which the local Lambda sandbox runs functions with (no host
  site-packages). Pin ``torch==2.13.0+cpu``: the CPU build that pip's find-links hold on this kind of
  machine (the PyTorch CPU index is used first when it is reachable; it serves the same build). The
  venv's own torch is a CUDA build and is never bundled. Weights saved by 2.14.1 load in 2.13.0.

The packages are exactly what ``import torch`` and ``from PIL import Image`` need (``typing_extensions``
is imported by ``torch/__init__``; numpy is optional, torch only warns): the import check proves it.
It refuses ``libtorch_cuda*``, ``nvidia-*``, a torch version without ``+cpu`` and a bundle over 1 GB.

Builds are cached under ``build/bundles/`` by a key of everything that decides their content
(packages, platform, Python version, prune rules): ``<key>/`` is the folder, ``<key>.tar.gz`` its
archive and ``<key>.json`` the record written last, so a second run neither rebuilds nor repacks (and
the upload is skipped by the archive's content-addressed key, see :mod:`helpers.seeding`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import platform
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from helpers import bundle_check
from helpers.archives import (  # noqa: F401  (re-exported)
    MANIFEST,
    NAMES,
    ArchiveInfo,
    manifest,
    pack_folder,
    partial_path,
)
from helpers.config import REPO_ROOT

log = logging.getLogger(__name__)

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYPI_INDEX = "https://pypi.org/simple"
AWS_TORCH = "torch==2.14.1+cpu"  # the workshop's torch, as the CPU index serves it
LOCAL_TORCH = "torch==2.13.0+cpu"  # the CPU build in this kind of machine's pip find-links
COMPANIONS = ("Pillow==13.0.0", "typing_extensions==4.16.0")  # pinned, so the cache key names the content
BUNDLE_FORMAT = 1  # bump when the prune or check rules change: it is part of the cache key
CACHE_DIR = REPO_ROOT / "build" / "bundles"
PRUNE_DIRS = ("__pycache__", "tests", "test", "include")  # anywhere: caches, test suites, C++ headers
PRUNE_TOP = ("bin",)  # pip's console scripts (torchrun ...), whose shebangs name the build machine's Python
KEEP_IN_TORCH_BIN = ("torch_shm_manager",)  # torch/__init__ raises without it; the rest are C++ test programs
PRUNE_SUFFIXES = (".pyi", ".pyc", ".a")


class BundleError(RuntimeError):
    """The framework bundle cannot be built or is wrong; the message says what to fix."""


@dataclass(frozen=True)
class BundleTarget:
    """Where the bundle will run: what pip installs, for which platform and Python, from which index."""

    backend: str
    python_version: str
    torch: str
    platforms: tuple[str, ...] = ()  # empty: this machine's interpreter
    machine: str = "x86_64"
    index_url: str | None = None  # None: pip's own configuration (find-links, cache, index)
    extra_index_url: str | None = None
    companions: tuple[str, ...] = COMPANIONS

    @property
    def packages(self) -> list[str]:
        """The pinned requirements, torch first."""
        return [self.torch, *self.companions]

    @property
    def where(self) -> str:
        """The platform in words."""
        if self.platforms:
            return f"Lambda {self.machine} / Python {self.python_version}"
        return f"this machine's Python {self.python_version} ({self.machine})"

    @property
    def source(self) -> str:
        """Where pip takes torch from, in words."""
        return f"the PyTorch CPU index {self.index_url}" if self.index_url else "pip's find-links or cache"


@dataclass
class FrameworkBundle:
    """A built, checked and packed framework folder, and what it holds."""

    directory: Path
    target: BundleTarget
    key: str
    size: int
    torch_version: str
    torch_build: str
    proof: str  # how it was proven importable
    archive: ArchiveInfo | None = None
    wheel: str = ""  # where pip took torch from (a file:// URL for find-links, https for an index)
    command: list[str] = field(default_factory=list)
    cached: bool = False
    seconds: dict = field(default_factory=dict)

    @property
    def note(self) -> str:
        """One sentence: which torch, its build, size, where it came from, and how it was checked."""
        return (
            f"torch {self.torch_version} ({self.torch_build} build) + {', '.join(self.target.companions)} for "
            f"{self.target.where}, from {self.wheel or self.target.source}: {self.size / 1e6:.1f} MB unpacked, "
            f"{self.proof}{' (cached build)' if self.cached else ''}."
        )

    def summary(self) -> dict:
        """The bundle as a small table row for a notebook."""
        return {
            "torch": self.torch_version,
            "build": self.torch_build,
            "for": self.target.where,
            "from": self.wheel or self.target.source,
            "MB unpacked": round(self.size / 1e6, 1),
            "MB packed": round(self.archive.size / 1e6, 1) if self.archive else None,
            "proof": self.proof,
            "cached": self.cached,
            "seconds": self.seconds,
        }


def lambda_platforms(architecture: str) -> list[str]:
    """pip ``--platform`` tags of wheels that run on Lambda's python3.12+ runtimes for ``architecture``."""
    machine = {"x86_64": "x86_64", "arm64": "aarch64"}.get(architecture)
    if machine is None:
        raise ValueError(f"Architecture {architecture!r} is not a Lambda architecture: use x86_64 or arm64.")
    return [f"manylinux_2_28_{machine}", f"manylinux2014_{machine}"]


def aws_target(python_version: str = "3.12", architecture: str = "x86_64") -> BundleTarget:
    """The bundle for a Lambda function of this runtime and architecture."""
    platforms = tuple(lambda_platforms(architecture))
    return BundleTarget(
        "aws",
        python_version,
        AWS_TORCH,
        platforms,
        platforms[0].split("_", 3)[-1],
        TORCH_CPU_INDEX,
        PYPI_INDEX,
    )


def local_target(index_url: str | None = None) -> BundleTarget:
    """The bundle for this machine's interpreter: the CPU index when reachable, else pip's find-links."""
    if index_url is None and reachable(TORCH_CPU_INDEX):
        index_url = TORCH_CPU_INDEX
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    extra = PYPI_INDEX if index_url else None
    return BundleTarget("local", version, LOCAL_TORCH, (), platform.machine(), index_url, extra)


def target_for(backend: str, python_version: str = "3.12", architecture: str = "x86_64") -> BundleTarget:
    """The target of a backend; locally the function's runtime is this machine's interpreter."""
    if backend == "aws":
        return aws_target(python_version, architecture)
    if backend == "local":
        return local_target()
    raise ValueError(f"Unknown backend {backend!r}: use 'aws' or 'local'.")


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether ``url`` answers at all (a failed DNS lookup returns at once)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except OSError:
        return False


def pip_command(folder: str | Path, target: BundleTarget) -> list[str]:
    """The pip command that installs the target's packages, and only those, into ``folder``."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--no-deps"]
    cmd += ["--only-binary=:all:", "--target", str(folder)]
    for tag in target.platforms:
        cmd += ["--platform", tag]
    if target.platforms:
        cmd += ["--python-version", target.python_version, "--implementation", "cp"]
    if target.index_url:
        cmd += ["--index-url", target.index_url]
    if target.extra_index_url:
        cmd += ["--extra-index-url", target.extra_index_url]
    return cmd + target.packages


def cache_key(target: BundleTarget) -> str:
    """What decides the bundle's content (not where pip found the same pinned wheels)."""
    decisive = [BUNDLE_FORMAT, target.packages, list(target.platforms), target.python_version, target.machine]
    return f"{target.backend}-{bundle_check.sha256_text(json.dumps(decisive))[:16]}"


def install(folder: Path, target: BundleTarget, extra_args: list[str] | None = None) -> tuple[list[str], str]:
    """pip-install the target's packages into the empty ``folder``; the command and torch's wheel URL."""
    cmd = pip_command(folder, target)
    report = folder.with_name(folder.name + ".pip-report.json")
    cmd[-len(target.packages) : -len(target.packages)] = [*(extra_args or []), "--report", str(report)]
    log.info("installing %s into %s", " ".join(target.packages), folder)
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode == 0:
        installed = json.loads(report.read_text())["install"]
        report.unlink()
        name = re.split(r"[=<>!~ \[]", target.torch)[0].lower()
        urls = [
            item["download_info"]["url"] for item in installed if item["metadata"]["name"].lower() == name
        ]
        return cmd, urllib.parse.unquote((urls or [""])[0])
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    detail = errors[-2:] or done.stderr.strip().splitlines()[-2:]
    if any("torch" in line for line in errors):
        raise BundleError(
            f"No CPU build of {target.torch} for {target.where} is reachable (tried {target.source}): "
            f"put its wheel in a folder named by PIP_FIND_LINKS, or allow access to {TORCH_CPU_INDEX}. "
            f"pip said: {' '.join(detail)}"
        )
    raise BundleError(
        f"pip could not install {' '.join(target.packages)} for {target.where} from {target.source}: "
        f"check that the index is reachable and the versions exist. pip said: {' '.join(detail)}"
    )


def prune(folder: Path) -> int:
    """Remove what Lambda never imports; return the bytes removed. torch/bin keeps torch_shm_manager."""
    before = bundle_check.folder_size(folder)
    for name in PRUNE_TOP:
        shutil.rmtree(folder / name, ignore_errors=True)
    torch_bin = folder / "torch" / "bin"
    if torch_bin.is_dir():
        for path in torch_bin.iterdir():
            if path.name not in KEEP_IN_TORCH_BIN:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path.name in PRUNE_DIRS:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix in PRUNE_SUFFIXES:
            path.unlink()
    return before - bundle_check.folder_size(folder)


def build_framework_bundle(
    target: BundleTarget, cache_dir: str | Path | None = None, *, pip_args: list[str] | None = None
) -> FrameworkBundle:
    """Install, prune, check and pack the bundle for ``target``, or reuse the cached one.

    ``pip_args`` go to pip before the packages (tests use ``--no-index --find-links``). A lock file
    beside the build keeps two processes (a notebook and a test run) from building the same key at once.
    """
    cache_dir = Path(cache_dir or CACHE_DIR)
    key = cache_key(target)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        bundle = _from_record(cache_dir / f"{key}.json", cache_dir / key, target) or _build(
            target, cache_dir, key, pip_args
        )
        packed = cache_dir / f"{key}.tar.gz"
        if bundle.archive is None or not packed.is_file() or packed.stat().st_size != bundle.archive.size:
            started = time.perf_counter()
            for cache in list(bundle.directory.rglob("__pycache__")):  # a Python imported the folder since
                shutil.rmtree(cache)
            bundle.archive = pack_folder(bundle.directory, "framework", packed)
            bundle.seconds["pack"] = round(time.perf_counter() - started, 1)
            _write_record(cache_dir / f"{key}.json", bundle)
    log.info(bundle.note)
    return bundle


def _build(target: BundleTarget, cache_dir: Path, key: str, pip_args: list[str] | None) -> FrameworkBundle:
    """Install, prune and check into ``<key>.partial``, then rename it to ``<key>`` and write the record."""
    if target.index_url and not reachable(target.index_url):
        raise BundleError(
            f"The index {target.index_url} is not reachable from this machine, and the bundle for "
            f"{target.where} ({target.torch}) comes from it: build it where it is (SageMaker Studio, an EC2 instance, "
            "a laptop online), or use the local backend."
        )
    started = time.perf_counter()
    partial, folder = cache_dir / f"{key}.partial", cache_dir / key
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        command, wheel = install(partial, target, pip_args)
        installed = time.perf_counter()
        prune(partial)
        checked = bundle_check.check(partial, target.python_version, target.machine)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # hundreds of MB that are of no use
        raise
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    bundle = FrameworkBundle(
        folder, target, key, checked.size, checked.torch_version, checked.build, checked.proof,
        wheel=wheel, command=command,
        seconds={"install": round(installed - started, 1), "prune+check": round(time.perf_counter() - installed, 1)},
    )  # fmt: skip
    _write_record(cache_dir / f"{key}.json", bundle)
    _drop_stale(cache_dir, key)
    return bundle


def _drop_stale(cache_dir: Path, key: str) -> None:
    """Remove older builds for the same backend (each is hundreds of MB); other backends' builds stay."""
    backend = key.split("-", 1)[0]
    for path in cache_dir.glob(f"{backend}-*"):
        if path.name.split(".", 1)[0] != key:
            log.info("removing the stale bundle build %s", path)
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _write_record(path: Path, bundle: FrameworkBundle) -> None:
    doc = {
        "format": BUNDLE_FORMAT,
        "target": asdict(bundle.target),
        "size": bundle.size,
        "torch_version": bundle.torch_version,
        "torch_build": bundle.torch_build,
        "proof": bundle.proof,
        "archive": bundle.archive.to_json() if bundle.archive else None,
        "wheel": bundle.wheel,
        "command": bundle.command,
        "seconds": bundle.seconds,
    }
    partial = partial_path(path)
    partial.write_text(json.dumps(doc, indent=1))
    partial.replace(path)


def _from_record(path: Path, folder: Path, target: BundleTarget) -> FrameworkBundle | None:
    """The cached bundle, when its record and folder are there (the record is written after the check)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # never built, or interrupted before its record: build it
    if doc.get("format") != BUNDLE_FORMAT or not folder.is_dir():
        return None
    archive = ArchiveInfo.from_json(doc["archive"]) if doc.get("archive") else None
    return FrameworkBundle(
        folder, target, folder.name, doc["size"], doc["torch_version"], doc["torch_build"], doc["proof"],
        archive=archive, wheel=doc.get("wheel", ""), command=doc["command"], cached=True, seconds={},
    )  # fmt: skip
