"""The framework of the emulated PyTorch inference image (torch, Pillow), precompiled as an image is.

On AWS the PyTorch Deep Learning Container image provides torch in ``/opt/conda``, installed by pip,
which writes bytecode: a container's import reads ``.pyc`` files
(https://github.com/aws/deep-learning-containers/blob/master/available_images.md lists the images).
Locally the framework is a folder of the workshop's bundle (``LOCALAWS_SAGEMAKER_FRAMEWORK``, or
``<state>/sagemaker/framework``), mounted read-only, where the container cannot write bytecode: a
folder without it would make every cold start compile torch's Python files (measured here: 4.1 s of
ModelSetupTime instead of 2.2 s). So a folder without bytecode is copied once (hard links where the
file system allows) under ``<state>/sagemaker/framework-cache/<key>`` and compiled there with the
interpreter the containers run (``UNCHECKED_HASH``, valid whatever the files' times); a folder that
has bytecode is used as it is.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

log = logging.getLogger(__name__)

COMPILE = (
    "import compileall, py_compile, sys; compileall.compile_dir(sys.argv[1], quiet=2, workers=1, "
    "invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)"
)
_lock = threading.Lock()


def has_bytecode(folder: Path) -> bool:
    """Whether the folder's torch (or, without torch, the folder itself) holds compiled files."""
    probe = folder / "torch" if (folder / "torch").is_dir() else folder
    return (probe / "__pycache__").is_dir()


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def precompiled(folder: Path, cache_dir: Path) -> Path:
    """``folder`` if it has bytecode, else its compiled copy in ``cache_dir`` (made once)."""
    folder = Path(folder).resolve()
    if has_bytecode(folder):
        return folder
    stat = folder.stat()
    key = hashlib.sha256(f"{folder}:{stat.st_mtime_ns}:{sys.version}".encode()).hexdigest()[:16]
    target = Path(cache_dir) / key
    with _lock:
        if target.is_dir():
            return target
        partial = target.with_name(f".partial-{key}")
        shutil.rmtree(partial, ignore_errors=True)
        log.info("precompiling the framework %s into %s (once)", folder, target)
        shutil.copytree(folder, partial, copy_function=_link_or_copy, symlinks=True)
        python = f"{sys.base_prefix}/bin/python{sys.version_info.major}.{sys.version_info.minor}"
        subprocess.run([python, "-I", "-S", "-c", COMPILE, str(partial)], check=True, capture_output=True)
        partial.rename(target)
    return target
