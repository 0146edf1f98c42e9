"""Task roots: each function zip extracted once under ``<state>/lambda/code/<sha256>``, shared by its environments."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from localaws.lambda_engine.keyed_locks import KeyedLocks

log = logging.getLogger(__name__)


class CodeCache:
    """Extracts a zip the first time its hash is seen; later calls return the same folder."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._locks = KeyedLocks()  # one per hash: extracting one zip never holds up another's

    def task_root(self, code_sha256: str, code_bytes: bytes) -> Path:
        target = self.root / code_sha256
        if target.is_dir():
            return target
        with self._locks.hold(code_sha256):
            if target.is_dir():
                return target
            self.root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=self.root))
            staging.chmod(0o755)  # mkdtemp makes it private; the function's user must read its code
            try:
                with zipfile.ZipFile(io.BytesIO(code_bytes)) as archive:
                    archive.extractall(staging)
                os.replace(staging, target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            log.info("extracted code %s into %s", code_sha256[:12], target)
        return target


class LayerCache:
    """``/opt`` for a list of layers: each layer's zip extracted over the previous ones, in order, as Lambda
    merges them (https://docs.aws.amazon.com/lambda/latest/dg/adding-layers.html), built once per list."""

    def __init__(self, root: Path, code: CodeCache):
        self.root = Path(root)
        self.code = code
        self._locks = KeyedLocks()

    def opt_dir(self, layers: list[tuple[str, bytes]]) -> Path | None:
        """``layers`` = [(sha256 hex, zip bytes), ...]; None when the function has no layers."""
        if not layers:
            return None
        key = hashlib.sha256("/".join(sha for sha, _ in layers).encode()).hexdigest()[:32]
        target = self.root / key
        with self._locks.hold(key):
            if target.is_dir():
                return target
            self.root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".merge-", dir=self.root))
            staging.chmod(0o755)
            try:
                for sha, data in layers:
                    shutil.copytree(self.code.task_root(sha, data), staging, dirs_exist_ok=True)
                os.replace(staging, target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return target
