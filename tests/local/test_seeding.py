"""The seeder deployed with seeder.yaml on the local backend, running for real in the Lambda engine:
it reads S3 through the local AWS and writes the access point's folder that other functions mount."""

from __future__ import annotations

import pytest

from helpers import seeding, stacks
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
    (src / "resnet18.pt").write_bytes(weights)
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
    assert on_efs["current"] == first.version and on_efs["files"] == {"resnet18.pt": 2}
    # What the functions see at /mnt/ml is the access point's folder on this machine.
    fs_id = deployed["storage"]["FileSystemId"]
    local = local_aws.state_dir / "efs" / fs_id / "ml" / "model" / "current" / "resnet18.pt"
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
