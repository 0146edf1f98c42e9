"""The SageMaker model archive: ``model.tar.gz`` for the PyTorch inference container.

Layout (what SageMaker extracts to ``/opt/ml/model``,
https://sagemaker.readthedocs.io/en/stable/frameworks/pytorch/using_pytorch.html#model-directory-structure):

    efficientnet_lite0.pt  imagenet_classes.json  model.json   the export of helpers.model
    code/inference.py                                   functions/sagemaker/code/inference.py
    code/efficientnet.py                                functions/inference/efficientnet.py (copied, never imported)

The archive is deterministic (sorted members, mtime 0, owner 0, gzip without a timestamp), so the same
export and code give the same bytes and the same ``model-<sha256[:16]>.tar.gz`` name: a second build is
a cache hit and the S3 key names its content. The weights are a state_dict for the torch-only
EfficientNet-Lite0 (no TorchScript): ``code/inference.py`` loads them in ``model_fn``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import tarfile
from dataclasses import dataclass
from pathlib import Path

from helpers.archives import partial_path
from helpers.config import REPO_ROOT
from helpers.model import CARD_FILE, CLASSES_FILE, WEIGHTS_FILE

log = logging.getLogger(__name__)

CODE_DIR = REPO_ROOT / "functions" / "sagemaker" / "code"
NETWORK = REPO_ROOT / "functions" / "inference" / "efficientnet.py"
CACHE_DIR = REPO_ROOT / "build" / "sagemaker"
MODEL_FILES = (WEIGHTS_FILE, CLASSES_FILE, CARD_FILE)


@dataclass(frozen=True)
class ModelArchive:
    """A built archive: where it is, its sha256 and size, and the members it holds."""

    path: Path
    sha256: str
    size: int
    members: tuple[str, ...]

    @property
    def key(self) -> str:
        """The S3 key it is uploaded under (content-addressed)."""
        return f"sagemaker/{self.path.name}"


def _members(export_dir: Path) -> dict[str, bytes]:
    export_dir = Path(export_dir)
    missing = [name for name in MODEL_FILES if not (export_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{export_dir} has no {', '.join(missing)}: export the model first (helpers.model.export, as "
            "02_seed_model.ipynb does)."
        )
    members = {name: (export_dir / name).read_bytes() for name in MODEL_FILES}
    members["code/inference.py"] = (CODE_DIR / "inference.py").read_bytes()
    members["code/efficientnet.py"] = NETWORK.read_bytes()
    return members


def pack(members: dict[str, bytes]) -> bytes:
    """A deterministic tar.gz of ``{name: bytes}`` (folders added, sorted, mtime 0, owner root)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        folders = sorted({str(Path(name).parent) for name in members} - {"."})
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            archive.addfile(info)
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(members[name]), 0o644, 0
            archive.addfile(info, io.BytesIO(members[name]))
    return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)


def build_model_archive(export_dir: str | Path, cache_dir: str | Path = CACHE_DIR) -> ModelArchive:
    """``model-<sha>.tar.gz`` in ``cache_dir`` from the export in ``export_dir`` (reused when it exists)."""
    members = _members(Path(export_dir))
    data = pack(members)
    digest = hashlib.sha256(data).hexdigest()
    path = Path(cache_dir) / f"model-{digest[:16]}.tar.gz"
    if not path.is_file() or path.stat().st_size != len(data):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = partial_path(path)
        partial.write_bytes(data)
        partial.replace(path)
        log.info("built %s (%.1f MB)", path, len(data) / 1e6)
    return ModelArchive(path=path, sha256=digest, size=len(data), members=tuple(sorted(members)))


def upload_model_archive(s3_client, bucket: str, archive: ModelArchive) -> str:
    """Upload the archive under its content-addressed key (skipped when it is there); its S3 URL."""
    try:
        s3_client.head_object(Bucket=bucket, Key=archive.key)
    except s3_client.exceptions.ClientError:
        s3_client.upload_file(str(archive.path), bucket, archive.key)
    return f"s3://{bucket}/{archive.key}"
