"""boto3 sessions and clients for the chosen backend.

The notebooks never branch on the backend: they ask here for a client, whose endpoint is either real
AWS or the embedded local AWS (started on demand). This is the only module that starts or finds the
local server.
"""

from __future__ import annotations

import functools
import logging
import os

import boto3
import botocore.config
from botocore.exceptions import ProfileNotFound

from helpers.config import ConfigError, Settings, load_settings, profile_not_found

log = logging.getLogger(__name__)

LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# read_timeout past Lambda's 900 s maximum, so a long synchronous invoke (the seeder) is not cut off, and
# TCP keepalive so a NAT or firewall does not drop the silent connection meanwhile:
# https://docs.aws.amazon.com/lambda/latest/dg/troubleshooting-invocation.html (long invocations)
# https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html (tcp_keepalive)
_CLIENT_CONFIG = botocore.config.Config(
    retries={"max_attempts": 3, "mode": "standard"}, read_timeout=930, tcp_keepalive=True
)
# On the aws backend an endpoint configured outside the workshop (AWS_ENDPOINT_URL, or endpoint_url in
# ~/.aws/config) would send every call somewhere else without a word: refuse the variables, ignore the
# file. https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html
_AWS_ONLY = botocore.config.Config(ignore_configured_endpoint_urls=True, tcp_keepalive=True)
_AWS_CLIENT_CONFIG = _CLIENT_CONFIG.merge(_AWS_ONLY)


def _check_no_endpoint_override() -> None:
    names = sorted(k for k in os.environ if k == "AWS_ENDPOINT_URL" or k.startswith("AWS_ENDPOINT_URL_"))
    if names:
        raise ConfigError(
            f"WORKSHOP_BACKEND=aws but {names[0]}={os.environ[names[0]]!r} is set, which would send the "
            f"workshop's AWS calls there instead of AWS: unset {' '.join(names)} (or use WORKSHOP_BACKEND=local)."
        )


def settings() -> Settings:
    return load_settings()


def endpoint_url(cfg: Settings | None = None) -> str | None:
    """The local server's URL (starting it if needed), or None on real AWS."""
    cfg = cfg or load_settings()
    if not cfg.is_local:
        return None
    from localaws import server

    return server.ensure_running(cfg.state_dir, cfg.local_port, port_setting="WORKSHOP_LOCAL_PORT")


def local_server_started_at(cfg: Settings | None = None) -> float | None:
    """When the local server now running was started (epoch seconds), or None."""
    cfg = cfg or load_settings()
    if not cfg.is_local:
        return None
    from localaws import server

    return (server.status(cfg.state_dir) or {}).get("started")


def stop_local_server(cfg: Settings | None = None) -> bool:
    """Stop the local server and every function process it started. True if one was running."""
    cfg = cfg or load_settings()
    if not cfg.is_local:
        return False
    from localaws import server

    return server.stop(cfg.state_dir)


class _LocalSession(boto3.Session):
    """A boto3 session whose every client talks to the embedded local AWS, so a library handed the
    session (the ``sagemaker`` SDK's ``session=``) reaches the local server as the notebooks' clients do."""

    def __init__(self, endpoint: str, **kwargs):
        super().__init__(**kwargs)
        self.workshop_endpoint = endpoint

    def client(self, *args, **kwargs):
        kwargs.setdefault("endpoint_url", self.workshop_endpoint)
        if kwargs.get("config") is None:
            kwargs["config"] = _CLIENT_CONFIG
        return super().client(*args, **kwargs)

    def resource(self, *args, **kwargs):
        kwargs.setdefault("endpoint_url", self.workshop_endpoint)
        return super().resource(*args, **kwargs)


class _AwsSession(boto3.Session):
    """A boto3 session for real AWS whose every client, also one a library makes with its own config
    (the ``sagemaker`` SDK passes one), ignores configured endpoints and keeps TCP keepalive, and whose
    clients are refused while an ``AWS_ENDPOINT_URL*`` variable is set (even one set after the session)."""

    def client(self, *args, **kwargs):
        return super().client(*args, **_aws_only(kwargs))

    def resource(self, *args, **kwargs):
        return super().resource(*args, **_aws_only(kwargs))


def _aws_only(kwargs: dict) -> dict:
    """A client's or resource's arguments with the aws backend's config merged into any given (after
    refusing an ``AWS_ENDPOINT_URL*`` variable)."""
    _check_no_endpoint_override()
    given = kwargs.get("config")
    return {**kwargs, "config": _AWS_CLIENT_CONFIG if given is None else given.merge(_AWS_ONLY)}


@functools.lru_cache(maxsize=4)
def _session(backend: str, region: str, endpoint: str | None) -> boto3.Session:
    if backend == "local":
        return _LocalSession(endpoint, region_name=region, **LOCAL_CREDENTIALS)
    _check_no_endpoint_override()
    try:
        sess = _AwsSession(region_name=region)
    except ProfileNotFound as exc:
        raise profile_not_found(exc) from exc
    if sess.get_credentials() is None:
        raise ConfigError(
            "WORKSHOP_BACKEND=aws but no AWS credentials were found: run 'aws configure' (or set "
            "AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or unset WORKSHOP_BACKEND "
            "to use the local backend."
        )
    return sess


def session() -> boto3.Session:
    """A boto3 session for the configured backend (cached)."""
    cfg = load_settings()
    return _session(cfg.backend, cfg.region, endpoint_url(cfg))


def client(service: str, **kwargs):
    """A boto3 client for ``service`` on the configured backend, e.g. ``client("lambda")``."""
    cfg = load_settings()
    url = endpoint_url(cfg)
    sess = _session(cfg.backend, cfg.region, url)
    kwargs.setdefault("config", _CLIENT_CONFIG if url else _AWS_CLIENT_CONFIG)
    if url:
        kwargs.setdefault("endpoint_url", url)
    return sess.client(service, **kwargs)


def account_id() -> str:
    return client("sts").get_caller_identity()["Account"]


def describe() -> dict:
    """What the notebooks are talking to, for the first cell of each notebook."""
    cfg = load_settings()
    return {
        "backend": cfg.backend,
        "region": cfg.region,
        "prefix": cfg.prefix,
        "endpoint": endpoint_url(cfg) or "AWS",
        "account": account_id(),
    }
