"""Archives are deterministic with a truthful manifest; one bundle path builds, checks and caches."""

from __future__ import annotations

import json
import os
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from helpers import archives, bundle, bundle_check


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


def test_archives_are_gzip_level_1_unless_asked(tmp_path):
    src = make_folder(tmp_path / "src")
    (src / "text.txt").write_text("the same words again " * 5000)
    fast = bundle.pack_folder(src, "model", tmp_path / "fast.tar.gz")
    small = bundle.pack_folder(src, "model", tmp_path / "small.tar.gz", compresslevel=9)
    assert archives.COMPRESS_LEVEL == 1 and fast.sha256 != small.sha256
    assert fast.manifest_sha256 == small.manifest_sha256  # the same content, only packed differently
    assert fast.path.read_bytes()[8] == 4  # gzip's XFL byte: 4 = fastest compression


def test_the_manifest_lists_every_file_and_executables_keep_their_bit(tmp_path):
    src = make_folder(tmp_path / "src")
    (src / "tool").write_bytes(b"\x7fELF")
    (src / "tool").chmod(0o755)
    info = bundle.pack_folder(src, "framework", tmp_path / "f.tar.gz")
    with tarfile.open(info.path) as tar:
        names = tar.getnames()
        doc = json.loads(tar.extractfile("manifest.json").read())
        modes = {m.name: m.mode for m in tar.getmembers()}
        assert names[0] == "manifest.json" and sorted(names[1:]) == ["pkg/a.py", "tool", "weights.bin"]
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())
    assert modes == {"manifest.json": 0o644, "pkg/a.py": 0o644, "tool": 0o755, "weights.bin": 0o644}
    assert doc["name"] == "framework" and doc["format"] == 1
    assert doc["files"]["pkg/a.py"] == {"sha256": archives._sha256(b"A = 1\n"), "size": 6}


def test_a_folder_with_a_link_cannot_be_packed(tmp_path):
    src = make_folder(tmp_path / "src")
    (src / "link").symlink_to("/etc/passwd")
    with pytest.raises(ValueError, match="link or special file"):
        bundle.pack_folder(src, "model", tmp_path / "x.tar.gz")


def test_an_unknown_archive_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="seeder accepts model or framework"):
        bundle.pack_folder(make_folder(tmp_path / "src"), "weights", tmp_path / "x.tar.gz")


@pytest.mark.parametrize(("arch", "machine"), [("x86_64", "x86_64"), ("arm64", "aarch64")])
def test_the_aws_pip_command_targets_lambdas_platform_and_the_cpu_index(arch, machine):
    cmd = bundle.pip_command("/tmp/fw", bundle.aws_target("3.12", arch))
    assert cmd == [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--no-deps",
        "--only-binary=:all:", "--target", "/tmp/fw",
        "--platform", f"manylinux_2_28_{machine}",  # torch >= 2.6 publishes only manylinux_2_28 wheels
        "--platform", f"manylinux2014_{machine}",
        "--python-version", "3.12", "--implementation", "cp",
        "--index-url", "https://download.pytorch.org/whl/cpu",
        "--extra-index-url", "https://pypi.org/simple",
        "torch==2.14.1+cpu", "Pillow==13.0.0", "typing_extensions==4.16.0",
    ]  # fmt: skip


def test_the_local_command_is_the_same_function_for_this_interpreter_and_the_local_cpu_pin(monkeypatch):
    monkeypatch.setattr(bundle, "reachable", lambda url, timeout=3.0: False)
    local = bundle.local_target()
    assert local.python_version == f"{sys.version_info.major}.{sys.version_info.minor}"
    cmd = bundle.pip_command("/tmp/fw", local)
    aws = bundle.pip_command("/tmp/fw", bundle.aws_target())
    platform_args = {"--platform", "--python-version", "--implementation", "--index-url", "--extra-index-url"}
    stripped = [a for i, a in enumerate(aws) if a not in platform_args and aws[i - 1] not in platform_args]
    assert cmd == [*stripped[:-3], "torch==2.13.0+cpu", *stripped[-2:]]  # only the torch pin differs
    assert local.source == "pip's find-links or cache"


