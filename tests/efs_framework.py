"""Put the real framework bundle on a local EFS folder as the seeder leaves it, for tests that deploy the
inference function without running the seeder: the cached local build (helpers.bundle), hard-linked
where the file system allows, precompiled with the base interpreter (UNCHECKED_HASH, as the seeder
does), and ``framework/current`` switched to it. Inside the sandbox only the standard library is
importable, so without this the inference function fails init with ``No module named 'torch'``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import bundle

COMPILE = (
    "import compileall, py_compile, sys; compileall.compile_dir(sys.argv[1], quiet=2, workers=1, "
    "invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)"
)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system: copy
        shutil.copy2(src, dst)


def install_framework(efs_root: Path) -> Path:
    """``efs_root/framework/current`` -> the real local bundle, precompiled; returns the version folder."""
    real = bundle.build_framework_bundle(bundle.local_target())
    root = Path(efs_root) / "framework"
    version = root / "versions" / real.archive.version
    if not version.exists():
        partial = version.with_name(f".tmp-{version.name}")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(real.directory, partial, copy_function=_link_or_copy)
        python = f"{sys.base_prefix}/bin/python{sys.version_info.major}.{sys.version_info.minor}"
        subprocess.run([python, "-I", "-S", "-c", COMPILE, str(partial)], check=True)
        partial.rename(version)
    current = root / "current"
    if current.is_symlink():
        current.unlink()
    current.symlink_to(f"versions/{version.name}")
    return version
