"""boto3 sessions and clients for the chosen backend.

The notebooks never branch on the backend: they ask here for a client, whose endpoint is either real
AWS or the embedded local AWS (started on demand). This is the only module that starts or finds the
local server.
"""

from __future__ import annotations

import functools
import logging

import boto3
import botocore.config

from helpers.config import ConfigError, Settings, load_settings

log = logging.getLogger(__name__)

LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
_CLIENT_CONFIG = botocore.config.Config(retries={"max_attempts": 3, "mode": "standard"}, read_timeout=930)


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


@functools.lru_cache(maxsize=4)
def _session(backend: str, region: str, endpoint: str | None) -> boto3.Session:
    if backend == "local":
        return boto3.Session(region_name=region, **LOCAL_CREDENTIALS)
    sess = boto3.Session(region_name=region)
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
    kwargs.setdefault("config", _CLIENT_CONFIG)
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
