"""Before anything is created on AWS: credentials, region, permissions and Lambda concurrency, checked.

``run`` is the first step of ``01_setup_efs.ipynb`` on the aws backend (on the local backend it says it
is skipped and checks nothing). Each check answers with plain data, and a failure that would stop the
workshop later is a ``PreflightError`` of one sentence naming the fix:

- **credentials and region**: ``sts:GetCallerIdentity`` (which needs no permission), with profile,
  SSO and expired-token errors each turned into one sentence;
- **permissions**: every action of ``policies/learner-policy.json`` simulated for the caller with
  ``iam:SimulatePrincipalPolicy`` where the caller may; otherwise the actions that could not be
  checked are listed, not guessed
  (https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html);
- **concurrency**: ``lambda:GetAccountSettings``. Lambda keeps 100 of the account's concurrency
  unreserved, and Provisioned Concurrency comes out of the rest; new accounts have reduced quotas, so
  there may be no room at all. Then 03 runs with Provisioned Concurrency 0 (:func:`provisioned_concurrency`
  checks the same room when ``WORKSHOP_PROVISIONED_CONCURRENCY`` is not set, so 03 never deploys an alias
  that CloudFormation would roll back) until a quota increase is granted. Provisioned Concurrency already
  allocated to this workshop's ``provisioned`` alias counts against the unreserved concurrency, so it is
  added back: re-running 01 or 03 after 03 keeps the environment it has.
  https://docs.aws.amazon.com/lambda/latest/dg/limits.html
  https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

from helpers import session
from helpers.config import REPO_ROOT, ConfigError, Settings, load_settings

log = logging.getLogger(__name__)

POLICY_FILE = REPO_ROOT / "policies" / "learner-policy.json"
UNRESERVED_MINIMUM = 100  # Lambda keeps this much of the account's concurrency unreserved
DEFAULT_PROVISIONED = 1
_SIMULATE_BATCH = 50


class PreflightError(RuntimeError):
    """Something that would make the workshop fail on AWS; the message says what to do."""


def _setting() -> int | None:
    """``WORKSHOP_PROVISIONED_CONCURRENCY`` as a number, or None when it is not set."""
    raw = os.environ.get("WORKSHOP_PROVISIONED_CONCURRENCY", "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ConfigError(
            f"WORKSHOP_PROVISIONED_CONCURRENCY={raw!r} is not a whole number: set it to 0 (no Provisioned "
            "Concurrency, for accounts without room for it) or 1."
        )
    return int(raw)


def provisioned_concurrency(
    default: int = DEFAULT_PROVISIONED, echo: Callable[[str], None] | None = print
) -> int:
    """How many Provisioned Concurrency environments 03 deploys.

    ``WORKSHOP_PROVISIONED_CONCURRENCY`` when set; otherwise ``default`` (1), except on the aws backend when
    the account has no room for it (see :func:`concurrency`): then 0, said in one line, instead of a deploy
    that CloudFormation rolls back.
    """
    chosen = _setting()
    if chosen is not None:
        return chosen
    cfg = load_settings()
    if cfg.is_local:
        return default
    try:
        quota = concurrency(default, function=cfg.name("inference"))
    except (ClientError, BotoCoreError) as exc:
        log.warning(
            "could not read the account's Lambda concurrency (%s): deploying %d environment(s)", exc, default
        )
        return default
    if not quota["fits"]:
        message = f"Provisioned Concurrency 0: {quota['advice']}"
        log.info(message)
        if echo:
            echo(message)
    return quota["provisioned_concurrency"]


def identity() -> dict[str, str]:
    """Who the workshop runs as: account, ARN and region; PreflightError naming the fix otherwise."""
    cfg = load_settings()
    try:
        who = session.client("sts").get_caller_identity()
    except (UnauthorizedSSOTokenError, TokenRetrievalError, SSOError) as exc:
        raise PreflightError(
            f"Your AWS SSO session is missing or expired ({type(exc).__name__}): run 'aws sso login"
            f"{_profile_flag()}' and run this cell again."
        ) from exc
    except ProfileNotFound as exc:
        raise PreflightError(f"{exc}: run 'aws configure --profile <name>' or unset AWS_PROFILE.") from exc
    except NoCredentialsError as exc:
        raise PreflightError(
            "No AWS credentials were found: run 'aws configure' (or 'aws configure sso'), or set AWS_PROFILE."
        ) from exc
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        raise PreflightError(
            f"AWS refused your credentials ({code}: {exc.response['Error']['Message']}): they are expired or "
            f"wrong; refresh them (aws sso login{_profile_flag()}, or new access keys) and run this cell again."
        ) from exc
    except ConfigError as exc:
        raise PreflightError(str(exc)) from exc
    except BotoCoreError as exc:
        raise PreflightError(
            f"Could not reach AWS STS in {cfg.region} ({exc}): check the region (AWS_REGION) and your network."
        ) from exc
    return {"account": who["Account"], "arn": who["Arn"], "region": cfg.region}


def _profile_flag() -> str:
    profile = os.environ.get("AWS_PROFILE")
    return f" --profile {profile}" if profile else ""


def learner_policy() -> dict:
    return json.loads(POLICY_FILE.read_text())


def _principal_arn(arn: str) -> tuple[str, str]:
    """The IAM ARN to simulate, and a note when it is a guess.

    An assumed role's session ARN becomes the role's ARN, whose path only ``iam:GetRole`` on the role tells.
    The learner policy does not grant that on the learner's own role (it grants IAM on the workshop's roles
    only), and roles of IAM Identity Center (SSO) and SageMaker Studio have paths: then the ARN without a path
    is a guess, and the note says so in one sentence.
    """
    found = re.match(r"^arn:(aws[\w-]*):sts::(\d{12}):assumed-role/([^/]+)/", arn)
    if not found:
        return arn, ""
    partition, account, role = found.groups()
    try:
        return session.client("iam").get_role(RoleName=role)["Role"]["Arn"], ""  # includes the role's path
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        note = (
            f"iam:GetRole on your own role {role} was refused ({code}), which policies/learner-policy.json does "
            "not grant: the check below assumes the role has no path (IAM Identity Center and SageMaker Studio "
            "roles have one); the workshop itself does not need it"
        )
        return f"arn:{partition}:iam::{account}:role/{role}", note


def _sample_resource(resource: str, account: str, region: str, prefix: str = "lambda-efs") -> str:
    """A concrete ARN for a policy Resource pattern, with this workshop's prefix, to simulate an action against.

    The file names resources ``lambda-efs-*``; with another WORKSHOP_PREFIX the workshop's resources are
    ``<prefix>-*``, so that is what is simulated: an unedited policy then shows up as denied.
    """
    if resource == "*":
        return "*"
    resource = resource.replace("lambda-efs-", f"{prefix}-")
    parts = resource.split(":")
    if len(parts) >= 6:
        parts[3] = region if parts[3] == "*" else parts[3]
        parts[4] = account if parts[4] == "*" else parts[4]
    return ":".join(parts).replace("*", "preflight")


def _context(statement: dict) -> list[dict]:
    """The simulator's context entries that meet a statement's ``StringEquals`` conditions (for example
    ``iam:AWSServiceName`` of the service-linked roles), so an action it allows is simulated as allowed."""
    equals = statement.get("Condition", {}).get("StringEquals", {})
    return [
        {
            "ContextKeyName": key,
            "ContextKeyValues": [v if isinstance(v, str) else v[0]],
            "ContextKeyType": "string",
        }
        for key, v in equals.items()
    ]


def permissions(caller_arn: str, account: str, region: str, prefix: str = "lambda-efs") -> dict:
    """Simulate every action of the learner policy for the caller.

    Returns ``{"checked": bool, "denied": [...], "allowed": n, "unchecked": [...], "reason": str}``.
    """
    statements = [s for s in learner_policy()["Statement"] if s.get("Effect") == "Allow"]
    iam = session.client("iam")
    principal, note = _principal_arn(caller_arn)
    denied, allowed, unchecked, reason = [], 0, [], ""
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement.get("Resource", "*")
        pattern = resources if isinstance(resources, str) else resources[0]
        resource = _sample_resource(pattern, account, region, prefix)
        for start in range(0, len(actions), _SIMULATE_BATCH):
            batch = actions[start : start + _SIMULATE_BATCH]
            if reason:
                unchecked += batch
                continue
            try:
                context = {"ContextEntries": _context(statement)} if _context(statement) else {}
                pages = iam.get_paginator("simulate_principal_policy").paginate(
                    PolicySourceArn=principal, ActionNames=batch, ResourceArns=[resource], **context
                )
                results = [r for page in pages for r in page["EvaluationResults"]]
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                reason = (
                    f"the policy simulator does not know {principal} (NoSuchEntity): a role with a path, such "
                    "as an IAM Identity Center role, needs iam:GetRole on itself for this cell to find its ARN"
                    if code == "NoSuchEntity"
                    else f"the policy simulator is not open to you ({code}): iam:SimulatePrincipalPolicy on "
                    "your own role or user would let this cell check"
                )
                unchecked += batch
                continue
            for result in results:
                if result["EvalDecision"] == "allowed":
                    allowed += 1
                else:
                    denied.append(result["EvalActionName"])
    return {
        "checked": not unchecked,
        "principal": principal,
        "allowed": allowed,
        "denied": sorted(set(denied)),
        "unchecked": sorted(set(unchecked)),
        "reason": reason,
        "note": note,
    }


def _allocated(function: str) -> int:
    """Provisioned Concurrency the function's ``provisioned`` alias holds already (0 when none)."""
    lam = session.client("lambda")
    try:
        config = lam.get_provisioned_concurrency_config(FunctionName=function, Qualifier="provisioned")
    except ClientError as exc:
        if exc.response["Error"]["Code"] in (
            "ProvisionedConcurrencyConfigNotFoundException",
            "ResourceNotFoundException",
        ):
            return 0
        raise
    return int(config.get("RequestedProvisionedConcurrentExecutions", 0))


