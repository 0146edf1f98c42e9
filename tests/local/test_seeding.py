"""The seeder deployed with seeder.yaml on the local backend, running for real in the Lambda engine:
it reads S3 through the local AWS and writes the access point's folder that other functions mount."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from helpers import bundle, seeding, stacks
from helpers.bundle import pack_folder
from tests.conftest import workshop_pointed_at


@pytest.fixture(scope="module")
def deployed(local_aws, tmp_path_factory):
    with workshop_pointed_at(local_aws, "seedtest") as cfg:
        yield from _deploy(cfg, tmp_path_factory)


def _deploy(cfg, tmp_path_factory):
    storage = stacks.deploy(cfg.name("storage"), "storage", echo=None)
    seeder = seeding.deploy_seeder(cfg, echo=None)
    yield {
        "cfg": cfg,
        "storage": storage,
        "seeder": seeder["FunctionName"],
        "tmp": tmp_path_factory.mktemp("seed"),
    }
    for suffix in ("seeder", "storage"):
        stacks.delete(cfg.name(suffix), echo=None)


def archive(tmp, weights: bytes):
    src = tmp / f"src-{weights.hex()}"
    src.mkdir(exist_ok=True)
    (src / "efficientnet_lite0.pt").write_bytes(weights)
    return pack_folder(src, "model", tmp / f"{src.name}.tar.gz")


def test_seed_then_seed_again_then_inspect_through_the_deployed_seeder(deployed, local_aws):
    bucket = deployed["storage"]["ArtifactBucketName"]
    first = archive(deployed["tmp"], b"v1")
    key = seeding.upload_archive(first, bucket, progress=False)
    assert seeding.upload_archive(first, bucket, progress=False) == key  # uploaded once
    result = seeding.seed(deployed["seeder"], first, bucket, key)
    assert result["status"] == "seeded" and result["version"] == first.version
    assert seeding.seed(deployed["seeder"], first, bucket, key)["status"] == "unchanged"
    on_efs = seeding.inspect(deployed["seeder"])["model"]
    assert on_efs["current"] == first.version and on_efs["files"] == {"efficientnet_lite0.pt": 2}
    # What the functions see at /mnt/ml is the access point's folder on this machine.
    fs_id = deployed["storage"]["FileSystemId"]
    local = local_aws.state_dir / "efs" / fs_id / "ml" / "model" / "current" / "efficientnet_lite0.pt"
    assert local.read_bytes() == b"v1"


def test_a_refused_archive_is_a_clear_error_and_the_previous_seed_stays(deployed, local_aws):
    bucket = deployed["storage"]["ArtifactBucketName"]
    good = archive(deployed["tmp"], b"good")
    seeding.seed(deployed["seeder"], good, bucket, seeding.upload_archive(good, bucket, progress=False))
    local_aws.client("s3").put_object(Bucket=bucket, Key="archives/broken.tar.gz", Body=b"not gzip at all")
    with pytest.raises(
        seeding.SeedFailed, match=r"SeedError: s3://.*broken.tar.gz is not a readable .tar.gz"
    ):
        seeding.call(
            deployed["seeder"],
            {"action": "seed", "name": "model", "bucket": bucket, "key": "archives/broken.tar.gz"},
        )
    assert seeding.inspect(deployed["seeder"])["model"]["current"] == good.version


PROBE = """
import importlib.util, os, sys

def handler(event, context):
    host = [m for m in ("torch", "numpy", "PIL", "pytest", "moto") if importlib.util.find_spec(m)]
    sys.path.insert(0, os.environ["FRAMEWORK_DIR"])
    import torch
    from PIL import Image
    return {"host": host, "python": sys.executable, "torch": torch.__version__,
            "from": os.path.dirname(torch.__file__), "build": "cuda" if torch.version.cuda else "cpu"}
"""


@pytest.mark.slow
def test_the_real_framework_is_seeded_precompiled_and_imported_from_the_mount_alone(deployed, local_aws):
    framework = bundle.build_framework_bundle(bundle.local_target())  # cached under build/bundles/
    bucket = deployed["storage"]["ArtifactBucketName"]
    key = seeding.upload_archive(framework.archive, bucket, progress=False)
    result = seeding.seed(deployed["seeder"], framework.archive, bucket, key)
    assert result["status"] in ("seeded", "unchanged") and result["version"] == framework.archive.version
    if result["status"] == "seeded":
        assert result["compiled"]["files"] > 2000
    on_efs = seeding.inspect(deployed["seeder"])["framework"]
    assert "torch/bin/torch_shm_manager" in on_efs["files"] and on_efs["compiled_files"] > 2000
    # A function configured like the seeder (same VPC, access point and mount) imports torch from EFS.
    lam = local_aws.client("lambda")
    config = lam.get_function_configuration(FunctionName=deployed["seeder"])
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("probe.py", PROBE)
    name = f"{deployed['seeder']}-probe"
    lam.create_function(
        FunctionName=name,
        Runtime=config["Runtime"],
        Role=config["Role"],
        Handler="probe.handler",
        Code={"ZipFile": archive.getvalue()},
        MemorySize=2048,
        Timeout=60,
        VpcConfig={k: config["VpcConfig"][k] for k in ("SubnetIds", "SecurityGroupIds")},
        FileSystemConfigs=config["FileSystemConfigs"],
        Environment={"Variables": {"FRAMEWORK_DIR": "/mnt/ml/framework/current"}},
    )
    try:
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
        answer = json.loads(lam.invoke(FunctionName=name)["Payload"].read())
    finally:
        lam.delete_function(FunctionName=name)
    assert answer["torch"] == framework.torch_version and answer["build"] == "cpu", answer
    assert answer["from"] == "/mnt/ml/framework/current/torch" and answer["host"] == []
