"""IAM condition operators, set qualifiers and policy variables, as the IAM User Guide documents them.

Rules, each from https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
unless said otherwise:

- C1 A key missing from the request context makes the condition false; for a negated operator
  (StringNotEquals, StringNotLike, NumericNotEquals, DateNotEquals, NotIpAddress, ArnNotEquals,
  ArnNotLike) true. ``...IfExists`` is true when the key is missing. ``Null`` tests presence.
- C2 Several operators in a block: AND; several keys under one operator: AND; several values for one
  key: OR; for a negated operator: NOR
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-logic-multiple-context-keys-or-values.html).
- C3 ``ForAnyValue:`` is true if at least one request value matches (false for a missing or empty key);
  ``ForAllValues:`` if every request value matches (true for a missing or empty key)
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html).
- C4 Condition key names are case-insensitive; String values case-sensitive except ``...IgnoreCase``;
  StringLike/ArnLike take ``*`` and ``?``; ArnLike/ArnEquals match each of the six colon-separated
  parts of an ARN separately (a wildcard never spans a part's colon; ``*`` in the last part spans all).
- C5 Bool: ``true``/``false``, case-insensitive. Numeric: integers and decimals. Date: ISO 8601 or
  epoch seconds. IpAddress: CIDR (IPv4 or IPv6); a bare address is a /32 or /128. BinaryEquals:
  base64 text compared as given.
- C6 Policy variables ``${aws:username}``, ``${aws:PrincipalTag/k}``, ``${k, 'default'}`` and the
  escapes ``${*}``, ``${?}``, ``${$}`` are replaced in Resource and in String/Arn condition values,
  only when the policy's Version is 2012-10-17; a variable whose key is missing (and has no default)
  makes that value match nothing (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache

Context = dict[str, list[str]]  # lower-cased key -> values (a single-valued key holds one value)

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_ESCAPE = "\0"  # marks a literal produced by ${*} ${?} ${$}: never a wildcard


class Unresolved(Exception):
    """A policy variable's key is missing from the request context (and it has no default)."""


def substitute(value: str, context: Context, variables: bool) -> str:
    """Replace the policy variables of ``value`` (C6); raise Unresolved for a missing key without default."""
    if not variables or "${" not in value:
        return value

    def one(match: re.Match) -> str:
        inner = match.group(1)
        if inner in ("*", "?", "$"):
            return _ESCAPE + inner
        key, _, default = inner.partition(",")
        values = context.get(key.strip().lower())
        if values:
            return values[0]
        default = default.strip()
        if len(default) >= 2 and default[0] == default[-1] == "'":
            return default[1:-1]
        raise Unresolved(key)

    return _VARIABLE.sub(one, value)


