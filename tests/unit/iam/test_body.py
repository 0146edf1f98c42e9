"""The body is read once for its signature and handed on unchanged (small in memory, large spooled)."""

from __future__ import annotations

import hashlib
import io

import pytest

from localaws.iam import body


def environ(data: bytes, length: bool = True) -> dict:
    env = {"wsgi.input": io.BytesIO(data)}
    if length:
        env["CONTENT_LENGTH"] = str(len(data))
    else:
        env.update({"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"})
    return env


@pytest.mark.parametrize("size", [0, 100, body.IN_MEMORY + 1, 3 * body.IN_MEMORY])
@pytest.mark.parametrize("length", [True, False], ids=["content-length", "chunked"])
def test_the_next_layer_reads_the_same_bytes(size, length):
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    env = environ(data, length)
    got = body.read(env, digest=True)
    assert got.sha256 == hashlib.sha256(data).hexdigest() and got.size == size
    assert (got.data == data) if size <= body.IN_MEMORY else got.data is None
    assert env["wsgi.input"].read() == data and env["CONTENT_LENGTH"] == str(size)
    assert "HTTP_TRANSFER_ENCODING" not in env and "wsgi.input_terminated" not in env


def test_a_body_without_length_is_read_only_up_to_the_cap():
    with pytest.raises(body.TooLarge):
        body.read(environ(b"x" * 5000, length=False), digest=False, cap=4096)
    assert body.read(environ(b"x" * 4096, length=False), digest=False, cap=4096).size == 4096


def test_a_decoded_body_replaces_the_raw_one():
    env = environ(b"raw aws-chunked bytes")
    size, digest = body.replace(env, iter([b"ab", b"cd"]))
    assert (size, digest, env["wsgi.input"].read(), env["CONTENT_LENGTH"]) == (
        4,
        hashlib.sha256(b"abcd").hexdigest(),
        b"abcd",
        "4",
    )


def test_a_body_can_be_kept_whole_in_memory():
    data = b"y" * (body.IN_MEMORY + 10)
    for length in (True, False):
        got = body.read(environ(data, length), digest=False, in_memory=None)
        assert got.data == data