def test_the_local_target_takes_the_cpu_index_when_it_is_reachable(monkeypatch):
    monkeypatch.setattr(bundle, "reachable", lambda url, timeout=3.0: url == bundle.TORCH_CPU_INDEX)
    cmd = bundle.pip_command("/tmp/fw", bundle.target_for("local"))
    assert cmd[cmd.index("--index-url") + 1] == bundle.TORCH_CPU_INDEX and "--platform" not in cmd


def test_the_python_version_follows_the_function_runtime():
    cmd = bundle.pip_command("/tmp/fw", bundle.target_for("aws", "3.13"))
    assert cmd[cmd.index("--python-version") + 1] == "3.13"


def test_an_unknown_architecture_or_backend_is_refused():
    with pytest.raises(ValueError, match="use x86_64 or arm64"):
        bundle.aws_target("3.12", "sparc")
    with pytest.raises(ValueError, match="use 'aws' or 'local'"):
        bundle.target_for("gcp")


def test_the_cache_key_names_the_content_not_the_index(monkeypatch):
    aws = bundle.aws_target()
    assert bundle.cache_key(aws) == bundle.cache_key(
        bundle.BundleTarget(**{**aws.__dict__, "index_url": None})
    )
    assert bundle.cache_key(aws) != bundle.cache_key(bundle.aws_target("3.13"))
    assert bundle.cache_key(aws) != bundle.cache_key(bundle.aws_target("3.12", "arm64"))
    pillow = bundle.BundleTarget(**{**aws.__dict__, "companions": ("Pillow==12.0.0",)})
    assert bundle.cache_key(aws) != bundle.cache_key(pillow)


def tiny_wheel(folder: Path, name: str = "tinypkg") -> Path:
    """A pure-Python wheel written by hand: enough for pip to install it offline."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-1.0-py3-none-any.whl"
    files = {
        f"{name}/__init__.py": "VALUE = 42\n",
        f"{name}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{name}-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{n},,\n" for n in files) + f"{name}-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for n, text in {**files, f"{name}-1.0.dist-info/RECORD": record}.items():
            archive.writestr(n, text)
    return path


def offline_target(torch: str = "tinypkg==1.0") -> bundle.BundleTarget:
    return bundle.BundleTarget("local", "3.11", torch, companions=())


@pytest.fixture
def isolated_pip(monkeypatch):
    """pip without this machine's find-links, indexes and constraints: only what a test passes."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)


def test_the_real_pip_target_path_installs_offline_and_says_where_it_took_the_wheel_from(
    tmp_path, isolated_pip
):
    wheel = tiny_wheel(tmp_path / "wheels")
    (tmp_path / "fw").mkdir()
    cmd, source = bundle.install(
        tmp_path / "fw", offline_target(), ["--no-index", "--find-links", str(wheel.parent)]
    )
    assert (tmp_path / "fw" / "tinypkg" / "__init__.py").read_text() == "VALUE = 42\n"
    assert source == wheel.as_uri() and "--no-deps" in cmd and not (tmp_path / "fw.pip-report.json").exists()


def test_without_a_cpu_build_of_torch_the_error_names_the_fix(tmp_path, isolated_pip):
    (tmp_path / "fw").mkdir()
    with pytest.raises(bundle.BundleError, match=r"No CPU build of torch==2.13.0\+cpu .* PIP_FIND_LINKS"):
        bundle.install(tmp_path / "fw", offline_target("torch==2.13.0+cpu"), ["--no-index"])


def test_a_failing_pip_names_the_platform_it_built_for(tmp_path, isolated_pip):
    wheel = tiny_wheel(tmp_path / "wheels")
    (tmp_path / "fw").mkdir()
    aws = bundle.aws_target("3.13", "arm64").__dict__
    target = bundle.BundleTarget(
        **{
            **aws,
            "torch": "tinypkg",
            "index_url": None,
            "extra_index_url": None,
            "companions": ("nosuchpkg",),
        }
    )
    with pytest.raises(
        bundle.BundleError, match="pip could not install tinypkg nosuchpkg for Lambda aarch64 / Python 3.13"
    ):
        bundle.install(tmp_path / "fw", target, ["--no-index", "--find-links", str(wheel.parent)])


