"""The model archive: ``ModelDataUrl`` read from S3, checked, and extracted for ``/opt/ml/model``.

AWS (https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html#your-algorithms-inference-code-load-artifacts):
``ModelDataUrl`` must point to a ``tar.gz`` file in S3; SageMaker copies it and decompresses it into
``/opt/ml/model`` before the container starts. A missing object, or one that is not a gzip'd tar,
makes the endpoint ``Failed`` with a ``FailureReason`` (the SageMaker console shows it from
DescribeEndpoint). Here the object is read from moto's S3 backend in-process, extracted once per
content (``<state>/sagemaker/models/<sha256>``), world-readable (the serverless container does not run
as root: https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-troubleshooting.html) and
mounted read-only.

Extraction never relies on ``tarfile``'s filters, which this machine's Python 3.11.7 lets the public proof
of concept of CVE-2025-4517 bypass (a chain of links past PATH_MAX that ``os.path.realpath`` stops
resolving): members are written by :class:`~localaws.lambda_engine.sandbox.beneath.Tree`, which never
follows a link (a member under a link is refused), in a thread confined to the new folder as an
unprivileged user (:mod:`localaws.lambda_engine.sandbox.confined`), and every link is then resolved as
the kernel resolves it, one component at a time: one that leads out of the archive is refused. So are
absolute names, ``..``, devices and hard links. A refused archive fails the endpoint with SageMaker's
FailureReason, 'Failed to extract model data archive for container "..." from URL "...". Please ensure
that the object located at the URL is a valid tar.gz archive.' (as SageMaker answers it, quoted in
https://github.com/aws/deep-learning-containers/pull/569), the detail going to the server log.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

from localaws.lambda_engine.sandbox import beneath, confined

log = logging.getLogger(__name__)

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


def _failed(url: str, detail: str) -> ArchiveError:
    log.warning("model data %s cannot be extracted: %s", url, detail)
    return ArchiveError(
        f'Failed to extract model data archive for container "primary" from URL "{url}". Please ensure that '
        "the object located at the URL is a valid tar.gz archive."
    )


def _members(data: bytes, url: str) -> tuple[tarfile.TarFile, list[tuple[tarfile.TarInfo, list[str]]]]:
    """The archive and its members, each a folder, a file or a link with a plain relative name."""
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")
        members = archive.getmembers()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise _failed(url, f"not a tar.gz archive ({exc})") from None
    checked = []
    for member in members:
        if member.name.startswith("/") or not (member.isfile() or member.isdir() or member.issym()):
            archive.close()
            raise _failed(url, f"{member.name!r} cannot be extracted safely")
        try:
            names = beneath.parts(member.name)
        except ValueError:
            archive.close()
            raise _failed(url, f"{member.name!r} cannot be extracted safely") from None
        if names:
            checked.append((member, names))
    return archive, checked


def _chunks(archive: tarfile.TarFile, member: tarfile.TarInfo):
    stream = archive.extractfile(member)
    while chunk := stream.read(1 << 16):
        yield chunk


def _write(root: str, archive: tarfile.TarFile, members: list, url: str) -> None:
    """In the confined thread: every member under ``root``, then every link resolved as the kernel would."""
    with beneath.Tree(root) as tree:
        for member, names in members:
            try:
                if member.isdir():
                    tree.folder(names)
                elif member.isfile():
                    tree.write(names, _chunks(archive, member), 0o644)
                else:
                    tree.symlink(names, member.linkname)
            except beneath.TreeError as exc:
                raise _failed(
                    url, f"{member.name[:200]!r} cannot be extracted safely ({exc.strerror})"
                ) from None
        for member, names in members:
            if member.issym() and tree.leaves_root(names):
                raise _failed(url, f"the link {member.name[:200]!r} points outside the archive")


def extract(data: bytes, models_dir: Path, url: str = "") -> Path:
    """The folder holding the archive's content (extracted once per sha256), read-only for everyone."""
    digest = hashlib.sha256(data).hexdigest()[:24]
    target = Path(models_dir) / digest
    if target.is_dir():
        return target
    Path(models_dir).mkdir(parents=True, exist_ok=True)
    archive, members = _members(data, url)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=models_dir))
    try:
        os.chmod(staging, 0o755)
        try:
            confined.run(staging, lambda root: _write(root, archive, members, url))
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise _failed(url, f"{type(exc).__name__}: {exc}") from None
        try:
            os.replace(staging, target)
        except OSError as exc:  # another endpoint of the same model extracted it first: use theirs
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not target.is_dir():
                raise
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        archive.close()
    return target
