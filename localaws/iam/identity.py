"""Who is calling: an access key resolved to its secret and principal, with the session-token rules.

Keys come from (all found in O(1) per request):

- the account's root keys: the default local credentials ``testing``/``testing`` are the root user,
  which policies cannot limit (only a resource-based policy's explicit deny), so plain scripts keep
  working as on an account where they run as root;
- IAM users' access keys (``AKIA...``), an inactive key being refused like an unknown one;
- temporary credentials of STS sessions (``ASIA...``), with their session token and expiration
  (:mod:`.store` reads both from moto's IAM and STS stores).

A temporary key must come with its own session token, a long-term key without one
(https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_use-resources.html); an unknown
key, a token that does not belong to the key and an expired session are refused with the service's
own error (``InvalidClientTokenId``, ``UnrecognizedClientException``, ``ExpiredToken``... :mod:`.errors`).
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from typing import Protocol

from localaws.iam.evaluator import Principal
from localaws.iam.sigv4 import SignatureError

DEFAULT_ROOT_KEYS = {"testing": "testing"}


@dataclass(frozen=True, slots=True)
class Caller:
    """The principal a request acts as."""

    arn: str  # arn:aws:iam::123456789012:root | ...:user/<path><name> | arn:aws:sts::...:assumed-role/<role>/<session>
    account: str
    kind: str  # root | user | assumed-role
    name: str  # the user's or the role's name ("root" for the root user)
    access_key: str
    secret: str = field(repr=False)
    user_id: str = ""  # aws:userid
    session_name: str | None = None
    role_arn: str | None = None  # the role's IAM ARN (with its path) for an assumed role
    tags: dict = field(default_factory=dict)  # aws:PrincipalTag/*
    session_policy: str | None = None  # AssumeRole's Policy, if any

    @property
    def is_root(self) -> bool:
        return self.kind == "root"

    @property
    def principal(self) -> Principal:
        return Principal(self.arn, self.account, self.kind, self.role_arn)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What the account knows of an access key."""

    caller: Caller
    active: bool = True
    session_token: str | None = field(default=None, repr=False)  # temporary credentials only
    expires: float | None = None  # epoch seconds, temporary credentials only


class KeyStore(Protocol):
    def find_key(self, access_key: str) -> KeyRecord | None: ...


def root_caller(account: str, access_key: str, secret: str, partition: str = "aws") -> Caller:
    return Caller(
        f"arn:{partition}:iam::{account}:root", account, "root", "root", access_key, secret, account
    )


class Credentials:
    """Resolve an access key (and session token) to a Caller; SignatureError on any refusal."""

    def __init__(self, account: str, store: KeyStore | None, root_keys: dict[str, str] | None = None) -> None:
        self.account, self.store = account, store
        self.root_keys = dict(DEFAULT_ROOT_KEYS if root_keys is None else root_keys)
        self._roots = {key: root_caller(account, key, secret) for key, secret in self.root_keys.items()}

    def lookup(self, access_key: str, token: str | None, now: float | None = None) -> Caller:
        root = self._roots.get(access_key)
        if root is not None:
            if token:
                raise SignatureError("bad_token", "a long-term key sent with a session token")
            return root
        record = self.store.find_key(access_key) if self.store is not None else None
        if record is None or not record.active:
            raise SignatureError("unknown_key", access_key)
        if record.session_token is None:
            if token:
                raise SignatureError("bad_token", "a long-term key sent with a session token")
            return record.caller
        if not token or not hmac.compare_digest(token, record.session_token):
            raise SignatureError("bad_token", "the session token does not belong to the access key")
        if record.expires is not None and record.expires < (time.time() if now is None else now):
            raise SignatureError("expired_token", "The security token included in the request is expired")
        return record.caller
