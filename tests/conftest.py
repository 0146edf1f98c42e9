"""Shared fixtures: an embedded local AWS server per test session, with its own state folder and port."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import zipfile
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from localaws import server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalAWSHandle:
    url: str
    state_dir: Path
    port: int
    region: str = "us-east-1"

    def client(self, service: str, **kwargs):
        kwargs.setdefault("region_name", self.region)
        return boto3.client(
            service,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            **kwargs,
        )

    def lambda_role(self) -> str:
        """The ARN of a role Lambda functions can assume (one per server, created on first use)."""
        iam = self.client("iam")
        try:
            return iam.get_role(RoleName="test-lambda-role")["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            trust = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
            return iam.create_role(RoleName="test-lambda-role", AssumeRolePolicyDocument=json.dumps(trust))[
                "Role"
            ]["Arn"]


def lambda_zip(files: str | dict[str, str]) -> bytes:
    """A function zip: ``{"app.py": source, ...}``, or one handler's source as ``app.py``."""
    files = {"app.py": files} if isinstance(files, str) else files
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def start_local_aws(state_dir: Path) -> LocalAWSHandle:
    port = free_port()
    url = server.ensure_running(state_dir, port)
    return LocalAWSHandle(url=url, state_dir=state_dir, port=port)


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory) -> LocalAWSHandle:
    """One server for the whole test session (tests must use unique resource names)."""
    handle = start_local_aws(tmp_path_factory.mktemp("local-aws-state"))
    yield handle
    server.stop(handle.state_dir)


@pytest.fixture
def own_local_aws(tmp_path) -> LocalAWSHandle:
    """A server of the test's own, for tests that break things on purpose."""
    handle = start_local_aws(tmp_path / "state")
    yield handle
    server.stop(handle.state_dir)


@contextlib.contextmanager
def workshop_pointed_at(handle: LocalAWSHandle, prefix: str | None = None):
    """Point ``helpers.session`` (and so every workshop helper) at ``handle``'s server, optionally with
    a resource-name prefix of the test's own; yields the settings. Undone on exit."""
    from helpers.config import load_settings

    mp = pytest.MonkeyPatch()
    mp.setenv("WORKSHOP_BACKEND", "local")
    mp.setenv("WORKSHOP_STATE_DIR", str(handle.state_dir))
    mp.setenv("WORKSHOP_LOCAL_PORT", str(handle.port))
    mp.setenv("WORKSHOP_REGION", handle.region)
    if prefix:
        mp.setenv("WORKSHOP_PREFIX", prefix)
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        mp.delenv(var, raising=False)
    try:
        yield load_settings()
    finally:
        mp.undo()


@pytest.fixture
def workshop_env(local_aws) -> LocalAWSHandle:
    """The session's local server, with ``helpers.session`` pointed at it for one test."""
    with workshop_pointed_at(local_aws):
        yield local_aws
