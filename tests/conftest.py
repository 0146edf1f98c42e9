"""Shared fixtures: an embedded local AWS server per test session, with its own state folder and port."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from helpers.local import server


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


@pytest.fixture
def workshop_env(local_aws, monkeypatch) -> LocalAWSHandle:
    """Point ``helpers.session`` (and so every workshop helper) at the session's local server."""
    monkeypatch.setenv("WORKSHOP_BACKEND", "local")
    monkeypatch.setenv("WORKSHOP_STATE_DIR", str(local_aws.state_dir))
    monkeypatch.setenv("WORKSHOP_LOCAL_PORT", str(local_aws.port))
    monkeypatch.setenv("WORKSHOP_REGION", local_aws.region)
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    return local_aws
