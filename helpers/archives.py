"""Archives for EFS: a folder plus its manifest, packed as a deterministic .tar.gz.

An archive holds the folder's files at top level plus ``manifest.json``::

    {"format": 1, "name": "model", "files": {"efficientnet_lite0.pt": {"sha256": "...", "size": 46835659}, ...}}

The seeder function verifies every file against it on EFS. The same folder always gives the same
bytes (sorted members, fixed times and owners, modes 0644 or 0755 for executables such as
``torch/bin/torch_shm_manager``, gzip without a timestamp).

Compression is gzip level 1 (``COMPRESS_LEVEL``): the local framework bundle (540 MB, mostly machine
code) packs in 9 s to 164 MB at level 1, against 36 s to 143 MB at level 6 (level 9 took 121 s on
``libtorch_cpu.so`` alone), all measured on this 2-core machine; the seeder's Python 3.12 reads it with
the standard library (zstd is stdlib only from 3.14). Level 1 is as deterministic as any other level.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
NAMES = ("model", "framework")  # the folders the seeder writes under the EFS mount
COMPRESS_LEVEL = 1
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

    def to_json(self) -> dict:
        """A JSON-ready dict (the path as a string), read back with :meth:`from_json`."""
        return {**self.__dict__, "path": str(self.path)}

    @classmethod
    def from_json(cls, doc: dict) -> ArchiveInfo:
        """The inverse of :meth:`to_json`."""
        return cls(**{**doc, "path": Path(doc["path"])})


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> tuple[str, int]:
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
            sha256, size = file_sha256(path)
            files[rel] = {"sha256": sha256, "size": size}
    return {"format": 1, "name": name, "files": files}


def partial_path(dest: str | Path) -> Path:
    """A temporary name beside ``dest``, unique to this call: two kernels writing the same file at once
    (two notebooks running 02) each write their own, and the last rename wins whole."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial")


def pack_folder(
    src: str | Path, name: str, dest: str | Path, *, compresslevel: int = COMPRESS_LEVEL
) -> ArchiveInfo:
    """Pack ``src`` with its manifest into the .tar.gz ``dest``; the same folder gives the same bytes."""
    src, dest = Path(src), Path(dest)
    if not src.is_dir():
        raise FileNotFoundError(f"No folder at {src} to pack.")
    if name not in NAMES:
        raise ValueError(f"Unknown archive name {name!r}: the seeder accepts {' or '.join(NAMES)}.")
    doc = manifest(src, name)
    manifest_bytes = json.dumps(doc, indent=1, sort_keys=True).encode()
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(dest)  # an interrupted pack never looks finished
    with (
        open(partial, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="", compresslevel=compresslevel) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        _add(tar, MANIFEST, io.BytesIO(manifest_bytes), len(manifest_bytes))
        for rel, meta in doc["files"].items():
            with open(src / rel, "rb") as fh:
                _add(tar, rel, fh, meta["size"], executable=os.access(src / rel, os.X_OK))
    partial.replace(dest)
    sha256, size = file_sha256(dest)
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


def _add(tar: tarfile.TarFile, name: str, fileobj, size: int, executable: bool = False) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o755 if executable else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, fileobj)