def fake_torch_tree(root: Path, version: str = "2.13.0+cpu") -> Path:
    """The files of a torch + Pillow bundle, with Python stand-ins that import without any library."""
    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}-x86_64-linux-gnu"
    files = {
        "torch/__init__.py": f"__version__ = {version!r}\nfrom torch import version\n",
        "torch/version.py": "cuda = None\n",
        f"torch/_C.{tag}.so": "",
        "torch/bin/torch_shm_manager": "",
        "torch/bin/test_api": "x" * 1000,
        "torch/lib/libtorch_cpu.so": "",
        "torch/lib/libtorch_python.so": "",
        "torch/lib/libc10.so": "",
        "torch/include/ATen/ATen.h": "",
        "torch/testing/__init__.py": "",
        "torch/fx/tests/test_a.py": "",
        "torch/functional.pyi": "",
        "torch/__pycache__/x.cpython-311.pyc": "",
        "torchgen/__init__.py": "",
        "typing_extensions.py": "",
        "PIL/__init__.py": "__version__ = '13.0.0'\n",
        "PIL/Image.py": "",
        f"PIL/_imaging.{tag}.so": "",
        f"torch-{version}.dist-info/METADATA": "",
        "bin/torchrun": "#!/usr/bin/python\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_prune_keeps_what_torch_imports_and_drops_tests_headers_stubs_caches_and_scripts(tmp_path):
    folder = fake_torch_tree(tmp_path / "fw")
    assert bundle.prune(folder) > 1000
    left = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert "torch/bin/torch_shm_manager" in left and "torch/testing/__init__.py" in left
    for gone in (
        "torch/bin/test_api",
        "bin/torchrun",
        "torch/include/ATen/ATen.h",
        "torch/fx/tests/test_a.py",
    ):
        assert gone not in left
    assert not [p for p in left if p.endswith((".pyi", ".pyc"))]


def test_the_check_imports_the_folder_alone_with_the_base_interpreter(tmp_path):
    folder = fake_torch_tree(tmp_path / "fw")
    bundle.prune(folder)
    found = bundle_check.check(folder, f"{sys.version_info.major}.{sys.version_info.minor}", "x86_64")
    assert found.torch_version == "2.13.0+cpu" and found.build == "cpu" and "imported alone" in found.proof
    assert not list(folder.rglob("*.pyc"))  # the check writes no bytecode into what gets packed


def test_removing_torch_bin_fails_the_check(tmp_path):
    folder = fake_torch_tree(tmp_path / "fw")
    (folder / "torch/bin/torch_shm_manager").unlink()
    with pytest.raises(bundle_check.CheckFailed, match="lacks torch/bin/torch_shm_manager"):
        bundle_check.check(folder, "3.11", "x86_64")


def test_for_another_python_the_check_requires_its_compiled_extensions(tmp_path):
    folder = fake_torch_tree(tmp_path / "fw")
    with pytest.raises(bundle_check.CheckFailed, match=r"lacks torch/_C.cpython-399-\*.so"):
        bundle_check.check(folder, "3.99", "x86_64")


def test_the_check_sees_no_site_packages(tmp_path):
    folder = fake_torch_tree(tmp_path / "fw")
    (folder / "PIL/Image.py").write_text("import pytest\n")  # importable in the venv, not from the bundle
    with pytest.raises(bundle_check.CheckFailed, match="No module named 'pytest'"):
        bundle_check.check(folder, f"{sys.version_info.major}.{sys.version_info.minor}", "x86_64")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("nvidia_cublas-13.1.1.3.dist-info/METADATA", "holds a CUDA build"),
        ("torch/lib/libtorch_cuda.so", "holds a CUDA build"),
    ],
)
def test_the_check_refuses_a_cuda_build(tmp_path, extra, message):
    folder = fake_torch_tree(tmp_path / "fw")
    (folder / extra).parent.mkdir(parents=True, exist_ok=True)
    (folder / extra).write_text("")
    with pytest.raises(bundle_check.CheckFailed, match=message):
        bundle_check.check(folder, "3.11", "x86_64")


