"""The model archive: ``ModelDataUrl`` read from S3, checked, and extracted for ``/opt/ml/model``.

AWS (https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html#your-algorithms-inference-code-load-artifacts):
``ModelDataUrl`` must point to a ``tar.gz`` file in S3; SageMaker copies it and decompresses it into
``/opt/ml/model`` before the container starts. A missing object, or one that is not a gzip'd tar,
makes the endpoint ``Failed`` with a ``FailureReason`` (the SageMaker console shows it from
DescribeEndpoint). Here the object is read from moto's S3 backend in-process, extracted once per
content (``<state>/sagemaker/models/<sha256>``), world-readable (the serverless container does not run
as root: https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-troubleshooting.html) and
mounted read-only. Members with absolute paths, ``..``, devices, or links leaving the archive are refused.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

_S3_URL = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<key>.+)$")


class ArchiveError(Exception):
    """The archive cannot be used; the message is the endpoint's FailureReason."""


def read_s3(url: str, account_id: str, region: str) -> bytes:
    match = _S3_URL.match(url or "")
    if not match:
        raise ArchiveError(
            f'ModelDataUrl "{url}" is not an S3 URL: give the model archive as s3://<bucket>/<key>/model.tar.gz.'
        )
    backend = s3_backends[account_id][get_partition(region)]
    try:
        key = backend.get_object(match["bucket"], match["key"])
    except Exception:  # noqa: BLE001 - moto raises MissingBucket and friends
        key = None
    if key is None:
        raise ArchiveError(
            f'Failed to download model data for container "primary" from URL "{url}": there is no object at '
            "that URL. Upload model.tar.gz there (or fix ModelDataUrl) and create the endpoint again."
        )
    return key.value


def extract(data: bytes, models_dir: Path, url: str = "") -> Path:
    """The folder holding the archive's content (extracted once per sha256), read-only for everyone."""
    digest = hashlib.sha256(data).hexdigest()[:24]
    target = Path(models_dir) / digest
    if target.is_dir():
        return target
    Path(models_dir).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=models_dir))
    try:
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                for member in archive.getmembers():
                    _check(member, url)
                archive.extractall(staging, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ArchiveError(
                f'The model data at "{url}" is not a tar.gz archive ({exc}): pack it with '
                "tar -czf model.tar.gz -C <folder> . and upload it again."
            ) from None
        for folder, _dirs, files in os.walk(staging):
            os.chmod(folder, 0o755)
            for name in files:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o644)
        os.chmod(staging, 0o755)
        try:
            os.replace(staging, target)
        except OSError as exc:  # another endpoint of the same model extracted it first: use theirs
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not target.is_dir():
                raise
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _check(member: tarfile.TarInfo, url: str) -> None:
    name = member.name
    parts = Path(name).parts
    if name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir() or member.issym()):
        raise ArchiveError(f'The model data at "{url}" holds "{name}", which cannot be extracted safely.')
    if member.issym():
        resolved = os.path.normpath(os.path.join(os.path.dirname(name), member.linkname))
        if member.linkname.startswith("/") or resolved.startswith(".."):
            raise ArchiveError(
                f'The model data at "{url}" holds a link "{name}" pointing outside the archive.'
            )
