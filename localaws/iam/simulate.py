"""IAM's policy simulator, ``SimulatePrincipalPolicy`` and ``SimulateCustomPolicy``, answered by the same evaluator.

moto 5.2.5 has neither operation. As documented (https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html,
.../API_SimulateCustomPolicy.html, and https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_testing-policies.html):

- SimulatePrincipalPolicy evaluates the identity-based policies of the user (with its groups'), group or
  role ``PolicySourceArn`` names, plus any ``PolicyInputList`` documents, limited by
  ``PermissionsBoundaryPolicyInputList`` (else the entity's own boundary); SimulateCustomPolicy
  evaluates ``PolicyInputList`` alone. A ``ResourcePolicy`` takes part as the resource's policy, with
  ``CallerArn`` (default: the simulated principal) as the caller. ``ContextEntries`` give the condition
  keys; the API operations are never performed.
- One ``EvaluationResult`` per action: its ``EvalDecision`` is the most restrictive decision over the
  requested ``ResourceArns`` (default ``*``), each resource's own in ``ResourceSpecificResults`` (the
  current behaviour, as botocore 1.44's model documents it). ``MissingContextValues`` names the
  condition keys the policies use that the context lacks (reported for a ``*`` resource, as documented).
- Results are paginated with ``MaxItems`` (default 100) and ``Marker``; an unknown ``PolicySourceArn``
  is ``NoSuchEntity`` (404).

Not reported: ``MatchedStatements`` (left empty) and the Organizations/boundary decision details.
"""

from __future__ import annotations

import re
import uuid
from xml.sax.saxutils import escape

from localaws.iam.conditions import missing_keys
from localaws.iam.errors import Answer
from localaws.iam.evaluator import Decision, Policies, Principal, Request, compile_policy, evaluate
from localaws.iam.store import MotoStore, NoSuchEntity

NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"
DEFAULT_MAX_ITEMS = 100
_RANK = {Decision.ALLOW: 0, Decision.IMPLICIT_DENY: 1, Decision.EXPLICIT_DENY: 2}


def members(params: dict, name: str) -> list[str]:
    """The values of a query-protocol list (``Name.member.1``, ``Name.member.2``...), in order."""
    pattern = re.compile(rf"^{re.escape(name)}\.member\.(\d+)$")
    found = sorted((int(m.group(1)), v) for k, v in params.items() if (m := pattern.match(k)))
    return [v for _, v in found]


def context_entries(params: dict) -> dict[str, list[str]]:
    """``ContextEntries.member.N.ContextKeyName`` / ``...ContextKeyValues.member.M`` as a context."""
    context: dict[str, list[str]] = {}
    for key, value in params.items():
        m = re.match(r"^ContextEntries\.member\.(\d+)\.ContextKeyName$", key)
        if m:
            values = members(params, f"ContextEntries.member.{m.group(1)}.ContextKeyValues")
            context[value.lower()] = values
    return context


def _principal_for(arn: str, account: str) -> Principal:
    resource = arn.split(":", 5)[-1]
    if resource.startswith("role/"):
        name = resource.rsplit("/", 1)[-1]
        return Principal(
            f"arn:aws:sts::{account}:assumed-role/{name}/simulation", account, "assumed-role", arn
        )
    if resource == "root":
        return Principal(arn, account, "root")
    return Principal(arn, account, "user")


def answer(operation: str, params: dict, store: MotoStore, account: str) -> Answer:
    """The simulator's answer to ``operation`` (SimulatePrincipalPolicy or SimulateCustomPolicy)."""
    inputs = members(params, "PolicyInputList")
    boundaries = members(params, "PermissionsBoundaryPolicyInputList")
    if operation == "SimulatePrincipalPolicy":
        source = params.get("PolicySourceArn", "")
        try:
            policies = store.policies_for_arn(source)
        except NoSuchEntity as exc:
            return _error(404, "NoSuchEntity", str(exc))
        policies.identity = list(policies.identity) + inputs
        who = _principal_for(source, account)
    else:
        policies = Policies(identity=inputs)
        who = Principal(f"arn:aws:iam::{account}:user/simulated", account, "user")
    if boundaries:
        policies.boundary = boundaries[0]
    if params.get("CallerArn"):
        who = _principal_for(params["CallerArn"], account)
    if params.get("ResourcePolicy"):
        policies.resource = params["ResourcePolicy"]
        policies.resource_account = (
            params.get("ResourceOwner", "").split(":")[4] or None if params.get("ResourceOwner") else None
        )
    context = context_entries(params)
    if who.kind == "user":
        context.setdefault("aws:username", [who.arn.rsplit("/", 1)[-1]])
    resources = members(params, "ResourceArns") or ["*"]
    documents = [
        *policies.identity,
        *([policies.boundary] if policies.boundary else []),
        *([policies.resource] if policies.resource else []),
    ]
    results = [
        _one(action, resources, who, policies, context, documents)
        for action in members(params, "ActionNames")
    ]
    try:
        start = int(params.get("Marker") or 0)
        size = max(1, min(1000, int(params.get("MaxItems") or DEFAULT_MAX_ITEMS)))
    except ValueError:
        return _error(400, "InvalidInput", "Marker and MaxItems must be numbers.")
    page, rest = results[start : start + size], results[start + size :]
    body = "".join(page)
    marker = f"<Marker>{start + size}</Marker>" if rest else ""
    request_id = str(uuid.uuid4())
    xml = (
        f'<{operation}Response xmlns="{NAMESPACE}"><{operation}Result>'
        f"<IsTruncated>{'true' if rest else 'false'}</IsTruncated>{marker}<EvaluationResults>{body}</EvaluationResults>"
        f"</{operation}Result><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{operation}Response>"
    ).encode()
    headers = [
        ("Content-Type", "text/xml"),
        ("Content-Length", str(len(xml))),
        ("x-amzn-RequestId", request_id),
    ]
    return Answer("200 OK", headers, xml)


def _one(
    action: str, resources: list[str], who: Principal, policies: Policies, context: dict, documents: list
) -> str:
    decisions = []
    for resource in resources:
        result = evaluate(Request(who, action, resource, context), policies)
        decisions.append((resource, result.decision))
    worst = max((d for _, d in decisions), key=_RANK.__getitem__)
    missing = set()
    if resources == ["*"]:
        for document in documents:
            for statement in compile_policy(document)[0]:
                missing |= missing_keys(statement.condition, context)
    missing_xml = "".join(f"<member>{escape(k)}</member>" for k in sorted(missing))
    specific = "".join(
        f"<member><EvalResourceName>{escape(r)}</EvalResourceName><EvalResourceDecision>{d.value}</EvalResourceDecision>"
        "<MatchedStatements/><MissingContextValues/></member>"
        for r, d in decisions
    )
    return (
        f"<member><EvalActionName>{escape(action)}</EvalActionName><EvalResourceName>{escape(resources[0])}</EvalResourceName>"
        f"<EvalDecision>{worst.value}</EvalDecision><MatchedStatements/>"
        f"<MissingContextValues>{missing_xml}</MissingContextValues>"
        f"<ResourceSpecificResults>{specific}</ResourceSpecificResults></member>"
    )


def _error(status: int, code: str, message: str) -> Answer:
    request_id = str(uuid.uuid4())
    body = (
        f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    reason = {400: "Bad Request", 404: "Not Found"}[status]
    return Answer(
        f"{status} {reason}", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))], body
    )
