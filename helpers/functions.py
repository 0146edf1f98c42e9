"""Package Lambda function code, upload it, and wait for Provisioned Concurrency to be ready.

The zip is deterministic (sorted entries, fixed timestamps and permissions), so the same source gives
the same bytes and the same S3 key: re-running a deploy with unchanged code changes nothing.
The workshop packages function code as files; it never imports it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from helpers import session
from helpers.config import REPO_ROOT

log = logging.getLogger(__name__)

FUNCTIONS = REPO_ROOT / "functions"
_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP = {"__pycache__", ".pytest_cache"}


@dataclass(frozen=True)
class FunctionZip:
    name: str
    data: bytes
    sha256: str

    @property
    def key(self) -> str:
        """The S3 key: content-addressed, so new code gets a new key and CloudFormation sees the change."""
        return f"functions/{self.name}-{self.sha256[:16]}.zip"

    @property
    def size(self) -> int:
        return len(self.data)


def build_zip(name: str, source: Path | None = None) -> FunctionZip:
    """Zip ``functions/<name>/`` deterministically (no __pycache__, fixed dates, 0644 files)."""
    source = Path(source or FUNCTIONS / name)
    if not source.is_dir():
        raise FileNotFoundError(f"No function source at {source}: expected a folder under {FUNCTIONS}.")
    files = sorted(
        p
        for p in source.rglob("*")
        if p.is_file() and not (_SKIP & set(p.relative_to(source).parts)) and p.suffix != ".pyc"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=_EPOCH)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    data = buffer.getvalue()
    return FunctionZip(name=name, data=data, sha256=hashlib.sha256(data).hexdigest())


def object_metadata(bucket: str, key: str) -> dict[str, str] | None:
    """The user metadata of ``s3://bucket/key``, or None when there is no such object (as far as we may know).

    Without ``s3:ListBucket`` on the bucket, S3 answers HeadObject on a missing key with 403, not 404
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html, "Permissions"). A 403 is
    therefore read as "not there": the caller uploads again, which is harmless for the workshop's
    content-addressed keys, and the PutObject that follows fails with its own error if writing is
    denied too. A warning names the missing permission, because every upload is then repeated.
    """
    try:
        return session.client("s3").head_object(Bucket=bucket, Key=key).get("Metadata", {})
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code in ("404", "NoSuchKey", "NotFound"):
            return None
        if code in ("403", "AccessDenied", "Forbidden"):
            log.warning(
                "HeadObject on s3://%s/%s answered 403: the key is missing or you lack s3:ListBucket on the bucket "
                "(policies/learner-policy.json grants it); treating it as missing and uploading again.",
                bucket,
                key,
            )
            return None
        raise


def upload_zip(bundle: FunctionZip, bucket: str) -> str:
    """Upload the zip to ``bucket`` unless that exact content is already there; return its key."""
    if object_metadata(bucket, bundle.key) is not None:  # the key is the content's hash
        log.info("s3://%s/%s is already there", bucket, bundle.key)
        return bundle.key
    session.client("s3").put_object(
        Bucket=bucket, Key=bundle.key, Body=bundle.data, Metadata={"sha256": bundle.sha256}
    )
    return bundle.key


def wait_provisioned_ready(
    function_name: str, qualifier: str, *, timeout: float = 900, progress: bool = True
) -> dict:
    """Poll the alias's Provisioned Concurrency until it is READY; return the config.

    Raises RuntimeError with Lambda's StatusReason when it FAILED (usually the function's init failed:
    read its log group), and TimeoutError after ``timeout`` seconds.
    """
    lam = session.client("lambda")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=None, unit="environment", desc=f"provisioning {qualifier}")
    deadline = time.monotonic() + timeout
    try:
        while True:
            config = lam.get_provisioned_concurrency_config(FunctionName=function_name, Qualifier=qualifier)
            if bar is not None:
                bar.total = config["RequestedProvisionedConcurrentExecutions"]
                bar.n = config.get("AvailableProvisionedConcurrentExecutions", 0)
                bar.set_postfix_str(config["Status"])
                bar.refresh()
            if config["Status"] == "READY":
                config.pop("ResponseMetadata", None)
                return config
            if config["Status"] == "FAILED":
                raise RuntimeError(
                    f"Provisioned Concurrency for {function_name}:{qualifier} FAILED: "
                    f"{config.get('StatusReason', 'no reason given')}. Read the log group /aws/lambda/{function_name}."
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Provisioned Concurrency for {function_name}:{qualifier} is still {config['Status']} after "
                    f"{timeout:.0f} s: check the function's log group for init errors, then re-run this cell."
                )
            time.sleep(1.0)
    finally:
        if bar is not None:
            bar.close()
