"""Policy evaluation as AWS documents it, for requests within one account.

Rules, from https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
(E*), https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html (R*),
https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html (B1) and
https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session (S1):

- E1 Every request is implicitly denied, except the account's root user, which has full access
  (an explicit deny in a resource-based policy still applies to it).
- E2 An explicit Deny in any applicable policy (resource-based, identity-based, permissions boundary,
  session policy) denies the request. (SCPs/RCPs: there is no Organization locally.)
- R1 Within one account, the request is allowed if an identity-based policy OR a resource-based policy
  allows it ("the union of the permissions of the two types").
- R2 A resource-based policy that names the IAM user, or the role *session* ARN, allows even if no
  identity-based policy does and regardless of the permissions boundary and session policy; one that
  names the role ARN is still limited by them (implicit deny). A principal given as the account
  (``"123456789012"``, ``arn:aws:iam::123456789012:root``) delegates to identity-based policies: it
  does not allow on its own.
- R3 A role trust policy (``sts:AssumeRole*``) must itself allow the caller: an identity-based allow
  alone is not enough (role trust policies and KMS key policies are the exceptions to R1); a trust
  policy naming the account needs an identity-based allow too.
- B1 A permissions boundary limits identity-based permissions: an identity-based allow counts only if
  the boundary allows too.
- S1 A session policy (AssumeRole's ``Policy``/``PolicyArns``) limits the session as a boundary does.
- P1 A service principal (``lambda.amazonaws.com``) and an anonymous caller are allowed only by a
  resource-based policy that names them (or ``"*"``).

Statement matching (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html):
Action/NotAction (service prefix and name case-insensitive, ``*`` and ``?``), Resource/NotResource (see
:func:`.conditions.arn_like`; a request on ``*`` — an action without resource-level permissions —
matches only ``"*"``), Principal/NotPrincipal (resource-based policies), Condition (:mod:`.conditions`).
A Statement may be one object or a list; Action and Resource a string or a list.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache

from localaws.iam.conditions import Context, Unresolved, arn_like, evaluate_block, glob, substitute


class Decision(Enum):
    """The three outcomes, named as SimulatePrincipalPolicy names them (EvalDecision)."""

    ALLOW = "allowed"
    EXPLICIT_DENY = "explicitDeny"
    IMPLICIT_DENY = "implicitDeny"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who asks. ``arn`` is the session ARN for an assumed role (``role_arn`` the role's), the service
    name for a service principal (``lambda.amazonaws.com``), ``*`` for an anonymous caller."""

    arn: str
    account: str
    kind: str  # root | user | assumed-role | service | anonymous
    role_arn: str | None = None


@dataclass(slots=True)
class Request:
    principal: Principal
    action: str  # service:Action
    resource: str  # an ARN, or "*"
    context: Context = field(default_factory=dict)  # lower-cased keys


@dataclass(slots=True)
class Policies:
    """What applies to one request. Documents are JSON text (compiled once per text) or dicts."""

    identity: list = field(
        default_factory=list
    )  # inline + managed: the user's (and its groups') or the role's
    boundary: object | None = None
    session: list | None = None  # None: the session has no session policy
    resource: object | None = None  # the target's resource-based policy, if any
    resource_account: str | None = None  # None: the caller's own account
    trust: bool = False  # ``resource`` is a role trust policy (R3)


@dataclass(slots=True)
class Result:
    decision: Decision
    policy_type: str | None = None  # which policy type decided a denial, for the message

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


@dataclass(frozen=True, slots=True)
class _Statement:
    """One statement compiled once per document: actions lower-cased into a set plus one regex for the
    wildcard ones, so that a decision costs set look-ups."""

    effect: str
    not_action: bool
    exact_actions: frozenset
    action_regex: re.Pattern | None
    not_resource: bool
    resources: tuple | None  # None: no Resource/NotResource element
    principal: object | None
    not_principal: bool
    condition: dict | None


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _compile_actions(patterns) -> tuple[frozenset, re.Pattern | None]:
    exact, wild = set(), []
    for pattern in _as_list(patterns):
        pattern = str(pattern).lower()
        if "*" in pattern or "?" in pattern:
            wild.append(glob(pattern).pattern)
        else:
            exact.add(pattern)
    regex = re.compile("|".join(f"(?:{w})" for w in wild), re.DOTALL) if wild else None
    return frozenset(exact), regex


