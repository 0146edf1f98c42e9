"""Put archives onto EFS: upload them to the artifact bucket, deploy the seeder, ask it to seed.

The seeder is a Lambda function in the VPC that mounts the same access point as the inference
function; it reads S3 through the gateway endpoint, so seeding needs no EC2 instance and no NAT gateway,
and it answers when it is done (with what it did, or with the reason it refused).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from helpers import functions, session, stacks
from helpers.archives import ArchiveInfo
from helpers.config import Settings, load_settings
from helpers.invoke import FunctionFailed, invoke
from helpers.progress import LiveLine

log = logging.getLogger(__name__)

LAMBDA_PACKAGE_LIMIT_MB = 250  # unzipped deployment package, layers included
LAMBDA_TMP_DEFAULT_MB = 512  # /tmp without extra ephemeral storage


class SeedFailed(RuntimeError):
    """The seeder refused or failed; the message is the seeder's own, which says what to fix."""


class UploadProgress(LiveLine):
    """An upload's progress as boto3's ``Callback`` sees it; in a notebook the line ends as
    ``uploaded model: 43.4 MB in 2 s``."""

    def __init__(self, name: str, total_bytes: int):
        self.name, self.done = name, 0
        super().__init__(total_bytes, unit="B", unit_scale=True, desc=f"uploading {name}")

    def bundle(self) -> dict[str, str]:
        if self.closed:
            text = (
                f"uploaded {self.name}: {self.done / 1e6:.1f} MB in {time.monotonic() - self.started:.0f} s"
            )
        else:
            text = f"uploading {self.name}: {self.done / 1e6:.1f} of {self.total / 1e6:.1f} MB"
        return {"text/plain": text}

    def __call__(self, sent: int) -> None:
        with self.lock:  # boto3 calls back from its transfer threads
            self.done += sent
            self.advance(sent)


def archive_key(archive: ArchiveInfo) -> str:
    """The S3 key of an archive: named by its content, so the same content is uploaded once."""
    return f"archives/{archive.name}-{archive.version}.tar.gz"


def upload_archive(archive: ArchiveInfo, bucket: str, *, progress: bool = True) -> str:
    """Upload once (content-addressed key) with a progress bar; return the key."""
    s3 = session.client("s3")
    key = archive_key(archive)
    if (functions.object_metadata(bucket, key) or {}).get("manifest-sha256") == archive.manifest_sha256:
        log.info("s3://%s/%s is already there", bucket, key)
        return key
    bar = UploadProgress(archive.name, archive.size) if progress else None
    try:
        s3.upload_file(
            str(archive.path),
            bucket,
            key,
            ExtraArgs={"Metadata": {"manifest-sha256": archive.manifest_sha256}},
            Callback=bar,
        )
    finally:
        if bar is not None:
            bar.close()
    return key


def deploy_seeder(cfg: Settings | None = None, *, echo: stacks.Printer | None = print) -> dict[str, str]:
    """Package ``functions/seeder``, upload it, and deploy ``cloudformation/seeder.yaml``."""
    cfg = cfg or load_settings()
    storage = stacks.outputs(cfg.name("storage"), notebook="01_setup_efs.ipynb")
    code = functions.build_zip("seeder")
    key = functions.upload_zip(code, storage["ArtifactBucketName"])
    return stacks.deploy(
        cfg.name("seeder"),
        "seeder",
        {"StorageStackName": cfg.name("storage"), "FunctionName": cfg.name("seeder"), "CodeKey": key},
        echo=echo,
    )


def call(function_name: str, event: dict[str, Any]) -> dict:
    """Invoke the seeder; raise SeedFailed with its message when it refuses or fails."""
    try:
        return invoke(function_name, event).raise_for_error().payload
    except FunctionFailed as exc:
        raise SeedFailed(
            f"The seeder could not {event.get('action')}: {exc.error_type}: {exc.error_message}"
        ) from exc


def seed(function_name: str, archive: ArchiveInfo, bucket: str, key: str) -> dict:
    """Ask the seeder to put the uploaded archive onto EFS; its answer says seeded or unchanged."""
    return call(function_name, {"action": "seed", "name": archive.name, "bucket": bucket, "key": key})


def inspect(function_name: str) -> dict:
    """What is on EFS, as the seeder sees it through the access point."""
    return call(function_name, {"action": "inspect"})


def clean(function_name: str, keep: int = 1) -> dict:
    """Remove old versions from EFS, keeping ``current`` and ``keep - 1`` others."""
    return call(function_name, {"action": "clean", "keep": keep})


def evict(
    function_name: str, names: tuple[str, ...] = ("framework", "model"), *, copy: str | None = None
) -> dict:
    """Drop the current framework's and model's pages (or those of their copy labelled ``copy``) from the
    page cache of the machine the seeder runs on (``posix_fadvise(DONTNEED)``); the answer counts the
    bytes still cached before and after. Pages that a live process maps stay (``resident_after_bytes``);
    on Lambda each environment's cache is its own, so this empties the seeder's only, and a new
    environment's is cold anyway."""
    event: dict[str, Any] = {"action": "evict", "names": list(names)}
    if copy is not None:
        event["copy"] = copy
    return call(function_name, event)


def copy(function_name: str, label: str) -> dict:
    """Copy the current framework and model to ``<name>/copies/<label>`` on EFS: new files, whose pages
    no live environment maps. Answers each copy's path (relative to the mount) and bytes."""
    return call(function_name, {"action": "copy", "as": label})


def drop_copy(function_name: str, label: str) -> dict:
    """Remove the copies labelled ``label`` from EFS."""
    return call(function_name, {"action": "drop_copy", "as": label})


def size_table(framework_bytes: int, model_bytes: int, framework_note: str = "") -> list[dict]:
    """Why EFS: the framework and the model against Lambda's package and /tmp limits."""
    rows = []
    for item, size in (
        ("PyTorch + Pillow (framework)", framework_bytes),
        ("EfficientNet-Lite0 weights + classes", model_bytes),
    ):
        rows.append({"what": item, "MB": round(size / 1e6, 1)})
    total = (framework_bytes + model_bytes) / 1e6
    rows.append({"what": "together", "MB": round(total, 1)})
    for row in rows:
        row[f"fits the {LAMBDA_PACKAGE_LIMIT_MB} MB package limit"] = row["MB"] <= LAMBDA_PACKAGE_LIMIT_MB
        row[f"fits the default {LAMBDA_TMP_DEFAULT_MB} MB /tmp"] = row["MB"] <= LAMBDA_TMP_DEFAULT_MB
    if framework_note:
        rows[0]["note"] = framework_note
    return rows
