"""What one invocation runs: a function's resolved configuration and code, read in-process from moto.

``resolve()`` accepts what Invoke accepts (a name, ``name:qualifier``, a partial or full ARN, with or
without a separate qualifier), follows aliases to their version, and returns a :class:`FunctionSpec`
whose ``key`` changes whenever the configuration or the code does, so that environments built from
an older configuration are never reused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
from dataclasses import dataclass, field

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.utils import get_backend

from localaws.lambda_engine.errors import not_found

_ARN = re.compile(
    r"^(?:arn:[^:]+:lambda:[^:]*:)?(?:\d{12}:)?function:(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?$"
)
# Fields of GetFunctionConfiguration that change without changing what runs.
_VOLATILE = ("State", "LastUpdateStatus", "StateReason", "LastUpdateStatusReason")


@dataclass(frozen=True)
class FunctionSpec:
    """One function version as an execution environment needs it."""

    account_id: str
    region: str
    name: str
    function_arn: str  # unqualified
    version: str  # the executed version: "$LATEST" or a number
    qualifier: str | None  # as invoked (an alias, a version, "$LATEST" or None)
    handler: str
    runtime: str
    memory_mb: int
    timeout_s: float
    variables: dict[str, str]
    file_systems: list[dict[str, str]]
    reserved_concurrency: int | None
    role: str
    ephemeral_storage_mb: int
    architectures: list[str]
    layers: list[str]  # layer version ARNs, in order
    code_sha256: str  # hex
    key: str  # hash of configuration + code
    code_bytes: bytes = field(repr=False, compare=False)

    @property
    def invoked_arn(self) -> str:
        return f"{self.function_arn}:{self.qualifier}" if self.qualifier else self.function_arn


def split_name(function_name: str, qualifier: str | None) -> tuple[str, str | None]:
    """``("arn:...:function:f:live", None)`` -> ``("f", "live")``; an explicit qualifier wins."""
    match = _ARN.match(function_name)
    if match:
        return match["name"], qualifier or match["qualifier"]
    name, _, suffix = function_name.partition(":")
    return name, qualifier or suffix or None


def routed_version(backend, name: str, qualifier: str | None) -> str | None:
    """The version a weighted alias sends this invocation to, or None when the alias's own version runs.

    ``RoutingConfig.AdditionalVersionWeights`` ``{"2": 0.1}`` sends 10 % of invocations to version 2:
    https://docs.aws.amazon.com/lambda/latest/dg/configuring-alias-routing.html
    """
    if not qualifier or qualifier == "$LATEST" or qualifier.isdigit():
        return None
    try:
        alias = backend.get_alias(qualifier, name)
    except LambdaClientError:
        return None
    weights = ((alias.routing_config or {}).get("AdditionalVersionWeights") or {}).items()
    draw = random.random()
    for version, weight in weights:
        draw -= float(weight)
        if draw < 0:
            return str(version)
    return None


def resolve(
    function_name: str, qualifier: str | None, *, account_id: str, region: str, route: bool = False
) -> FunctionSpec:
    """The spec of what ``Invoke(function_name, qualifier)`` runs; ResourceNotFoundException if nothing.

    With ``route``, a weighted alias picks its version for this invocation (see :func:`routed_version`).
    """
    name, qualifier = split_name(function_name, qualifier)
    backend = get_backend(account_id, region)
    try:
        routed = routed_version(backend, name, qualifier) if route else None
        fn = backend.get_function(name, routed or qualifier)
        latest = backend.get_function(name)
    except LambdaClientError as exc:
        raise not_found(exc.message if hasattr(exc, "message") else str(exc)) from exc
    if fn is None:
        raise not_found(f"Function not found: {name}:{qualifier}")
    config = fn.get_configuration()
    version = "$LATEST" if qualifier is None or qualifier == "$LATEST" else str(fn.version)
    stable = {k: v for k, v in config.items() if k not in _VOLATILE}
    sha_hex = base64.b64decode(fn.code_sha_256).hex() if fn.code_sha_256 else ""
    key = hashlib.sha256(
        json.dumps([stable, version, sha_hex], sort_keys=True, default=str).encode()
    ).hexdigest()
    reserved = latest.reserved_concurrency
    return FunctionSpec(
        account_id=account_id,
        region=region,
        name=fn.function_name,
        function_arn=latest.function_arn,
        version=version,
        qualifier=qualifier,
        handler=fn.handler or "",
        runtime=fn.run_time or "",
        memory_mb=int(fn.memory_size),
        timeout_s=float(fn.timeout),
        variables=dict(fn.environment_vars or {}),
        file_systems=[dict(c) for c in getattr(fn, "file_system_configs", None) or []],
        reserved_concurrency=None if reserved is None else int(reserved),
        role=fn.role or "",
        ephemeral_storage_mb=int(getattr(fn, "ephemeral_storage", None) or 512),
        architectures=list(getattr(fn, "architectures", None) or ["x86_64"]),
        layers=[layer["Arn"] for layer in getattr(fn, "layers", None) or [] if layer.get("Arn")],
        code_sha256=sha_hex,
        key=key,
        code_bytes=fn.code_bytes,
    )
