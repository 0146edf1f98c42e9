"""S3 ``aws-chunked`` uploads signed chunk by chunk (``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``).

https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html: the headers are signed with the
literal payload hash ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` (the *seed* signature), then the body is a
series of chunks ``hex(size);chunk-signature=<sig>\\r\\n<data>\\r\\n``, each signature
``HMAC(kSigning, "AWS4-HMAC-SHA256-PAYLOAD\\n<date>\\n<scope>\\n<previous signature>\\n<sha256("")>\\n<sha256(data)>")``
chained to the one before it, ending with a 0-byte chunk; ``x-amz-decoded-content-length`` is the size
of the data. botocore never sends this (it signs whole payloads); the Java, Go and JavaScript SDKs do.

Verifying while decoding lets the next layer (moto) receive a plain body: the caller replaces the
request's body with the decoded data and its ``x-amz-content-sha256`` with the data's digest.

Not emulated: the trailer variants (``STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER``, sigv4-streaming-trailers.html);
a request using them is refused as such (``SignatureError('unsupported')``), never passed on unchecked.
``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` carries an unsigned payload by design and is passed on as sent.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import BinaryIO

from localaws.iam.sigv4 import EMPTY_SHA256, SignatureError, Signed, signing_key

MAX_CHUNK_HEADER = 4096
READ_SIZE = 1 << 16


class ChunkedVerifier:
    """Decode an aws-chunked body, checking each chunk's signature against the previous one."""

    def __init__(self, signed: Signed, secret: str, seed_signature: str, decoded_length: int) -> None:
        self._key = signing_key(secret, signed.date, signed.region, signed.service)
        self._prefix = f"AWS4-HMAC-SHA256-PAYLOAD\n{signed.amz_date}\n{signed.scope}\n"
        self._previous = seed_signature
        self._decoded_length = decoded_length

    def decode(self, stream: BinaryIO) -> Iterator[bytes]:
        """Yield the data of each chunk once its signature is checked; SignatureError on a bad chunk, a
        missing final chunk, or a decoded length other than ``x-amz-decoded-content-length``."""
        total = 0
        while True:
            header = stream.readline(MAX_CHUNK_HEADER)
            if not header.endswith(b"\r\n"):
                raise SignatureError("mismatch", "The aws-chunked body is truncated.")
            size_hex, _, extension = header[:-2].partition(b";")
            name, _, signature = extension.partition(b"=")
            if name != b"chunk-signature":
                raise SignatureError("malformed", "An aws-chunked chunk has no chunk-signature.")
            try:
                size = int(size_hex, 16)
            except ValueError:
                raise SignatureError("malformed", "An aws-chunked chunk size is not hexadecimal.") from None
            if size < 0 or total + size > self._decoded_length:
                raise SignatureError(
                    "mismatch", "The aws-chunked body is longer than x-amz-decoded-content-length."
                )
            digest, parts, remaining = hashlib.sha256(), [], size
            while remaining:
                data = stream.read(min(READ_SIZE, remaining))
                if not data:
                    raise SignatureError("mismatch", "The aws-chunked body is truncated.")
                digest.update(data)
                parts.append(data)
                remaining -= len(data)
            if stream.read(2) != b"\r\n":
                raise SignatureError("malformed", "An aws-chunked chunk is not followed by CRLF.")
            to_sign = f"{self._prefix}{self._previous}\n{EMPTY_SHA256}\n{digest.hexdigest()}"
            expected = hmac.new(self._key, to_sign.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, signature.decode(errors="replace")):
                raise SignatureError("mismatch", "A chunk signature does not match.", string_to_sign=to_sign)
            self._previous = expected
            total += size
            if size == 0:
                break
            yield b"".join(parts)
        if total != self._decoded_length:
            raise SignatureError("mismatch", "The decoded length differs from x-amz-decoded-content-length.")
