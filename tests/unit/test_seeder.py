"""The seeder function, in-process: S3 from moto's in-process mock, EFS a temporary folder."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pytest
from cfnlint.decode import decode
from moto import mock_aws

from helpers.bundle import pack_folder

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "artifacts"


@pytest.fixture
def seeder(tmp_path, monkeypatch):
    monkeypatch.setenv("EFS_MOUNT", str(tmp_path / "efs"))
    for key, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    (tmp_path / "efs").mkdir()
    monkeypatch.syspath_prepend(str(ROOT / "functions/seeder"))  # its page_cache module
    spec = importlib.util.spec_from_file_location("seeder_app", ROOT / "functions/seeder/app.py")
    module = importlib.util.module_from_spec(spec)
    with mock_aws():
        spec.loader.exec_module(module)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield module


def upload(path: Path, key: str, manifest_sha256: str | None = None) -> str:
    extra = {"Metadata": {"manifest-sha256": manifest_sha256}} if manifest_sha256 else {}
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes(), **extra)
    return key


def model_archive(tmp_path: Path, weights: bytes = b"weights-v1") -> tuple[Path, str]:
    src = tmp_path / f"src-{hashlib.sha256(weights).hexdigest()[:6]}"
    (src / "sub").mkdir(parents=True, exist_ok=True)
    (src / "efficientnet_lite0.pt").write_bytes(weights)
    (src / "sub" / "classes.json").write_text('["a", "b"]')
    info = pack_folder(src, "model", tmp_path / f"{src.name}.tar.gz")
    return info.path, info.manifest_sha256


def seed(seeder, key: str) -> dict:
    return seeder.handler({"action": "seed", "name": "model", "bucket": BUCKET, "key": key}, None)


def current(seeder) -> Path:
    return (seeder.EFS_MOUNT / "model" / "current").resolve()


def test_seed_unpacks_verifies_and_points_current_at_the_new_version(seeder, tmp_path):
    path, manifest = model_archive(tmp_path)
    result = seed(seeder, upload(path, "model.tar.gz", manifest))
    assert result["status"] == "seeded" and result["files"] == 2 and result["previous"] is None
    assert result["version"] == manifest[:16]
    assert (current(seeder) / "efficientnet_lite0.pt").read_bytes() == b"weights-v1"
    assert os.readlink(seeder.EFS_MOUNT / "model" / "current") == f"versions/{manifest[:16]}"  # relative


def test_seeding_the_same_archive_again_is_a_no_op(seeder, tmp_path):
    path, manifest = model_archive(tmp_path)
    key = upload(path, "model.tar.gz", manifest)
    first = seed(seeder, key)
    before = os.stat(current(seeder) / "efficientnet_lite0.pt").st_mtime_ns
    again = seed(seeder, key)
    assert again == {
        "status": "unchanged",
        "name": "model",
        "version": first["version"],
        "previous": first["version"],
    }
    assert os.stat(current(seeder) / "efficientnet_lite0.pt").st_mtime_ns == before


def test_an_unchanged_seed_does_not_download_the_archive(seeder, tmp_path):
    path, manifest = model_archive(tmp_path)
    seed(seeder, upload(path, "model.tar.gz", manifest))
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not an archive: reading it would fail")
    upload(garbage, "model.tar.gz", manifest)  # same metadata, unreadable body
    assert seed(seeder, "model.tar.gz")["status"] == "unchanged"


def test_without_metadata_the_same_content_is_still_unchanged(seeder, tmp_path):
    path, _ = model_archive(tmp_path)
    key = upload(path, "model.tar.gz")
    seed(seeder, key)
    assert seed(seeder, key)["status"] == "unchanged"


def test_new_content_gets_a_new_version_and_current_switches(seeder, tmp_path):
    v1, m1 = model_archive(tmp_path, b"one")
    v2, m2 = model_archive(tmp_path, b"two")
    seed(seeder, upload(v1, "v1.tar.gz", m1))
    result = seed(seeder, upload(v2, "v2.tar.gz", m2))
    assert result["previous"] == m1[:16] and result["version"] == m2[:16]
    assert (current(seeder) / "efficientnet_lite0.pt").read_bytes() == b"two"


def assert_previous_seed_intact(seeder) -> None:
    assert (current(seeder) / "efficientnet_lite0.pt").read_bytes() == b"good"
    assert not list((seeder.EFS_MOUNT / "model" / "versions").glob(".tmp-*"))


@pytest.fixture
def seeded(seeder, tmp_path):
    path, manifest = model_archive(tmp_path, b"good")
    seed(seeder, upload(path, "good.tar.gz", manifest))
    return seeder


def test_a_corrupted_archive_fails_clearly_and_keeps_the_previous_seed(seeded, tmp_path):
    path, _ = model_archive(tmp_path, b"bad")
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(seeded.SeedError, match=r"broken.tar.gz is not a readable .tar.gz.*upload it again"):
        seed(seeded, upload(broken, "broken.tar.gz"))
    assert_previous_seed_intact(seeded)


def tar_with(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_a_checksum_mismatch_fails_clearly_and_keeps_the_previous_seed(seeded, tmp_path):
    manifest = {
        "format": 1,
        "name": "model",
        "files": {"efficientnet_lite0.pt": {"sha256": "0" * 64, "size": 3}},
    }
    archive = tmp_path / "mismatch.tar.gz"
    archive.write_bytes(
        tar_with(
            [
                file_member("manifest.json", json.dumps(manifest).encode()),
                file_member("efficientnet_lite0.pt", b"bad"),
            ]
        )
    )
    with pytest.raises(seeded.SeedError, match="efficientnet_lite0.pt does not match its manifest"):
        seed(seeded, upload(archive, "mismatch.tar.gz"))
    assert_previous_seed_intact(seeded)


def link(name: str, target: str, hard: bool = False) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info, None


def device(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info, None


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (file_member("../../escape.txt", b"x"), "escapes its folder"),
        (file_member("/etc/evil", b"x"), "escapes its folder"),
        (file_member("sub/../../up.txt", b"x"), "escapes its folder"),
        (link("evil-link", "/etc/passwd"), "has a link"),
        (link("hard", "../../outside", hard=True), "has a link"),
        (device("null"), "has a special file"),
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "symlink-out", "hardlink-out", "device"],
)
def test_a_member_escaping_the_target_is_refused_and_the_previous_seed_kept(
    seeded, tmp_path, member, message
):
    manifest = {"format": 1, "name": "model", "files": {}}
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(tar_with([file_member("manifest.json", json.dumps(manifest).encode()), member]))
    with pytest.raises(seeded.SeedError, match=message):
        seed(seeded, upload(archive, "evil.tar.gz"))
    assert_previous_seed_intact(seeded)
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path.parent / "escape.txt").exists()


def test_an_archive_with_files_its_manifest_does_not_list_is_refused(seeded, tmp_path):
    manifest = {"format": 1, "name": "model", "files": {}}
    archive = tmp_path / "extra.tar.gz"
    archive.write_bytes(
        tar_with([file_member("manifest.json", json.dumps(manifest).encode()), file_member("x.py", b"1")])
    )
    with pytest.raises(seeded.SeedError, match="does not list"):
        seed(seeded, upload(archive, "extra.tar.gz"))
    assert_previous_seed_intact(seeded)


def manifest_member(doc: dict) -> tuple[tarfile.TarInfo, bytes]:
    return file_member("manifest.json", json.dumps(doc).encode())


def test_an_archive_of_the_other_name_is_refused(seeded, tmp_path):
    doc = {"format": 1, "name": "framework", "files": {}}
    archive = tmp_path / "framework.tar.gz"
    archive.write_bytes(tar_with([manifest_member(doc)]))
    with pytest.raises(seeded.SeedError, match="holds a 'framework' archive, not 'model'"):
        seed(seeded, upload(archive, "framework.tar.gz"))
    assert_previous_seed_intact(seeded)


@pytest.mark.parametrize(
    "manifest",
    [b"{not json", b'{"format": 2, "name": "model", "files": {}}', b'{"format": 1, "name": "model"}'],
    ids=["not-json", "format-2", "no-files"],
)
def test_an_unreadable_manifest_is_refused(seeded, tmp_path, manifest):
    archive = tmp_path / "bad-manifest.tar.gz"
    archive.write_bytes(tar_with([file_member("manifest.json", manifest)]))
    with pytest.raises(seeded.SeedError, match="is not a format-1 manifest"):
        seed(seeded, upload(archive, "bad-manifest.tar.gz"))
    assert_previous_seed_intact(seeded)


def test_members_written_as_dot_slash_paths_are_accepted(seeder):
    doc = {
        "format": 1,
        "name": "model",
        "files": {"w.pt": {"sha256": hashlib.sha256(b"w").hexdigest(), "size": 1}},
    }
    dot = tarfile.TarInfo(".")
    dot.type = tarfile.DIRTYPE
    archive = seeder.EFS_MOUNT.parent / "dot.tar.gz"
    archive.write_bytes(
        tar_with(
            [
                (dot, None),
                file_member("./manifest.json", json.dumps(doc).encode()),
                file_member("./w.pt", b"w"),
            ]
        )
    )
    assert seed(seeder, upload(archive, "dot.tar.gz"))["status"] == "seeded"
    assert (current(seeder) / "w.pt").read_bytes() == b"w"


def test_a_missing_archive_says_to_upload_it_first(seeder):
    with pytest.raises(
        seeder.SeedError, match=r"Cannot read s3://artifacts/nothing-here.*upload the archive"
    ):
        seed(seeder, "nothing-here.tar.gz")
    assert not (seeder.EFS_MOUNT / "model" / "current").exists()


def test_a_403_from_s3_is_read_as_a_missing_archive_for_a_role_without_list_bucket(seeder, monkeypatch):
    """On AWS the seeder's role has s3:GetObject only, so a missing key answers 403, not 404."""
    from botocore.stub import Stubber

    client = boto3.client("s3")
    stub = Stubber(client)
    stub.add_client_error("head_object", "403", "Forbidden", http_status_code=403)
    stub.activate()
    monkeypatch.setattr(seeder.boto3, "client", lambda service, **kw: client)
    with pytest.raises(
        seeder.SeedError, match=r"not uploaded yet.*s3:ListBucket.*02.s upload step"
    ) as failed:
        seed(seeder, "not-yet.tar.gz")
    assert str(failed.value).startswith("Cannot read s3://artifacts/not-yet.tar.gz (403 Forbidden)")
    assert not (seeder.EFS_MOUNT / "model" / "current").exists()