def test_the_check_refuses_torch_without_plus_cpu_and_a_bundle_over_the_cap(tmp_path, monkeypatch):
    with pytest.raises(bundle_check.CheckFailed, match=r"torch 2.14.1, not a \+cpu build"):
        bundle_check.check(fake_torch_tree(tmp_path / "cuda", "2.14.1"), "3.11", "x86_64")
    unknown = fake_torch_tree(tmp_path / "unknown")
    (unknown / "torch-2.13.0+cpu.dist-info" / "METADATA").unlink()
    (unknown / "torch-2.13.0+cpu.dist-info").rmdir()
    with pytest.raises(bundle_check.CheckFailed, match=r"no torch-\*.dist-info"):
        bundle_check.check(unknown, "3.11", "x86_64")
    monkeypatch.setattr(bundle_check, "MAX_BUNDLE_BYTES", 100)
    with pytest.raises(bundle_check.CheckFailed, match="GB, over the"):
        bundle_check.check(fake_torch_tree(tmp_path / "big"), "3.11", "x86_64")


def test_a_second_build_neither_reinstalls_nor_repacks_and_older_builds_are_removed(tmp_path, monkeypatch):
    calls = {"install": 0, "pack": 0}

    def fake_install(folder, target, extra_args=None):
        calls["install"] += 1
        fake_torch_tree(folder)
        return ["pip", "install"], "file:///wheels/torch.whl"

    real_pack = bundle.pack_folder

    def counting_pack(*args, **kwargs):
        calls["pack"] += 1
        return real_pack(*args, **kwargs)

    monkeypatch.setattr(bundle, "install", fake_install)
    monkeypatch.setattr(bundle, "pack_folder", counting_pack)
    target = bundle.BundleTarget(
        "local", f"{sys.version_info.major}.{sys.version_info.minor}", "torch==2.13.0+cpu"
    )
    for stale in ("local-0123456789abcdef", "local-0123456789abcdef.tar.gz", "aws-0123456789abcdef.tar.gz"):
        (tmp_path / stale).mkdir() if "." not in stale else (tmp_path / stale).write_bytes(b"old")
    first = bundle.build_framework_bundle(target, tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*-0123456789abcdef*")) == ["aws-0123456789abcdef.tar.gz"]
    second = bundle.build_framework_bundle(target, tmp_path)
    assert calls == {"install": 1, "pack": 1} and not first.cached and second.cached
    assert second.archive == first.archive and second.directory == tmp_path / bundle.cache_key(target)
    assert "from file:///wheels/torch.whl" in second.note and "(cached build)" in second.note
    first.archive.path.unlink()  # only the archive is gone: repack, do not reinstall
    (first.directory / "torch" / "__pycache__").mkdir()  # a Python that imported the cached folder since
    (first.directory / "torch" / "__pycache__" / "version.cpython-311.pyc").write_bytes(b"bytecode")
    third = bundle.build_framework_bundle(target, tmp_path)
    assert calls == {"install": 1, "pack": 2} and third.archive.sha256 == first.archive.sha256


def test_an_unreachable_index_is_named_before_pip_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(bundle, "reachable", lambda url, timeout=3.0: False)
    monkeypatch.setattr(bundle, "install", lambda *a, **k: pytest.fail("pip must not run"))
    with pytest.raises(
        bundle.BundleError, match=r"download.pytorch.org/whl/cpu is not reachable .* local backend"
    ):
        bundle.build_framework_bundle(bundle.aws_target(), tmp_path)


def test_a_build_that_fails_its_check_leaves_no_folder_and_no_record(tmp_path, monkeypatch):
    def broken_install(folder, target, extra_args=None):
        fake_torch_tree(folder)
        (folder / "torch/lib/libtorch_cpu.so").unlink()
        return ["pip"], ""

    monkeypatch.setattr(bundle, "install", broken_install)
    target = bundle.BundleTarget("local", "3.11", "torch==2.13.0+cpu")
    with pytest.raises(bundle_check.CheckFailed, match="lacks torch/lib/libtorch_cpu.so"):
        bundle.build_framework_bundle(target, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{bundle.cache_key(target)}.lock"]
