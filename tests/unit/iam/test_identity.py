"""Access key -> caller: root keys, users' keys, sessions and their tokens
(id_credentials_temp_use-resources.html), with a stand-in for the account's key store."""

from __future__ import annotations

import pytest

from localaws.iam.identity import Caller, Credentials, KeyRecord
from localaws.iam.sigv4 import SignatureError

ACCT = "123456789012"
USER = Caller(f"arn:aws:iam::{ACCT}:user/u", ACCT, "user", "u", "AKIAUSER", "user-secret", "AIDAU")
SESSION = Caller(
    f"arn:aws:sts::{ACCT}:assumed-role/r/s",
    ACCT,
    "assumed-role",
    "r",
    "ASIASESSION",
    "s-secret",
    "AROAR:s",
    "s",
    f"arn:aws:iam::{ACCT}:role/r",
)


class Keys:
    def __init__(self, *records: KeyRecord) -> None:
        self.records = {r.caller.access_key: r for r in records}

    def find_key(self, access_key):
        return self.records.get(access_key)


def credentials(*records: KeyRecord) -> Credentials:
    return Credentials(ACCT, Keys(*records))


def kind(fn) -> str:
    with pytest.raises(SignatureError) as caught:
        fn()
    return caught.value.kind


def test_the_default_local_keys_are_the_account_root():
    caller = credentials().lookup("testing", None)
    assert (caller.arn, caller.kind, caller.user_id, caller.secret) == (
        f"arn:aws:iam::{ACCT}:root",
        "root",
        ACCT,
        "testing",
    )
    assert kind(lambda: credentials().lookup("testing", "a-token")) == "bad_token"


def test_root_keys_can_be_configured():
    assert Credentials(ACCT, Keys(), {"ROOTKEY": "s"}).lookup("ROOTKEY", None).is_root
    assert kind(lambda: Credentials(ACCT, Keys(), {"ROOTKEY": "s"}).lookup("testing", None)) == "unknown_key"


def test_user_keys_and_their_status():
    assert credentials(KeyRecord(USER)).lookup("AKIAUSER", None) is USER
    assert kind(lambda: credentials(KeyRecord(USER, active=False)).lookup("AKIAUSER", None)) == "unknown_key"
    assert kind(lambda: credentials(KeyRecord(USER)).lookup("AKIAUSER", "token")) == "bad_token"
    assert kind(lambda: credentials().lookup("AKIANOBODY", None)) == "unknown_key"


def test_a_temporary_key_needs_its_own_unexpired_token():
    store = credentials(KeyRecord(SESSION, session_token="tok", expires=2000.0))
    assert store.lookup("ASIASESSION", "tok", now=1999.0) is SESSION
    assert kind(lambda: store.lookup("ASIASESSION", None, now=1999.0)) == "bad_token"
    assert kind(lambda: store.lookup("ASIASESSION", "tok2", now=1999.0)) == "bad_token"
    assert kind(lambda: store.lookup("ASIASESSION", "tok", now=2001.0)) == "expired_token"
