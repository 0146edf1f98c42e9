"""The aws backend's clients go to AWS and nowhere else, with keepalive on long calls (no network needed)."""

from __future__ import annotations

import pytest

from helpers import session
from helpers.config import ConfigError


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    for key in list(__import__("os").environ):
        if key.startswith("AWS_ENDPOINT_URL") or key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("WORKSHOP_BACKEND", "aws")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    session._session.cache_clear()
    yield tmp_path
    session._session.cache_clear()


def test_aws_clients_talk_to_aws_with_tcp_keepalive(aws_env):
    lam = session.client("lambda")
    assert lam.meta.endpoint_url == "https://lambda.eu-west-1.amazonaws.com"
    assert lam.meta.config.tcp_keepalive is True and lam.meta.config.read_timeout >= 900


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA"])
def test_an_endpoint_variable_is_refused_on_the_aws_backend(aws_env, monkeypatch, variable):
    monkeypatch.setenv(variable, "http://127.0.0.1:4566")
    with pytest.raises(ConfigError, match=rf"{variable}='http://127.0.0.1:4566' is set.*unset {variable}"):
        session.client("lambda")


def test_an_endpoint_in_the_config_file_is_ignored_on_the_aws_backend(aws_env):
    (aws_env / "config").write_text("[default]\nendpoint_url = http://127.0.0.1:4566\n")
    assert session.client("s3").meta.endpoint_url.endswith(".amazonaws.com")


def test_a_profile_that_does_not_exist_is_one_sentence_with_the_fix(aws_env, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "nosuchprofile")
    with pytest.raises(ConfigError, match="not configured.*aws configure sso"):
        session.client("sts")


def test_the_local_backend_keeps_its_own_endpoint_whatever_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKSHOP_BACKEND", "local")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setattr(session, "endpoint_url", lambda cfg=None: "http://127.0.0.1:4631")
    session._session.cache_clear()
    assert session.client("lambda").meta.endpoint_url == "http://127.0.0.1:4631"
    session._session.cache_clear()


def test_a_library_handed_the_aws_session_gets_clients_that_go_to_aws_with_keepalive(aws_env):
    """05 hands session.session() to the sagemaker SDK, which makes its clients with its own config."""
    import botocore.config

    (aws_env / "config").write_text("[default]\nendpoint_url = http://127.0.0.1:4566\n")
    own = botocore.config.Config(user_agent_extra="sdk/1", retries={"max_attempts": 10})
    sm = session.session().client("sagemaker", "eu-west-1", config=own)
    assert sm.meta.endpoint_url == "https://api.sagemaker.eu-west-1.amazonaws.com"
    assert sm.meta.config.tcp_keepalive is True and "sdk/1" in sm.meta.config.user_agent_extra
    assert session.session().client("s3").meta.endpoint_url.endswith(".amazonaws.com")


def test_an_endpoint_variable_set_after_the_session_is_still_refused(aws_env, monkeypatch):
    sess = session.session()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", "http://127.0.0.1:4566")
    with pytest.raises(ConfigError, match="AWS_ENDPOINT_URL_SAGEMAKER"):
        sess.client("sagemaker")
