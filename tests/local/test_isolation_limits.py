"""No single request, log stream or queue grows the server: bodies are capped before they are read,
log events and queued asynchronous events live on disk, as issue 23 asks (item 6).

Each test attacks as a tenant would (boto3, raw HTTP, or a function talking to its own Runtime API)
and measures the server process: its peak resident memory (VmHWM, reset before each test through
``/proc/<pid>/clear_refs``) and its resident memory after. The tests that measure what the server keeps
come first: memory a process has freed stays resident, and would hide what a later test keeps. See ``localaws/bodies.py``,
``localaws/limits.py``, ``localaws/patches/logs_store.py`` and ``localaws/lambda_engine/async_spool.py``.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import random
import urllib.parse
import uuid
import zipfile
from pathlib import Path

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from localaws import server
from tests.conftest import lambda_zip, start_local_aws

GROWTH_MB = 64  # what one request, log stream or queue may add to the server, with room for noise
SIGNED = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0"

POST_OWN_RUNTIME_API = """
import http.client, os

def handler(event, context):
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    conn.putrequest("POST", f"/2018-06-01/runtime/invocation/{context.aws_request_id}/response")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    block = b"x" * (1 << 20)
    try:
        conn.send(b"%x\\r\\n" % (512 << 20))  # one chunk of 512 MB, sent a megabyte at a time
        for _ in range(512):
            conn.send(block)
        conn.send(b"\\r\\n0\\r\\n\\r\\n")
        return conn.getresponse().status
    except OSError as exc:
        return str(exc)
"""
FLOOD = """
import sys

def handler(event, context):
    line = "y" * (event["size"] - 1) + "\\n"
    for _ in range(event["lines"]):
        sys.stdout.write(line)
    sys.stdout.flush()
    return "done"
"""
SLEEPS = "import time\n\ndef handler(event, context):\n    time.sleep(60)\n"


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    """A server of this module's own: its memory is measured, and it is stopped with what it queued."""
    handle = start_local_aws(tmp_path_factory.mktemp("limits") / "state")
    yield handle
    server.stop(handle.state_dir)


class Memory:
    """The server's peak and current resident memory, from a reset of the peak on."""

    def __init__(self, handle):
        self.pid = server.status(handle.state_dir)["pid"]
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        self.rss = self._kb("VmRSS")

    def _kb(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field}")

    def peak_growth_mb(self) -> float:
        return (self._kb("VmHWM") - self.rss) / 1024

    def growth_mb(self) -> float:
        return (self._kb("VmRSS") - self.rss) / 1024


def _function(handle, code: str, **settings) -> str:
    lam = handle.client("lambda")
    name = f"limits-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=handle.lambda_role(),
        Handler="app.handler",
        Code={"ZipFile": lambda_zip(code)},
        **{"Timeout": 120, "MemorySize": 512, **settings},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    return name


def _lambda(handle, **config):
    return handle.client("lambda", config=Config(read_timeout=300, retries={"max_attempts": 1}, **config))