def test_inspect_reports_what_was_seeded(seeder, tmp_path):
    path, manifest = model_archive(tmp_path)
    seed(seeder, upload(path, "model.tar.gz", manifest))
    report = seeder.handler({"action": "inspect"}, None)
    model = report["model"]
    assert model["current"] == manifest[:16] and model["versions"] == [manifest[:16]]
    assert model["files"] == {
        "efficientnet_lite0.pt": len(b"weights-v1"),
        "sub/classes.json": len('["a", "b"]'),
    }
    assert set(model["manifest"]["files"]) == set(model["files"])
    assert report["framework"] == {"current": None, "versions": []}
    assert report["free_bytes"] > 0


def archive_version(tmp_path: Path, weights: bytes) -> str:
    return model_archive(tmp_path, weights)[1][:16]


def test_clean_keeps_the_newest_other_versions_when_asked(seeder, tmp_path):
    for index, weights in enumerate((b"a", b"b", b"c")):
        path, manifest = model_archive(tmp_path, weights)
        seed(seeder, upload(path, f"{index}.tar.gz", manifest))
        os.utime(seeder.EFS_MOUNT / "model" / "versions" / manifest[:16], (index, index))
    removed = seeder.handler({"action": "clean", "keep": 2}, None)["removed"]
    assert removed == [f"model/versions/{archive_version(tmp_path, b'a')}"]


