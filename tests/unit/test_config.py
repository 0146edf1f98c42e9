"""Settings: defaults that work offline, and one clear sentence for every wrong setting."""

from __future__ import annotations

import pytest

from helpers import session
from helpers.config import DEFAULT_LOCAL_PORT, ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for var in (
        "WORKSHOP_BACKEND",
        "WORKSHOP_PREFIX",
        "WORKSHOP_REGION",
        "WORKSHOP_LOCAL_PORT",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    # No config or credentials files of the machine's user.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("WORKSHOP_STATE_DIR", str(tmp_path / "state"))
    session._session.cache_clear()


def test_default_is_the_local_backend_with_a_region_and_prefix():
    cfg = load_settings()
    assert cfg.backend == "local" and cfg.is_local
    assert cfg.region == "us-east-1"
    assert cfg.local_port == DEFAULT_LOCAL_PORT
    assert cfg.name("storage") == "lambda-efs-storage"


def test_unknown_backend_says_which_values_are_valid(monkeypatch):
    monkeypatch.setenv("WORKSHOP_BACKEND", "localstack")
    with pytest.raises(ConfigError, match=r"WORKSHOP_BACKEND='localstack'.*'local'.*'aws'"):
        load_settings()


def test_aws_backend_without_a_region_says_to_set_aws_region(monkeypatch):
    monkeypatch.setenv("WORKSHOP_BACKEND", "aws")
    with pytest.raises(ConfigError, match="set AWS_REGION"):
        load_settings()


def test_aws_backend_with_a_missing_profile_and_no_region_says_to_configure_it(monkeypatch):
    """The region is then looked up in the profile, which botocore cannot find: one sentence, no traceback."""
    monkeypatch.setenv("WORKSHOP_BACKEND", "aws")
    monkeypatch.setenv("AWS_PROFILE", "nosuchprofile")
    with pytest.raises(
        ConfigError, match=r"AWS_PROFILE names a profile that is not configured.*aws configure"
    ):
        load_settings()


def test_aws_backend_rejects_a_malformed_region(monkeypatch):
    monkeypatch.setenv("WORKSHOP_BACKEND", "aws")
    monkeypatch.setenv("AWS_REGION", "virginia")
    with pytest.raises(ConfigError, match="not an AWS region"):
        load_settings()


def test_aws_backend_without_credentials_says_how_to_configure_them(monkeypatch):
    monkeypatch.setenv("WORKSHOP_BACKEND", "aws")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigError, match="no AWS credentials.*aws configure"):
        session.client("s3")


def test_aws_backend_with_credentials_talks_to_aws_not_the_local_server(monkeypatch):
    monkeypatch.setenv("WORKSHOP_BACKEND", "aws")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    s3 = session.client("s3")
    assert "amazonaws.com" in s3.meta.endpoint_url
    assert session.endpoint_url() is None


@pytest.mark.parametrize("prefix", ["Lambda", "has_underscore", "x" * 21, ""])
def test_bad_prefix_says_what_a_prefix_may_hold(monkeypatch, prefix):
    monkeypatch.setenv("WORKSHOP_PREFIX", prefix or " ")
    with pytest.raises(ConfigError, match="WORKSHOP_PREFIX"):
        load_settings()


@pytest.mark.parametrize("port", ["abc", "0", "70000"])
def test_bad_port_says_to_pick_a_port_number(monkeypatch, port):
    monkeypatch.setenv("WORKSHOP_LOCAL_PORT", port)
    with pytest.raises(ConfigError, match="WORKSHOP_LOCAL_PORT"):
        load_settings()