@lru_cache(maxsize=4096)
def _compile(document: str) -> tuple[tuple[_Statement, ...], bool]:
    try:
        doc = json.loads(document)
    except ValueError:
        return (), False  # IAM refuses an unparsable document when it is written; it grants nothing
    if not isinstance(doc, dict):
        return (), False
    statements = doc.get("Statement", [])
    out = []
    for st in _as_list(statements):
        if not isinstance(st, dict):
            continue
        not_action = "NotAction" in st
        exact, regex = _compile_actions(st.get("NotAction" if not_action else "Action", []))
        not_resource = "NotResource" in st
        raw = st.get("NotResource" if not_resource else "Resource")
        out.append(
            _Statement(
                effect=st.get("Effect", ""),
                not_action=not_action,
                exact_actions=exact,
                action_regex=regex,
                not_resource=not_resource,
                resources=tuple(str(r) for r in _as_list(raw)) if raw is not None else None,
                principal=st.get("NotPrincipal", st.get("Principal")),
                not_principal="NotPrincipal" in st,
                condition=st.get("Condition") if isinstance(st.get("Condition"), dict) else None,
            )
        )
    return tuple(out), doc.get("Version") == "2012-10-17"


def compile_policy(policy) -> tuple[tuple[_Statement, ...], bool]:
    """(statements, policy variables enabled) of a document given as JSON text or a dict."""
    if isinstance(policy, str):
        return _compile(policy)
    return _compile(json.dumps(policy, sort_keys=True))


def _resource_matches(patterns: tuple, resource: str, context: Context, variables: bool) -> bool:
    for pattern in patterns:
        if pattern == "*":
            return True
        if resource == "*":
            continue
        try:
            pattern = substitute(pattern, context, variables)
        except Unresolved:
            continue
        if pattern == resource or arn_like(pattern, resource):
            return True
    return False


def _principal_values(element) -> list[tuple[str, str]]:
    if element == "*":
        return [("AWS", "*")]
    if not isinstance(element, dict):
        return []
    return [(kind, str(v)) for kind, values in element.items() for v in _as_list(values)]


def principal_match(element, who: Principal) -> str | None:
    """How a Principal element names ``who``: ``direct`` (the user or session ARN, the service, ``*``),
    ``role`` (the role ARN of a session), ``account`` (the account: delegates, R2), or None."""
    best = None
    for kind, value in _principal_values(element):
        if kind == "Service":
            if who.kind == "service" and value == who.arn:
                return "direct"
            continue
        if kind != "AWS":
            continue
        if value == "*":
            return "direct"
        if who.kind in ("service", "anonymous"):
            continue
        if value in (who.account, f"arn:aws:iam::{who.account}:root"):
            best = best or "account"
        elif value == who.arn:
            return "direct"
        elif who.role_arn and value == who.role_arn:
            best = "role"
    return best


def _applies(
    st: _Statement, request: Request, action: str, variables: bool, resource_based: bool
) -> str | None:
    """None if the statement does not apply; else how its principal matched ('identity' for identity policies)."""
    hit = action in st.exact_actions or (
        st.action_regex is not None and st.action_regex.fullmatch(action) is not None
    )
    if hit == st.not_action:
        return None
    if st.resources is not None:
        if _resource_matches(st.resources, request.resource, request.context, variables) == st.not_resource:
            return None
    elif not resource_based:
        return None  # an identity-based statement without Resource grants nothing (IAM refuses it)
    how = "identity"
    if resource_based:
        matched = principal_match(st.principal or {}, request.principal)
        if st.not_principal:
            if matched is not None:
                return None
            how = "direct"
        elif matched is None:
            return None
        else:
            how = matched
    if st.condition and not evaluate_block(st.condition, request.context, variables):
        return None
    return how