def concurrency(wanted: int | None = None, function: str | None = None) -> dict:
    """The account's Lambda concurrency, the room left for Provisioned Concurrency, and what 03 should use.

    ``function``: the workshop's inference function, whose alias's current allocation is added back to
    the room (it is already subtracted from the unreserved concurrency).
    """
    chosen = _setting()
    wanted = (DEFAULT_PROVISIONED if chosen is None else chosen) if wanted is None else wanted
    settings = session.client("lambda").get_account_settings()
    limit = settings["AccountLimit"]
    total, unreserved = limit["ConcurrentExecutions"], limit["UnreservedConcurrentExecutions"]
    held = _allocated(function) if function else 0
    room = max(0, unreserved + held - UNRESERVED_MINIMUM)
    fits = wanted <= room
    if fits:
        advice = f"room for {room} Provisioned Concurrency environment(s); 03 will use {wanted}."
        if 2 * wanted > room:  # 04's provisioned burst allocates as many again, on a fresh version
            advice += (
                f" 04's provisioned burst needs {wanted} more at the same time, so it gets {room - wanted} "
                "(its requests spill over to on-demand) unless the quota is raised."
            )
    else:
        advice = (
            f"the account's concurrency quota is {total} with {unreserved} unreserved, and Lambda keeps "
            f"{UNRESERVED_MINIMUM} unreserved, so there is no room for {wanted} Provisioned Concurrency "
            "environment(s): 03 deploys the 'provisioned' alias without it (as WORKSHOP_PROVISIONED_CONCURRENCY=0 "
            "does) and 04 compares on-demand only; request a higher 'Concurrent executions' quota in Service "
            "Quotas to get it back."
        )
    return {
        "concurrent_executions": total,
        "unreserved": unreserved,
        "held_by_this_workshop": held,
        "room_for_provisioned": room,
        "provisioned_concurrency": wanted if fits else 0,
        "fits": fits,
        "advice": advice,
    }


