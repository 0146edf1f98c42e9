"""The global condition keys of a request, as IAM fills them for the caller.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html:

- ``aws:PrincipalArn``: the user's ARN, the *role's* ARN for an assumed role (not the session's),
  ``arn:aws:iam::<account>:root`` for the root user; ``aws:PrincipalAccount``; ``aws:PrincipalType``
  ``Account`` | ``User`` | ``AssumedRole``; ``aws:userid`` (the account id for root, the user's unique id,
  ``<role id>:<session name>`` for a session); ``aws:username`` (IAM users only);
  ``aws:PrincipalTag/<key>`` (the user's or the role's tags);
- ``aws:CurrentTime`` (ISO 8601) and ``aws:EpochTime``; ``aws:SecureTransport`` (``false``: the local
  server speaks plain HTTP); ``aws:SourceIp`` (the client's address as the server sees it);
  ``aws:RequestedRegion`` (the region of the signature's scope); ``aws:ViaAWSService`` ``false``.

Not filled (the key is then missing, as C1 of :mod:`.conditions` says): ``aws:MultiFactorAuthPresent``
and ``aws:MultiFactorAuthAge`` (no MFA locally), ``aws:SourceVpc``/``aws:SourceVpce`` (requests do not
come through VPC endpoints), Organizations keys (no Organization), ``aws:CalledVia``.
"""

from __future__ import annotations

import time

from localaws.iam.conditions import Context
from localaws.iam.identity import Caller

_TYPES = {"root": "Account", "user": "User", "assumed-role": "AssumedRole"}


def request_context(caller: Caller, region: str, source_ip: str | None, now: float | None = None) -> Context:
    """The context keys (lower-cased) every check of ``caller``'s request sees."""
    now = time.time() if now is None else now
    context: Context = {
        "aws:principalarn": [caller.role_arn or caller.arn],
        "aws:principalaccount": [caller.account],
        "aws:principaltype": [_TYPES.get(caller.kind, caller.kind)],
        "aws:userid": [caller.user_id],
        "aws:currenttime": [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))],
        "aws:epochtime": [str(int(now))],
        "aws:securetransport": ["false"],
        "aws:requestedregion": [region],
        "aws:viaawsservice": ["false"],
    }
    if caller.kind == "user":
        context["aws:username"] = [caller.name]
    if source_ip:
        context["aws:sourceip"] = [source_ip]
    for key, value in caller.tags.items():
        context[f"aws:principaltag/{key.lower()}"] = [value]
    return context