def test_clean_removes_old_versions_and_leftovers_but_never_current(seeder, tmp_path):
    for index, weights in enumerate((b"a", b"b", b"c")):
        path, manifest = model_archive(tmp_path, weights)
        seed(seeder, upload(path, f"{index}.tar.gz", manifest))
    (seeder.EFS_MOUNT / "model" / "versions" / ".tmp-interrupted").mkdir()
    (seeder.EFS_MOUNT / "model" / ".current-interrupted").symlink_to("versions/gone")
    removed = seeder.handler({"action": "clean", "keep": 1}, None)["removed"]
    assert sorted(removed) == sorted(
        ["model/versions/.tmp-interrupted", "model/.current-interrupted"]
        + [f"model/versions/{archive_version(tmp_path, w)}" for w in (b"a", b"b")]
    )
    left = [p.name for p in (seeder.EFS_MOUNT / "model" / "versions").iterdir()]
    assert left == [manifest[:16]] and (current(seeder) / "efficientnet_lite0.pt").read_bytes() == b"c"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"action": "explode"}, "Unknown action 'explode'"),
        ({"action": "seed", "name": "model"}, "needs bucket, key"),
        ({"action": "seed", "name": "weights", "bucket": BUCKET, "key": "k"}, "Unknown name 'weights'"),
        ([], "must be a JSON object"),
        ({"action": "clean", "keep": "all"}, "keep must be a whole number"),
        ({"action": "clean", "keep": 0}, "keep must be at least 1"),
    ],
)
def test_bad_events_say_what_to_send(seeder, event, message):
    with pytest.raises(seeder.SeedError, match=message):
        seeder.handler(event, None)


