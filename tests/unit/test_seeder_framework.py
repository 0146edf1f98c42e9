"""The real framework bundle through the seeder, in-process (S3 from moto's mock, EFS a folder): it
unpacks, verifies, precompiles, and torch then imports from ``framework/current`` writing nothing."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from helpers import bundle

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
PYTHON = f"{sys.base_prefix}/bin/python{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    real = bundle.build_framework_bundle(bundle.local_target())  # cached under build/bundles/
    efs = tmp_path_factory.mktemp("efs")
    mp = pytest.MonkeyPatch()
    mp.setenv("EFS_MOUNT", str(efs))
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        mp.setenv(key, "t")
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    mp.delenv("AWS_ENDPOINT_URL", raising=False)
    mp.syspath_prepend(str(ROOT / "functions/seeder"))  # its page_cache module
    spec = importlib.util.spec_from_file_location("seeder_framework_app", ROOT / "functions/seeder/app.py")
    seeder = importlib.util.module_from_spec(spec)
    with mock_aws():
        spec.loader.exec_module(seeder)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="artifacts")
        s3.upload_file(str(real.archive.path), "artifacts", "framework.tar.gz")
        event = {"action": "seed", "name": "framework", "bucket": "artifacts", "key": "framework.tar.gz"}
        result = seeder.handler(event, None)
        report = seeder.handler({"action": "inspect"}, None)["framework"]
    print(json.dumps({"seed": result}))  # the unpack + verify + compile time, shown with pytest -s
    yield {"bundle": real, "result": result, "report": report, "current": efs / "framework" / "current"}
    mp.undo()


def test_the_seeder_unpacks_verifies_and_precompiles_the_real_bundle(seeded):
    result, real = seeded["result"], seeded["bundle"]
    assert result["status"] == "seeded" and result["files"] == real.archive.files
    assert result["version"] == real.archive.version
    assert result["compiled"]["files"] > 2000 and result["compiled"]["python"] == sys.executable
    assert all(path.startswith("torch/testing/_internal/") for path in result["compiled"]["failed"])
    report = seeded["report"]
    assert set(report["files"]) == set(report["manifest"]["files"]) and report["compiled_files"] > 2000


def test_torch_imports_from_efs_alone_and_writes_no_bytecode_there(seeded):
    current = seeded["current"].resolve()
    before = {p: p.stat().st_mtime_ns for p in current.rglob("*")}
    code = (
        f"import sys; sys.path.insert(0, {str(current)!r}); import torch, os; from PIL import Image; "
        "print(torch.__version__, os.path.dirname(torch.__file__))"
    )
    done = subprocess.run([PYTHON, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    version, where = done.stdout.split()
    assert version.endswith("+cpu") and where == str(current / "torch")
    assert {p: p.stat().st_mtime_ns for p in current.rglob("*")} == before  # no .pyc written or rewritten
