"""The request body, read once to check its signature, and handed on unchanged to the next layer.

SigV4 signs the SHA-256 of the payload (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html,
"HashedPayload"): services other than S3 never send that hash in a header, so the server hashes the body
before it can accept the request; S3 sends it in ``x-amz-content-sha256`` and the body must match it.
So the body is read here, hashed as it is read, and ``wsgi.input`` replaced with a fresh stream of the
same bytes for the layer or moto that answers. The bodies of services other than S3 are kept in memory
whole: their parameters are in them (the decision needs CreateFunction's ``Role`` as much as its name),
moto reads them whole anyway, and their size is bounded by the service's limit (70 MB for Lambda's
CreateFunction). S3's (objects, up to 5 GB) are spooled to disk past ``IN_MEMORY``.

The size is bounded before this runs: the server's one capped body reader (``localaws.limits`` /
``localaws.bodies`` on the ``limits`` branch) refuses a body over its limit and gives a chunked body
a Content-Length. Until that reader is in place, a body without a Content-Length is read here up to
``cap`` bytes (``TooLarge`` past it), so this module never holds more than that either.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

IN_MEMORY = 1 << 20
READ_CHUNK = 1 << 20
DEFAULT_CAP = 64 << 20


class TooLarge(Exception):
    """A body without a Content-Length that ran past the cap."""


@dataclass(slots=True)
class Body:
    """The body's bytes when small (``data``; None when spooled), its hex SHA-256 (None if not asked), size."""

    data: bytes | None
    sha256: str | None
    size: int


def read(environ: dict, digest: bool, cap: int = DEFAULT_CAP, in_memory: int | None = IN_MEMORY) -> Body:
    """Read the request body once, hashing it if ``digest``, and put a fresh stream of it in ``wsgi.input``;
    ``data`` holds it when it is at most ``in_memory`` bytes (None: always)."""
    stream: BinaryIO = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    hasher = hashlib.sha256() if digest else None
    if length not in (None, ""):
        remaining = int(length)
        if in_memory is None or remaining <= in_memory:
            data = stream.read(remaining) if remaining > 0 else b""
            environ["wsgi.input"] = io.BytesIO(data)
            return Body(data, hashlib.sha256(data).hexdigest() if digest else None, len(data))
    elif environ.get("wsgi.input_terminated"):
        remaining = -1  # Transfer-Encoding: chunked, de-chunked by werkzeug: read to the end
    else:
        environ["wsgi.input"] = io.BytesIO(b"")
        return Body(b"", hashlib.sha256(b"").hexdigest() if digest else None, 0)
    spool = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY)
    size = 0
    while remaining != 0:
        chunk = stream.read(READ_CHUNK if remaining < 0 else min(READ_CHUNK, remaining))
        if not chunk:
            break
        size += len(chunk)
        if remaining < 0 and size > cap:
            spool.close()
            raise TooLarge(f"a chunked body over {cap} bytes")
        spool.write(chunk)
        if hasher is not None:
            hasher.update(chunk)
        if remaining > 0:
            remaining -= len(chunk)
    spool.seek(0)
    environ["CONTENT_LENGTH"] = str(size)
    environ.pop("wsgi.input_terminated", None)
    environ.pop("HTTP_TRANSFER_ENCODING", None)  # werkzeug reads no body of a "chunked" request without it
    if in_memory is None or size <= in_memory:
        data = spool.read()
        spool.close()
        environ["wsgi.input"] = io.BytesIO(data)
        return Body(data, hasher.hexdigest() if hasher else None, size)
    environ["wsgi.input"] = spool
    return Body(None, hasher.hexdigest() if hasher else None, size)


def replace(environ: dict, chunks: Iterable[bytes]) -> tuple[int, str]:
    """Put the concatenation of ``chunks`` (decoded data, bounded by whoever yields it) in ``wsgi.input``;
    return (size, hex SHA-256)."""
    spool = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY)
    hasher, size = hashlib.sha256(), 0
    for data in chunks:
        size += len(data)
        spool.write(data)
        hasher.update(data)
    spool.seek(0)
    environ["wsgi.input"] = spool
    environ["CONTENT_LENGTH"] = str(size)
    environ.pop("wsgi.input_terminated", None)
    environ.pop("HTTP_TRANSFER_ENCODING", None)  # werkzeug reads no body of a "chunked" request without it
    return size, hasher.hexdigest()
