"""What one invocation runs: a function's resolved configuration and code, read in-process from moto.

``resolve()`` accepts what Invoke accepts (a name, ``name:qualifier``, a partial or full ARN, with or
without a separate qualifier), follows aliases to their version, and returns a :class:`FunctionSpec`
whose ``key`` changes whenever the configuration or the code does, so that environments built from
an older configuration are never reused.

Resolved specs are cached (reading and hashing moto's function costs ~60 µs, on every Invoke): an entry
is kept until a request that may change a function begins or ends (:func:`changing`, which the Lambda
layer wraps around every Lambda and CloudFormation write), and only for a function that is neither
``Pending`` nor ``InProgress``. During ``InProgress`` an update's previous code and configuration
run (:func:`hold_previous`), as on AWS, where the function can be invoked during an update and
``LastUpdateStatus`` says when "the function is processing events with the new configuration"
(https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionConfiguration.html).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.utils import get_backend

from localaws.lambda_engine.errors import LambdaServiceError, not_found

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
    logging_config: dict | None = field(default=None, compare=False)  # LoggingConfig, as the function has it

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


def resolve(
    function_name: str,
    qualifier: str | None,
    *,
    account_id: str,
    region: str,
    route: bool = False,
    invoke: bool = False,
) -> FunctionSpec:
    """The spec of what ``Invoke(function_name, qualifier)`` runs; ResourceNotFoundException if nothing.

    With ``route``, a weighted alias picks its version for this invocation (see :func:`_weights`).
    With ``invoke``, a function or version still ``Pending`` is refused with ResourceConflictException
    ("Lambda does not invoke a function during pending state").
    """
    name, qualifier = split_name(function_name, qualifier)
    entry = _cache.get((account_id, region, name, qualifier), account_id, region, invoke)
    spec = entry.spec
    if route and entry.weights:
        draw = random.random()
        for version, weight in entry.weights:
            draw -= weight
            if draw < 0:
                routed = _cache.get((account_id, region, name, version), account_id, region, False)
                return replace(routed.spec, qualifier=qualifier)
    return spec


@contextlib.contextmanager
def changing() -> Iterator[None]:
    """Around a request that may change a function: no spec cached before it is used after it, and none
    read while it runs is cached."""
    _cache.begin()
    try:
        yield
    finally:
        _cache.end()


def hold_previous(spec: FunctionSpec, until: float) -> None:
    """Run ``spec`` (``$LATEST`` before an update) instead of ``$LATEST`` until ``until`` (monotonic):
    the update's ``InProgress`` window, during which AWS runs the previous code and configuration."""
    _cache.hold(spec, until)


@dataclass(frozen=True)
class _Entry:
    spec: FunctionSpec
    weights: tuple[tuple[str, float], ...]  # an alias's RoutingConfig.AdditionalVersionWeights


class _Cache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, str, str | None], _Entry] = {}
        self._held: dict[tuple[str, str, str], tuple[FunctionSpec, float]] = {}
        self._writes = 0  # requests in flight that may change a function
        self._generation = 0

    def get(self, key: tuple, account_id: str, region: str, invoke: bool) -> _Entry:
        with self._lock:
            entry = self._entries.get(key)
            generation = self._generation
        if entry is not None:
            return entry
        entry, settled = self._load(key[2], key[3], account_id, region, invoke)
        with self._lock:
            if settled and self._writes == 0 and self._generation == generation:
                self._entries[key] = entry
        return entry

    def begin(self) -> None:
        with self._lock:
            self._writes += 1
            self._generation += 1
            self._entries.clear()

    def end(self) -> None:
        with self._lock:
            self._writes -= 1
            self._generation += 1
            self._entries.clear()

    def hold(self, spec: FunctionSpec, until: float) -> None:
        with self._lock:
            self._held[(spec.account_id, spec.region, spec.name)] = (spec, until)
            self._generation += 1
            self._entries.clear()

    def _previous(self, account_id: str, region: str, name: str) -> FunctionSpec | None:
        with self._lock:
            held = self._held.get((account_id, region, name))
            if held is not None and time.monotonic() >= held[1]:
                del self._held[(account_id, region, name)]
                held = None
        return held[0] if held else None

    def _load(
        self, name: str, qualifier: str | None, account_id: str, region: str, invoke: bool
    ) -> tuple[_Entry, bool]:
        """The entry read from moto, and whether it may be cached (nothing is Pending or InProgress)."""
        from localaws.patches import lambda_states

        backend = get_backend(account_id, region)
        if invoke:
            try:
                lambda_states.refuse_invoke_while_pending(name, qualifier, account_id, region)
            except LambdaClientError as exc:
                raise LambdaServiceError(exc.code, exc.error_type, exc.message) from None
        try:
            fn = backend.get_function(name, qualifier)
            latest = backend.get_function(name)
        except LambdaClientError as exc:
            raise not_found(exc.message if hasattr(exc, "message") else str(exc)) from exc
        if fn is None:
            raise not_found(f"Function not found: {name}:{qualifier}")
        now = time.monotonic()
        settled = lambda_states.busy_until(fn) <= now and lambda_states.busy_until(latest) <= now
        version = "$LATEST" if qualifier is None or qualifier == "$LATEST" else str(fn.version)
        held = self._previous(account_id, region, name) if version == "$LATEST" else None
        spec = (
            replace(held, qualifier=qualifier)
            if held
            else _spec_of(fn, latest, version, qualifier, account_id, region)
        )
        return _Entry(spec, _weights(backend, name, qualifier)), settled and held is None


_cache = _Cache()


def _weights(backend, name: str, qualifier: str | None) -> tuple[tuple[str, float], ...]:
    """An alias's ``RoutingConfig.AdditionalVersionWeights``: ``{"2": 0.1}`` sends 10 % of invocations to
    version 2 (https://docs.aws.amazon.com/lambda/latest/dg/configuring-alias-routing.html)."""
    if not qualifier or qualifier == "$LATEST" or qualifier.isdigit():
        return ()
    try:
        alias = backend.get_alias(qualifier, name)
    except LambdaClientError:
        return ()
    weights = ((alias.routing_config or {}).get("AdditionalVersionWeights") or {}).items()
    return tuple((str(version), float(weight)) for version, weight in weights)


def _spec_of(fn, latest, version: str, qualifier: str | None, account_id: str, region: str) -> FunctionSpec:
    config = fn.get_configuration()
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
        logging_config=dict(getattr(fn, "logging_config", None) or {}) or None,
    )