def test_the_seeder_template_grants_least_privilege_and_mounts_the_access_point_at_mnt_ml():
    template, _ = decode(str(ROOT / "cloudformation/seeder.yaml"))
    resources = template["Resources"]
    statements = resources["Role"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    actions = {sid["Sid"]: sid["Action"] for sid in statements}
    assert actions["ReadArtifacts"] == "s3:GetObject"
    assert actions["MountReadWriteThroughAccessPoint"] == [
        "elasticfilesystem:ClientMount",
        "elasticfilesystem:ClientWrite",
    ]
    access_point = {"Fn::ImportValue": {"Fn::Sub": "${StorageStackName}-AccessPointArn"}}
    mount = next(s for s in statements if s["Sid"] == "MountReadWriteThroughAccessPoint")
    assert mount["Condition"] == {"StringEquals": {"elasticfilesystem:AccessPointArn": access_point}}
    function = resources["Function"]["Properties"]
    assert function["FileSystemConfigs"] == [{"Arn": access_point, "LocalMountPath": "/mnt/ml"}]
    assert function["Environment"]["Variables"] == {"EFS_MOUNT": "/mnt/ml"}
    assert function["Runtime"] == "python3.12" and function["Handler"] == "app.handler"


def framework_archive(tmp_path: Path) -> Path:
    src = tmp_path / "fw-src"
    (src / "pkg" / "bin").mkdir(parents=True)
    (src / "pkg" / "__init__.py").write_text("VALUE = 42\n")
    (src / "pkg" / "newer.py").write_text("def f(:\n")  # syntax this interpreter cannot compile
    (src / "pkg" / "bin" / "tool").write_bytes(b"\x7fELF")
    (src / "pkg" / "bin" / "tool").chmod(0o755)
    return pack_folder(src, "framework", tmp_path / "framework.tar.gz").path


def seed_framework(seeder, tmp_path: Path) -> dict:
    key = upload(framework_archive(tmp_path), "framework.tar.gz")
    return seeder.handler({"action": "seed", "name": "framework", "bucket": BUCKET, "key": key}, None)


def test_a_framework_is_precompiled_with_unchecked_hash_pycs_before_the_switch(seeder, tmp_path):
    result = seed_framework(seeder, tmp_path)
    assert result["compiled"]["files"] == 1 and result["compiled"]["failed"] == ["pkg/newer.py"]
    assert result["compiled"]["python"] == sys.executable
    folder = (seeder.EFS_MOUNT / "framework" / "current").resolve()
    pyc = folder / "pkg" / "__pycache__" / f"__init__.{sys.implementation.cache_tag}.pyc"
    header = pyc.read_bytes()[:16]
    assert header[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, source not checked (PEP 552)
    assert os.access(folder / "pkg" / "bin" / "tool", os.X_OK)  # executables keep their bit


def test_a_precompiled_framework_is_imported_without_writing_bytecode(seeder, tmp_path):
    seed_framework(seeder, tmp_path)
    folder = (seeder.EFS_MOUNT / "framework" / "current").resolve()
    (folder / "pkg" / "__init__.py").write_text("VALUE = 'the source'\n")  # the .pyc is used unchecked
    before = sorted(p for p in folder.rglob("*"))
    code = f"import sys; sys.path.insert(0, {str(folder)!r}); import pkg; print(pkg.VALUE)"
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "42" and sorted(p for p in folder.rglob("*")) == before


def test_inspect_lists_the_manifests_files_and_counts_the_generated_pycache_apart(seeder, tmp_path):
    seed_framework(seeder, tmp_path)
    framework = seeder.handler({"action": "inspect"}, None)["framework"]
    assert set(framework["files"]) == set(framework["manifest"]["files"])
    assert framework["compiled_files"] == 1


def test_precompiling_runs_in_this_process_without_worker_processes(seeder, tmp_path, monkeypatch):
    import concurrent.futures

    def no_workers(*args, **kwargs):
        raise OSError(38, "Function not implemented")  # what multiprocessing gets without /dev/shm

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", no_workers)
    assert seed_framework(seeder, tmp_path)["compiled"]["files"] == 1


def test_a_version_seeded_before_precompiling_existed_is_compiled_when_seeded_again(seeder, tmp_path):
    key = upload(framework_archive(tmp_path), "framework.tar.gz")  # no metadata: the archive is read again
    event = {"action": "seed", "name": "framework", "bucket": BUCKET, "key": key}
    seeder.handler(event, None)
    folder = (seeder.EFS_MOUNT / "framework" / "current").resolve()
    shutil.rmtree(folder / "pkg" / "__pycache__")  # as an older seeder left it
    again = seeder.handler(event, None)
    assert again["status"] == "unchanged" and again["compiled"]["files"] == 1
    assert (folder / "pkg" / "__pycache__").is_dir()
    assert seeder.handler(event, None)["compiled"]["files"] == 0  # compiled once, not at every seed