def _post(url: str, total: int, *, chunked: bool, headers: dict) -> tuple[int, bytes]:
    """POST ``total`` bytes of zeros a megabyte at a time, with a Content-Length or chunked."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    conn.putrequest("POST", parts.path)
    for key, value in headers.items():
        conn.putheader(key, value)
    conn.putheader("Transfer-Encoding" if chunked else "Content-Length", "chunked" if chunked else str(total))
    conn.endheaders()
    block, sent = b"\0" * (1 << 20), 0
    try:
        while sent < total:
            size = min(len(block), total - sent)
            conn.send(b"%x\r\n%s\r\n" % (size, block[:size]) if chunked else block[:size])
            sent += size
        if chunked:
            conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed before the whole body was sent
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body


# --- logs --------------------------------------------------------------------------------------------


def test_a_200_mb_log_flood_is_kept_on_disk_not_in_the_server(aws):
    name = _function(aws, FLOOD)
    memory = Memory(aws)
    response = _lambda(aws).invoke(FunctionName=name, Payload=json.dumps({"size": 10240, "lines": 20480}))
    assert json.loads(response["Payload"].read()) == "done"
    logs = aws.client("logs")
    [stream] = logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
    assert stream["storedBytes"] >= 20480 * 10239
    assert memory.growth_mb() < GROWTH_MB, f"the server kept {memory.growth_mb():.0f} MB"
    assert memory.peak_growth_mb() < GROWTH_MB, f"the server's peak grew by {memory.peak_growth_mb():.0f} MB"
    page = logs.get_log_events(
        logGroupName=f"/aws/lambda/{name}", logStreamName=stream["logStreamName"], startFromHead=True
    )
    assert sum(len(e["message"]) + 26 for e in page["events"]) <= 1_048_576  # a page is 1 MB at most
    assert page["events"][-1]["message"] == "y" * 10239


def _all_events(logs, group: str, stream: str) -> list[dict]:
    """Every event of a stream, page after page (each page at most 1 MB)."""
    events, token = [], None
    while True:
        page = logs.get_log_events(
            logGroupName=group,
            logStreamName=stream,
            startFromHead=True,
            **({"nextToken": token} if token else {}),
        )
        events += page["events"]
        if page["nextForwardToken"] == token:
            return events
        token = page["nextForwardToken"]


def test_a_line_without_end_is_split_into_256_kb_events(aws):
    name = _function(aws, FLOOD)
    _lambda(aws).invoke(FunctionName=name, Payload=json.dumps({"size": 1 << 20, "lines": 1}))
    logs = aws.client("logs")
    [stream] = logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
    events = _all_events(logs, f"/aws/lambda/{name}", stream["logStreamName"])
    pieces = [e["message"] for e in events if e["message"].startswith("y")]
    assert [len(p) for p in pieces] == [262118, 262118, 262118, 262118, 1048575 - 4 * 262118]


# --- the asynchronous queue --------------------------------------------------------------------------


def test_300_queued_1_mb_events_wait_on_disk_not_in_the_server(aws):
    name = _function(aws, SLEEPS)
    lam = _lambda(aws)
    payload = b'"' + b"a" * (1048576 - 2) + b'"'  # the largest Event payload
    memory = Memory(aws)
    for _ in range(300):
        assert lam.invoke(FunctionName=name, InvocationType="Event", Payload=payload)["StatusCode"] == 202
    assert memory.growth_mb() < GROWTH_MB, f"the server kept {memory.growth_mb():.0f} MB"
    assert memory.peak_growth_mb() < GROWTH_MB, f"the server's peak grew by {memory.peak_growth_mb():.0f} MB"
    spooled = list((aws.state_dir / "lambda" / "async").glob("*.payload"))
    assert len(spooled) >= 300 - 10 and all(os.path.getsize(p) == len(payload) for p in spooled)
    lam.delete_function(FunctionName=name)


# --- bodies ------------------------------------------------------------------------------------------


def test_a_512_mb_chunk_posted_to_its_own_runtime_api_is_never_held_and_fails_the_invocation(aws):
    name = _function(aws, POST_OWN_RUNTIME_API)
    memory = Memory(aws)
    response = _lambda(aws).invoke(FunctionName=name, Payload=b"{}")
    assert memory.peak_growth_mb() < GROWTH_MB, f"the server's peak grew by {memory.peak_growth_mb():.0f} MB"
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "Function.ResponseSizeTooLarge"
    assert server.health(aws.url) is not None


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_133_mb_create_function_request_is_refused_before_it_is_read(aws, chunked):
    memory = Memory(aws)
    status, body = _post(
        f"{aws.url}/2015-03-31/functions",
        133 << 20,
        chunked=chunked,
        headers={"Authorization": SIGNED, "Content-Type": "application/json"},
    )
    assert memory.peak_growth_mb() < GROWTH_MB, f"the server's peak grew by {memory.peak_growth_mb():.0f} MB"
    assert status == 413
    assert (
        json.loads(body)["message"]
        == "Request must be smaller than 70167211 bytes for the CreateFunction operation"
    )


def _random_zip(size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return 1\n")
        archive.writestr("weights.bin", random.Random(7).randbytes(size))
    return buffer.getvalue()


def test_create_function_answers_as_lambda_past_50_mb_zipped_and_past_its_request_size(aws):
    lam = _lambda(aws)
    common = {"Runtime": "python3.12", "Role": aws.lambda_role(), "Handler": "app.handler"}
    with pytest.raises(ClientError) as zipped:  # 100 KB over 50 MB: base64, still under the request limit
        lam.create_function(
            FunctionName=f"big-{uuid.uuid4().hex[:8]}",
            Code={"ZipFile": _random_zip((50 << 20) + 102400)},
            **common,
        )
    assert zipped.value.response["Error"] == {
        "Code": "RequestEntityTooLargeException",
        "Message": "Zipped size must be smaller than 52428800 bytes",
    }
    with pytest.raises(ClientError) as request:  # 53 MB: over 70167211 bytes once base64-encoded
        lam.create_function(
            FunctionName=f"big-{uuid.uuid4().hex[:8]}", Code={"ZipFile": _random_zip(53 << 20)}, **common
        )
    assert request.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert request.value.response["Error"]["Message"] == (
        "Request must be smaller than 70167211 bytes for the CreateFunction operation"
    )
