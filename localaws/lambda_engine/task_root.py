"""Task roots: each function zip extracted once under ``<state>/lambda/code/<sha256>``, shared by its environments."""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)


class CodeCache:
    """Extracts a zip the first time its hash is seen; later calls return the same folder."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock = threading.Lock()

    def task_root(self, code_sha256: str, code_bytes: bytes) -> Path:
        target = self.root / code_sha256
        if target.is_dir():
            return target
        with self._lock:
            if target.is_dir():
                return target
            self.root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=self.root))
            try:
                with zipfile.ZipFile(io.BytesIO(code_bytes)) as archive:
                    archive.extractall(staging)
                os.replace(staging, target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            log.info("extracted code %s into %s", code_sha256[:12], target)
        return target
