"""What every benchmark script needs: a private local AWS server and clients for it.

Each script starts its own server in a temporary state folder (never the learner's), and ends it and
every process it started, whatever happens.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.efs_framework

import boto3

from localaws import server


def client(url: str, service: str = "lambda"):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def local_aws(prefix: str) -> Iterator[tuple[str, Path]]:
    """``(url, state folder)`` of a fresh server; stopped and removed on exit."""
    state_dir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    try:
        yield server.ensure_running(state_dir, free_port()), state_dir
    finally:
        server.stop(state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)


def lambda_role(url: str) -> str:
    return client(url, "iam").create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
