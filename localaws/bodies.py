"""Request and response bodies read with a cap, and the small HTTP answers every layer of the server writes.

No body is ever held whole before its size is known: a body with a Content-Length over its limit is
refused from the header alone; a chunked one (no Content-Length) is read a chunk at a time and refused
as soon as it passes its limit, so that the server never holds more than the limit plus one read
(``READ_CHUNK``). What is left of a refused body is read and dropped, a chunk at a time, up to
``DRAIN_CAP`` (the client then reads the answer instead of a reset connection); past that the
connection is closed instead. Chunked bodies arrive de-chunked: werkzeug's ``DechunkedInput`` for the
server's WSGI requests, and the same class over the raw socket for the Runtime API
(:mod:`localaws.lambda_engine.runtime_api`), so there is one chunk parser; it reads a declared chunk
size in pieces, never at once.

:func:`capped_input` makes a request's body safe for code that reads it whole (moto's apps, werkzeug's
``get_data``): a chunked body within its limit is spooled (in memory up to ``SPOOL_IN_MEMORY``, on
disk past it) and handed on with a Content-Length.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from http import HTTPStatus
from typing import BinaryIO

from werkzeug.serving import DechunkedInput

READ_CHUNK = 1 << 20
DRAIN_CAP = 512 << 20  # past this, a refused body is not drained: the connection is closed instead
SPOOL_IN_MEMORY = 1 << 20
_MAX_LINE = 65536
_MAX_TRAILERS = 100


class TooLarge(Exception):
    """A body over ``limit``: ``length`` bytes (as declared, or as far as read); ``drained`` is False
    when the rest of it is still unread (the connection must then be closed)."""

    def __init__(self, length: int, limit: int, drained: bool):
        super().__init__(f"{length} bytes is over the limit of {limit} bytes")
        self.length, self.limit, self.drained = length, limit, drained


class BadFraming(Exception):
    """A Content-Length that is not a number, or a chunked body whose framing is broken."""


def content_length(environ: dict) -> int | None:
    """The request's Content-Length; None for a chunked body (or none at all); BadFraming if invalid."""
    value = environ.get("CONTENT_LENGTH")
    if value in (None, ""):
        return None if environ.get("wsgi.input_terminated") else 0
    try:
        length = int(value)
    except ValueError:
        raise BadFraming(f"Content-Length {value[:40]!r} is not a number") from None
    if length < 0:
        raise BadFraming("Content-Length is negative")
    return length


def drain(stream: BinaryIO, length: int | None, cap: int = DRAIN_CAP) -> bool:
    """Read and drop ``length`` bytes (None: to the end of a terminated stream), a chunk at a time;
    False if that is more than ``cap`` (or the stream breaks): the connection must then be closed."""
    left = cap if length is None else length
    if length is not None and length > cap:
        return False
    try:
        while left > 0:
            chunk = stream.read(min(READ_CHUNK, left))
            if not chunk:
                return True
            left -= len(chunk)
    except (OSError, ValueError):
        return False
    return length is not None or not stream.read(1)


def read_capped(stream: BinaryIO, length: int | None, limit: int, drain_cap: int = DRAIN_CAP) -> bytes:
    """The body (``length`` bytes, None: to the end of a terminated stream) if it is at most ``limit``
    bytes, else TooLarge (after draining at most ``drain_cap`` bytes of it); at most ``limit`` plus one
    chunk is ever held."""
    if length is not None:
        if length > limit:
            raise TooLarge(length, limit, drain(stream, length, drain_cap))
        return _read_exactly(stream, length)
    parts, held = [], 0
    try:
        while held <= limit:
            chunk = stream.read(min(READ_CHUNK, limit + 1 - held))
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
            held += len(chunk)
    except OSError as exc:
        raise BadFraming(str(exc)) from None
    parts.clear()
    raise TooLarge(held, limit, drain(stream, None, drain_cap))


def _read_exactly(stream: BinaryIO, length: int) -> bytes:
    if length <= READ_CHUNK:
        return stream.read(length) if length else b""
    parts, left = [], length
    while left > 0:
        chunk = stream.read(min(READ_CHUNK, left))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def read_body(environ: dict, limit: int) -> bytes:
    """The WSGI request's body, at most ``limit`` bytes (TooLarge past it, BadFraming if unreadable)."""
    return read_capped(environ["wsgi.input"], content_length(environ), limit)


def capped_input(environ: dict, limit: int) -> None:
    """Check the request's body against ``limit`` before anyone reads it (TooLarge, BadFraming). A chunked
    body is read here, spooled, and handed on with a Content-Length, so that code reading the body
    whole never reads past the limit; a body with a Content-Length is left in place."""
    length = content_length(environ)
    if length is not None:
        if length > limit:
            raise TooLarge(length, limit, drain(environ["wsgi.input"], length))
        return
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    stream, held = environ["wsgi.input"], 0
    try:
        while True:
            chunk = stream.read(READ_CHUNK)
            if not chunk:
                break
            held += len(chunk)
            if held > limit:
                spool.close()
                raise TooLarge(held, limit, drain(stream, None))
            spool.write(chunk)
    except OSError as exc:
        spool.close()
        raise BadFraming(str(exc)) from None
    spool.seek(0)
    environ["wsgi.input"] = spool
    environ["CONTENT_LENGTH"] = str(held)
    environ.pop("wsgi.input_terminated", None)
    environ.pop("HTTP_TRANSFER_ENCODING", None)


class _Dechunked(DechunkedInput):
    """werkzeug's de-chunker, with chunk extensions (``1a;name=value``) and trailers after the last chunk,
    which runtime clients may send and werkzeug's reader refuses."""

    def read_chunk_len(self) -> int:
        line = self._rfile.readline(_MAX_LINE)
        try:
            length = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            raise OSError("Invalid chunk header") from None
        if length < 0:
            raise OSError("Negative chunk length not allowed")
        if length == 0:  # the last chunk: its trailers run to a blank line, which ends the body
            for _ in range(_MAX_TRAILERS):
                if self._rfile.readline(_MAX_LINE) in (b"\r\n", b"\n", b""):
                    break
            else:
                raise OSError("Too many trailers")
            self._rfile = io.BytesIO(b"\r\n")  # what the base class reads as the body's last line
        return length


def dechunked(reader: BinaryIO) -> BinaryIO:
    """A stream of the de-chunked body of a raw ``Transfer-Encoding: chunked`` request on ``reader``."""
    return io.BufferedReader(_Dechunked(reader), READ_CHUNK)


_PHRASES = {status.value: status.phrase for status in HTTPStatus}


def phrase(status: int) -> str:
    """The reason phrase of an HTTP status (``Unknown`` for codes HTTP does not name)."""
    return _PHRASES.get(status, "Unknown")


def reply(
    start_response: Callable,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> list[bytes]:
    """Answer a WSGI request with ``body`` (Content-Type ``content_type`` unless ``headers`` name one)."""
    extra = dict(headers or {})
    content_type = extra.pop("Content-Type", content_type)
    header_list = [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra.items()]
    start_response(f"{status} {phrase(status)}", header_list)
    return [body]