def spare_provisioned() -> int:
    """Provisioned Concurrency the account can allocate now, on top of what is allocated already.

    For 04's provisioned burst, which allocates its own on a fresh version while 03's alias keeps its
    environments: ``min(ENVIRONMENTS, spare_provisioned())`` is what it can get without AWS refusing the
    PutProvisionedConcurrencyConfig (Lambda keeps 100 unreserved).
    """
    limit = session.client("lambda").get_account_settings()["AccountLimit"]
    return max(0, limit["UnreservedConcurrentExecutions"] - UNRESERVED_MINIMUM)


def run(cfg: Settings | None = None, echo=print) -> dict:
    """All checks for the aws backend, each summarised in one line; skipped (one line) on the local backend."""
    cfg = cfg or load_settings()
    if cfg.is_local:
        message = "Preflight skipped: the local backend needs no AWS account, permissions or quota."
        if echo:
            echo(message)
        return {"skipped": message}
    who = identity()
    perms = permissions(who["arn"], who["account"], who["region"], cfg.prefix)
    quota = concurrency(function=cfg.name("inference"))
    lines = [f"credentials: {who['arn']} in account {who['account']}, region {who['region']}"]
    if perms["note"]:
        lines.append(f"role: {perms['note']}")
    if perms["denied"]:
        lines.append(
            f"permissions: DENIED {', '.join(perms['denied'])}: attach policies/learner-policy.json to "
            f"{perms['principal']} (replace lambda-efs in it if you set WORKSHOP_PREFIX)"
        )
    elif perms["unchecked"]:
        lines.append(
            f"permissions: {len(perms['unchecked'])} actions could not be checked ({perms['reason']}); "
            "carrying on (the list is in the result's permissions.unchecked)"
        )
    else:
        lines.append(f"permissions: all {perms['allowed']} actions of policies/learner-policy.json allowed")
    lines.append(f"concurrency: {quota['advice']}")
    if echo:
        for line in lines:
            echo(line)
    if perms["denied"]:
        denied = next(line for line in lines if line.startswith("permissions: DENIED"))
        raise PreflightError(denied[len("permissions: ") :] + ", then run this cell again.")
    return {"identity": who, "permissions": perms, "concurrency": quota, "summary": lines}