@lru_cache(maxsize=4096)
def glob(pattern: str, ignore_case: bool = False) -> re.Pattern:
    """A compiled regex for an IAM wildcard pattern (``*`` any run, ``?`` one character; C4)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == _ESCAPE and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return glob(pattern, ignore_case).fullmatch(value) is not None


def arn_like(pattern: str, arn: str) -> bool:
    """ArnLike, and Resource matching: the six ARN parts matched separately (C4)."""
    if pattern == "*":
        return True
    p, a = pattern.split(":", 5), arn.split(":", 5)
    if len(p) != 6 or len(a) != 6:
        return like(pattern, arn)
    return all(like(pp, aa) for pp, aa in zip(p, a, strict=True))


def _literal(value: str) -> str:
    return value.replace(_ESCAPE, "")


def _number(value: str) -> float:
    return float(value)


def _date(value: str) -> float:
    value = value.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return float(value)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _ip(policy: str, request: str) -> bool:
    return ipaddress.ip_address(request) in ipaddress.ip_network(policy, strict=False)


# base operator (lower case) -> match(policy value, request value) for the positive form
_MATCH: dict[str, Callable[[str, str], bool]] = {
    "stringequals": lambda p, r: _literal(p) == r,
    "stringequalsignorecase": lambda p, r: _literal(p).lower() == r.lower(),
    "stringlike": lambda p, r: like(p, r),
    "numericequals": lambda p, r: _number(r) == _number(p),
    "numericlessthan": lambda p, r: _number(r) < _number(p),
    "numericlessthanequals": lambda p, r: _number(r) <= _number(p),
    "numericgreaterthan": lambda p, r: _number(r) > _number(p),
    "numericgreaterthanequals": lambda p, r: _number(r) >= _number(p),
    "dateequals": lambda p, r: _date(r) == _date(p),
    "datelessthan": lambda p, r: _date(r) < _date(p),
    "datelessthanequals": lambda p, r: _date(r) <= _date(p),
    "dategreaterthan": lambda p, r: _date(r) > _date(p),
    "dategreaterthanequals": lambda p, r: _date(r) >= _date(p),
    "bool": lambda p, r: p.lower() == r.lower(),
    "binaryequals": lambda p, r: p == r,
    "ipaddress": _ip,
    "arnequals": arn_like,
    "arnlike": arn_like,
}
# negated operator -> its positive form (C1, C2)
NEGATED = {
    "stringnotequals": "stringequals",
    "stringnotequalsignorecase": "stringequalsignorecase",
    "stringnotlike": "stringlike",
    "numericnotequals": "numericequals",
    "datenotequals": "dateequals",
    "notipaddress": "ipaddress",
    "arnnotequals": "arnequals",
    "arnnotlike": "arnlike",
}


def _any_match(positive: str, policy_values: list[str], value: str) -> bool:
    """Does ``value`` match any policy value (OR, C2)? A value the operator cannot read matches nothing."""
    match = _MATCH[positive]
    for pv in policy_values:
        try:
            if match(pv, value):
                return True
        except (ValueError, TypeError):
            continue
    return False


def evaluate_operator(operator: str, key: str, policy_values, context: Context, variables: bool) -> bool:
    """One operator/key pair of a Condition block."""
    qualifier, _, name = operator.rpartition(":")
    qualifier = qualifier.lower()
    if_exists = name.endswith("IfExists")
    base = (name[: -len("IfExists")] if if_exists else name).lower()
    values = context.get(key.lower())
    if not isinstance(policy_values, list):
        policy_values = [policy_values]
    policy_values = [str(v).lower() if isinstance(v, bool) else str(v) for v in policy_values]
    if base == "null":  # "true": the key must be absent; "false": present (C1)
        return any((pv.lower() == "true") == (not values) for pv in policy_values)
    negated = base in NEGATED
    positive = NEGATED.get(base, base)
    if positive not in _MATCH:
        return False  # an unknown operator never matches (IAM refuses such a policy when it is written)
    if positive.startswith(("string", "arn")):
        resolved = []
        for pv in policy_values:
            try:
                resolved.append(substitute(pv, context, variables))
            except Unresolved:
                continue
        policy_values = resolved
    if qualifier == "foranyvalue":  # C3
        if not values:
            return False
        hits = [_any_match(positive, policy_values, v) for v in values]
        return not all(hits) if negated else any(hits)
    if qualifier == "forallvalues":  # C3
        if not values:
            return True
        hits = [_any_match(positive, policy_values, v) for v in values]
        return not any(hits) if negated else all(hits)
    if not values:  # C1
        return if_exists or negated
    matched = _any_match(positive, policy_values, values[0])
    return not matched if negated else matched  # NOR for negated operators (C2)


def evaluate_block(condition: dict, context: Context, variables: bool) -> bool:
    """A statement's Condition element: every operator and every key must hold (C2)."""
    for operator, pairs in condition.items():
        if not isinstance(pairs, dict):
            return False
        for key, policy_values in pairs.items():
            if not evaluate_operator(operator, key, policy_values, context, variables):
                return False
    return True


def missing_keys(condition: dict | None, context: Context) -> set[str]:
    """The condition keys a Condition element names that the context lacks (SimulatePrincipalPolicy's
    MissingContextValues)."""
    missing = set()
    for pairs in (condition or {}).values():
        if isinstance(pairs, dict):
            missing.update(key for key in pairs if key.lower() not in context)
    return missing
