"""Archives are deterministic with a truthful manifest; the framework bundle's pip path works offline."""

from __future__ import annotations

import json
import os
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from helpers import bundle


def make_folder(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("A = 1\n")
    (root / "weights.bin").write_bytes(bytes(range(256)) * 10)
    return root


def test_the_same_folder_gives_the_same_archive_bytes(tmp_path):
    src = make_folder(tmp_path / "src")
    first = bundle.pack_folder(src, "model", tmp_path / "one.tar.gz")
    os.utime(src / "weights.bin", (12345, 12345))
    second = bundle.pack_folder(src, "model", tmp_path / "two.tar.gz")
    assert first.sha256 == second.sha256 and first.manifest_sha256 == second.manifest_sha256
    assert first.version == first.manifest_sha256[:16] and first.files == 2 and first.content_bytes == 2566


def test_the_manifest_lists_every_file_with_its_sha256_and_size(tmp_path):
    src = make_folder(tmp_path / "src")
    info = bundle.pack_folder(src, "framework", tmp_path / "f.tar.gz")
    with tarfile.open(info.path) as tar:
        names = tar.getnames()
        doc = json.loads(tar.extractfile("manifest.json").read())
        assert names[0] == "manifest.json" and sorted(names[1:]) == ["pkg/a.py", "weights.bin"]
        assert all(m.mtime == 0 and m.uid == 0 and m.mode == 0o644 for m in tar.getmembers())
    assert doc["name"] == "framework" and doc["format"] == 1
    assert doc["files"]["pkg/a.py"] == {"sha256": bundle._sha256(b"A = 1\n"), "size": 6}


def test_a_folder_with_a_link_cannot_be_packed(tmp_path):
    src = make_folder(tmp_path / "src")
    (src / "link").symlink_to("/etc/passwd")
    with pytest.raises(ValueError, match="link or special file"):
        bundle.pack_folder(src, "model", tmp_path / "x.tar.gz")


@pytest.mark.parametrize(("arch", "machine"), [("x86_64", "x86_64"), ("arm64", "aarch64")])
def test_the_aws_pip_command_targets_lambdas_platform_and_the_cpu_index(arch, machine):
    cmd = bundle.pip_command("/tmp/fw", ["torch==2.14.1", "Pillow"], python_version="3.12", architecture=arch)
    assert cmd == [
        sys.executable, "-m", "pip", "install", "--quiet", "--target", "/tmp/fw",
        "--platform", f"manylinux_2_28_{machine}",  # torch >= 2.6 publishes only manylinux_2_28 wheels
        "--platform", f"manylinux2014_{machine}",
        "--python-version", "3.12", "--only-binary=:all:", "--implementation", "cp",
        "--index-url", "https://download.pytorch.org/whl/cpu",
        "--extra-index-url", "https://pypi.org/simple",
        "torch==2.14.1", "Pillow",
    ]  # fmt: skip


def test_the_python_version_follows_the_function_runtime():
    cmd = bundle.pip_command("/tmp/fw", ["Pillow"], python_version="3.13")
    assert cmd[cmd.index("--python-version") + 1] == "3.13"


def test_the_host_pip_command_installs_for_this_interpreter():
    cmd = bundle.pip_command("/tmp/fw", ["Pillow"], host=True)
    assert "--platform" not in cmd and "--python-version" not in cmd and "--only-binary=:all:" not in cmd
    assert cmd[-1] == "Pillow" and "--target" in cmd


def test_an_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="use x86_64 or arm64"):
        bundle.pip_command("/tmp/fw", ["x"], architecture="sparc")


def test_an_unknown_archive_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="seeder accepts model or framework"):
        bundle.pack_folder(make_folder(tmp_path / "src"), "weights", tmp_path / "x.tar.gz")


OFFLINE = {"index_url": None, "extra_index_url": None}  # no index: only the wheels folder given


def tiny_wheel(folder: Path) -> Path:
    """A pure-Python wheel written by hand: enough for pip to install it offline."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tinypkg-1.0-py3-none-any.whl"
    files = {
        "tinypkg/__init__.py": "VALUE = 42\n",
        "tinypkg/tests/test_x.py": "pass\n",
        "tinypkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
        "tinypkg-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + "tinypkg-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in {**files, "tinypkg-1.0.dist-info/RECORD": record}.items():
            archive.writestr(name, text)
    return path


def test_the_real_pip_target_path_installs_and_prunes_a_small_package_offline(tmp_path):
    wheels = tiny_wheel(tmp_path / "wheels").parent
    result = bundle.build_framework_bundle(
        tmp_path / "fw",
        backend="aws",
        packages=["tinypkg"],
        pip_args={**OFFLINE, "extra_args": ["--no-index", "--find-links", str(wheels)]},
    )
    assert (tmp_path / "fw" / "tinypkg" / "__init__.py").read_text() == "VALUE = 42\n"
    assert not (tmp_path / "fw" / "tinypkg" / "tests").exists()  # pruned
    assert result.packages == ["tinypkg"] and result.size > 0 and "--target" in result.command


def test_a_failing_pip_names_the_platform_it_built_for(tmp_path):
    with pytest.raises(RuntimeError, match="versions exist for Lambda arm64 / Python 3.13"):
        bundle.build_framework_bundle(
            tmp_path / "fw",
            backend="aws",
            architecture="arm64",
            python_version="3.13",
            packages=["no-such-package-anywhere"],
            pip_args={**OFFLINE, "extra_args": ["--no-index"]},
        )


def test_the_local_bundle_is_empty_when_the_host_has_torch_and_pillow(tmp_path):
    result = bundle.build_framework_bundle(tmp_path / "fw", backend="local")
    assert bundle.missing_on_host() == [] and result.packages == [] and result.size == 0
    assert "already has torch and Pillow" in result.note
    assert list((tmp_path / "fw").iterdir()) == []


def test_the_local_bundle_carries_what_the_host_lacks_installed_for_the_host(tmp_path, monkeypatch):
    monkeypatch.setitem(bundle.REQUIRED_MODULES, "tinypkg", "tinypkg")  # a module this host does not have
    wheels = tiny_wheel(tmp_path / "wheels").parent
    result = bundle.build_framework_bundle(
        tmp_path / "fw",
        backend="local",
        pip_args={**OFFLINE, "extra_args": ["--no-index", "--find-links", str(wheels)]},
    )
    assert result.packages == ["tinypkg"] and "--platform" not in result.command
    assert (tmp_path / "fw" / "tinypkg" / "__init__.py").exists() and "which lacks them" in result.note


def test_an_unknown_backend_is_refused(tmp_path):
    with pytest.raises(ValueError, match="use 'aws' or 'local'"):
        bundle.build_framework_bundle(tmp_path / "fw", backend="gcp")