def scan(policies, request: Request, resource_based: bool = False) -> tuple[bool, set[str]]:
    """(an explicit deny applies?, how the applicable allows named the caller) over policy documents."""
    allows: set[str] = set()
    action = request.action.lower()
    for policy in policies:
        statements, variables = compile_policy(policy)
        for st in statements:
            how = _applies(st, request, action, variables, resource_based)
            if how is None:
                continue
            if st.effect == "Deny":
                return True, allows
            if st.effect == "Allow":
                allows.add(how)
    return False, allows


def evaluate(request: Request, policies: Policies) -> Result:
    """The decision for one action on one resource."""
    who = request.principal
    resource_policies = [policies.resource] if policies.resource is not None else []
    deny, resource_allows = scan(resource_policies, request, resource_based=True)
    if deny:  # E2; applies to the root user too (E1)
        return Result(Decision.EXPLICIT_DENY, "resource-based policy")
    if who.kind == "root" and not policies.trust:
        return Result(Decision.ALLOW)  # E1
    if who.kind in ("service", "anonymous"):  # P1
        if "direct" in resource_allows:
            return Result(Decision.ALLOW)
        return Result(Decision.IMPLICIT_DENY, "resource-based policy")
    deny, identity_hits = scan(policies.identity, request)
    if deny:
        return Result(Decision.EXPLICIT_DENY, "identity-based policy")  # E2
    boundary_ok = True
    if policies.boundary is not None:
        deny, hits = scan([policies.boundary], request)
        if deny:
            return Result(Decision.EXPLICIT_DENY, "permissions boundary")
        boundary_ok = bool(hits)  # B1
    session_ok = True
    if policies.session is not None:
        deny, hits = scan(policies.session, request)
        if deny:
            return Result(Decision.EXPLICIT_DENY, "session policy")
        session_ok = bool(hits)  # S1
    identity_allows = bool(identity_hits)
    if policies.trust:  # R3
        if not resource_allows:
            return Result(Decision.IMPLICIT_DENY, "resource-based policy")
        if "direct" in resource_allows or "role" in resource_allows:
            return Result(Decision.ALLOW)
        if identity_allows and boundary_ok and session_ok:
            return Result(Decision.ALLOW)
        return Result(Decision.IMPLICIT_DENY, _limiting(identity_allows, boundary_ok))
    same_account = policies.resource_account in (None, who.account)
    if same_account and "direct" in resource_allows:  # R2
        return Result(Decision.ALLOW)
    if same_account and "role" in resource_allows and boundary_ok and session_ok:  # R2, limited
        return Result(Decision.ALLOW)
    if identity_allows and boundary_ok and session_ok:  # R1, B1, S1
        return Result(Decision.ALLOW)
    return Result(Decision.IMPLICIT_DENY, _limiting(identity_allows, boundary_ok))


def _limiting(identity_allows: bool, boundary_ok: bool) -> str:
    if not identity_allows:
        return "identity-based policy"
    return "permissions boundary" if not boundary_ok else "session policy"


def denial_message(request: Request, result: Result, quoted: bool = False) -> str:
    """The sentence IAM denials carry (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html):
    "User: <arn> is not authorized to perform: <action> on resource: <arn> because no <type> allows the
    <action> action" / "... with an explicit deny in a(n) <type>". ``quoted``: the resource in double
    quotes, as S3 writes it (``on resource: "arn:aws:s3:::b/k" because ...``)."""
    resource = f'"{request.resource}"' if quoted else request.resource
    head = f"User: {request.principal.arn} is not authorized to perform: {request.action} on resource: {resource}"
    kind = result.policy_type or "identity-based policy"
    if result.decision is Decision.EXPLICIT_DENY:
        article = "an" if kind[0] in "aeiou" else "a"
        return f"{head} with an explicit deny in {article} {kind}"
    return f"{head} because no {kind} allows the {request.action} action"
