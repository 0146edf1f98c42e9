"""The real local bundle (torch's CPU build from pip's find-links or the CPU index), built once and cached
under build/bundles/ like the notebooks' own, then pruned, checked and taken apart."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from helpers import bundle, bundle_check

pytestmark = pytest.mark.slow
VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def real():
    return bundle.build_framework_bundle(bundle.local_target())  # about 25 s the first time, then cached


def test_the_local_bundle_is_torchs_cpu_build_and_pillow_imported_from_the_folder_alone(real):
    assert real.torch_version == bundle.LOCAL_TORCH.split("==")[1] and real.torch_build == "cpu"
    assert real.proof.startswith(f"imported alone with {sys.base_prefix}/bin/python{VERSION} -I -S")
    assert real.directory.parent == bundle.CACHE_DIR and real.size < bundle_check.MAX_BUNDLE_BYTES
    assert real.archive.path == bundle.CACHE_DIR / f"{real.key}.tar.gz" and real.archive.path.is_file()
    top = {p.name for p in real.directory.iterdir() if not p.name.endswith(".dist-info")}
    assert top == {"torch", "torchgen", "functorch", "PIL", "pillow.libs", "typing_extensions.py"}


def test_pruning_kept_torch_shm_manager_executable_and_dropped_headers_tests_and_stubs(real):
    folder = real.directory
    assert [p.name for p in (folder / "torch/bin").iterdir()] == ["torch_shm_manager"]
    assert os.access(folder / "torch/bin/torch_shm_manager", os.X_OK)
    assert not (folder / "torch/include").exists() and not (folder / "torch/test").exists()
    assert (
        not (folder / "bin").exists() and not list(folder.rglob("*.pyi")) and not list(folder.rglob("*.pyc"))
    )
    assert not list(folder.rglob("libtorch_cuda*")) and not list(folder.glob("nvidia*"))


def test_removing_torch_bin_from_the_real_bundle_fails_the_check_as_it_fails_import_torch(real, tmp_path):
    copy = tmp_path / "fw"
    shutil.copytree(real.directory, copy, copy_function=os.link)  # hard links: instant, no space
    shutil.rmtree(copy / "torch" / "bin")
    with pytest.raises(bundle_check.CheckFailed, match="lacks torch/bin/torch_shm_manager"):
        bundle_check.check(copy, VERSION, "x86_64")
    with pytest.raises(bundle_check.CheckFailed, match="Unable to find torch_shm_manager"):
        bundle_check.import_alone(copy, f"{sys.base_prefix}/bin/python{VERSION}")


def test_a_second_build_is_the_cached_one(real):
    again = bundle.build_framework_bundle(bundle.local_target())
    assert again.cached and again.archive == real.archive and again.seconds == {}


def test_the_platform_flags_of_the_aws_path_install_and_check_the_real_wheel(tmp_path):
    """The AWS target's pip flags (--platform, --python-version, --implementation, --only-binary) on
    the real torch wheel: the AWS target with this machine's Python, from pip's find-links."""
    aws = bundle.aws_target(VERSION, "x86_64").__dict__
    cross = bundle.BundleTarget(
        **{**aws, "torch": bundle.LOCAL_TORCH, "index_url": None, "extra_index_url": None}
    )
    (tmp_path / "fw").mkdir()
    command, wheel = bundle.install(tmp_path / "fw", cross)
    assert "--platform" in command and command[command.index("--python-version") + 1] == VERSION
    tag = "cp" + VERSION.replace(".", "")
    assert wheel.endswith(f"{tag}-{tag}-manylinux_2_28_x86_64.whl")
    bundle.prune(tmp_path / "fw")
    checked = bundle_check.check(tmp_path / "fw", VERSION, "x86_64")
    assert checked.torch_version == "2.13.0+cpu" and checked.proof.startswith("imported alone")
