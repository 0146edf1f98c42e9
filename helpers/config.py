"""Workshop settings read from the environment: backend, resource-name prefix, region, state folder.

Every knob has a default that works offline, so a learner with no AWS account runs the workshop
without setting anything. Real AWS costs money and is only used when ``WORKSHOP_BACKEND=aws``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("local", "aws")
DEFAULT_PREFIX = "lambda-efs"
DEFAULT_LOCAL_REGION = "us-east-1"
DEFAULT_LOCAL_PORT = 4577
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")


class ConfigError(RuntimeError):
    """A setting is wrong or missing; the message says which variable to set and how."""


@dataclass(frozen=True)
class Settings:
    backend: str
    prefix: str
    region: str
    state_dir: Path
    local_port: int
    quick: bool = False  # WORKSHOP_QUICK=1: notebooks shrink their long steps (CI, make test)

    @property
    def is_local(self) -> bool:
        return self.backend == "local"

    def name(self, suffix: str) -> str:
        """A resource name derived from the prefix, e.g. ``name("storage")`` -> ``lambda-efs-storage``."""
        return f"{self.prefix}-{suffix}"


def state_dir() -> Path:
    """The folder for local state (server pid and port, EFS folders, results): ``.workshop/`` by default."""
    return Path(os.environ.get("WORKSHOP_STATE_DIR") or REPO_ROOT / ".workshop").resolve()


def local_port() -> int:
    raw = os.environ.get("WORKSHOP_LOCAL_PORT", str(DEFAULT_LOCAL_PORT))
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise ConfigError(
            f"WORKSHOP_LOCAL_PORT={raw!r} is not a port number: set it to one between 1024 and 65535."
        )
    return port


def _configured_region() -> str | None:
    """The region from the AWS config file or profile, as the AWS CLI would find it."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.session.Session().region_name
    except ProfileNotFound as exc:  # a typo in AWS_PROFILE: one sentence, not botocore's traceback
        raise profile_not_found(exc) from exc


def profile_not_found(exc: Exception) -> ConfigError:
    """The error for botocore's ``ProfileNotFound``, naming the fix."""
    return ConfigError(
        f"AWS_PROFILE names a profile that is not configured ({exc}): run 'aws configure --profile <name>' "
        "or 'aws configure sso', or unset AWS_PROFILE."
    )


def load_settings() -> Settings:
    """Read and validate the settings; raise ConfigError with the fix when one is wrong."""
    backend = os.environ.get("WORKSHOP_BACKEND", "local").strip().lower() or "local"
    if backend not in BACKENDS:
        raise ConfigError(
            f"WORKSHOP_BACKEND={backend!r} is not a backend: set it to 'local' (the default, no AWS account "
            "needed) or 'aws' (real AWS, costs money)."
        )
    prefix = os.environ.get("WORKSHOP_PREFIX", DEFAULT_PREFIX).strip()
    if not _PREFIX_RE.match(prefix):
        raise ConfigError(
            f"WORKSHOP_PREFIX={prefix!r} is not usable in resource names: use 1-20 lowercase letters, digits "
            "or dashes, starting with a letter (e.g. 'lambda-efs')."
        )
    region = (
        os.environ.get("WORKSHOP_REGION")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
    )
    if backend == "aws" and not region:
        region = _configured_region()
    if backend == "aws" and not region:
        raise ConfigError(
            "WORKSHOP_BACKEND=aws needs a region: set AWS_REGION (e.g. export AWS_REGION=us-east-1) "
            "or configure one with 'aws configure'."
        )
    if backend == "aws" and region and not re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", region):
        raise ConfigError(f"AWS_REGION={region!r} is not an AWS region name: use one like 'us-east-1'.")
    return Settings(
        backend=backend,
        prefix=prefix,
        region=region or DEFAULT_LOCAL_REGION,
        state_dir=state_dir(),
        local_port=local_port() if backend == "local" else DEFAULT_LOCAL_PORT,
        quick=os.environ.get("WORKSHOP_QUICK", "") not in ("", "0", "false"),
    )
