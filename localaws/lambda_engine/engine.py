"""The local Lambda engine: which environment serves an invocation, their lifecycle, Provisioned Concurrency.

- An idle environment built from the function's current configuration and code is reused (warm);
  otherwise a new one starts (cold). Parallel invocations get parallel environments, up to
  ``LOCALAWS_LAMBDA_MAX_ENVIRONMENTS`` on-demand environments per function (default 10): beyond that
  an invocation waits for one to be free, where AWS would start more (this machine has few cores).
- A configuration or code change retires the environments built from the old one; idle on-demand
  environments end after ``LOCALAWS_LAMBDA_IDLE_SECONDS`` (default 300); a deleted function's
  environments end; reserved concurrency throttles with TooManyRequestsException.
- Provisioned Concurrency on a version or alias starts N environments ahead of time
  (``AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency``; ``IN_PROGRESS`` -> ``READY``, or
  ``FAILED`` with a StatusReason when init fails). Invocations of that qualifier use them first and
  spill over to on-demand environments. If the alias moves or an environment dies, it is replaced.
A sweeper thread applies these rules every half second; a watchdog samples memory of working
environments and freezes idle ones (10-35 ms after their runtime asked for the next invocation) every 25 ms.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from moto.awslambda.utils import get_backend

from localaws.lambda_engine import asynchronous, errors, launcher, mounts
from localaws.lambda_engine.environment import (
    Environment,
    Outcome,
)
from localaws.lambda_engine.errors import LambdaServiceError
from localaws.lambda_engine.function_spec import FunctionSpec, resolve
from localaws.lambda_engine.invocation import request_uuid
from localaws.lambda_engine.logs import tail
from localaws.lambda_engine.provisioned import ProvisionedConcurrency, _Provisioned
from localaws.lambda_engine.sandbox import Sandbox
from localaws.lambda_engine.task_root import CodeCache, LayerCache
from localaws.patches import lambda_validation

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
SWEEP_S = 0.5
WATCHDOG_S = 0.025
FREEZE_AFTER_S = 0.01  # an idle environment is frozen by the next watchdog round after this

_current: Engine | None = None


def get_engine() -> Engine:
    """The engine of this server process; RuntimeError if the Lambda layer is not up."""
    if _current is None:
        raise RuntimeError("The local Lambda engine is not running in this process; start the local server.")
    return _current


@dataclass
class InvokeResult:
    status_code: int
    payload: bytes
    function_error: str | None
    executed_version: str
    log_result: str | None  # base64 of the log tail, with LogType=Tail
    request_id: str | None = None  # the invocation's id: in its REPORT line and the x-amzn-RequestId header


class Engine(ProvisionedConcurrency):
    def __init__(
        self,
        state_dir: Path,
        url: str,
        *,
        idle_seconds: float | None = None,
        max_environments: int | None = None,
    ):
        self.state_dir = Path(state_dir)
        self.url = url
        self.idle_seconds = float(idle_seconds or os.environ.get("LOCALAWS_LAMBDA_IDLE_SECONDS", 300))
        self.max_environments = int(
            max_environments or os.environ.get("LOCALAWS_LAMBDA_MAX_ENVIRONMENTS", 10)
        )
        self.sandbox = Sandbox(self.state_dir, launcher.BOOTSTRAP)
        # Links leading out of /var/task are kept only where each function has a root of its own.
        self._code = CodeCache(self.state_dir / "lambda" / "code", outside_links=self.sandbox.enabled)
        self._layers = LayerCache(self.state_dir / "lambda" / "opt", self._code)
        self._cond = threading.Condition()
        self._envs: list[Environment] = []
        self._owner: dict[str, tuple[str, str, str, str]] = {}  # environment id -> provisioned config key
        self._provisioned: dict[tuple[str, str, str, str], _Provisioned] = {}
        self._starting: dict[tuple, int] = {}  # function or provisioned config -> environments starting
        self._closed = False
        self._wake = threading.Event()
        lambda_validation.count_provisioned_with(self.provisioned_totals)  # it claims account concurrency
        threading.Thread(target=self._sweep_loop, name="lambda-sweeper", daemon=True).start()
        threading.Thread(target=self._watchdog_loop, name="lambda-watchdog", daemon=True).start()

    # --- Invoke ------------------------------------------------------------------------------------

    def invoke(
        self,
        function_name: str,
        qualifier: str | None,
        payload: bytes,
        *,
        account_id: str,
        region: str,
        invocation_type: str = "RequestResponse",
        log_type: str = "None",
        client_context: str | None = None,
    ) -> InvokeResult:
        """Run the function as Invoke does; LambdaServiceError for what Lambda answers with an error.

        ``client_context`` is Invoke's ``X-Amz-Client-Context`` (base64 JSON, at most 3583 bytes:
        https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html), handed to the runtime decoded.
        """
        spec = resolve(
            function_name, qualifier, account_id=account_id, region=region, route=True, invoke=True
        )
        context = _client_context(client_context)
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise LambdaServiceError(
                413,
                "RequestEntityTooLargeException",
                f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation",
            )
        payload = payload or b"{}"
        try:
            json.loads(payload)
        except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deep to parse
            raise LambdaServiceError(
                400, "InvalidRequestContentException", f"Could not parse request body into json: {exc}"
            ) from exc
        request_id = request_uuid()
        if invocation_type == "DryRun":
            return InvokeResult(204, b"", None, spec.version, None, request_id)
        if invocation_type == "Event":  # queued, retried and delivered as Lambda does: see .asynchronous
            asynchronous.queue_for(self).submit(spec, payload, request_id)
            return InvokeResult(202, b"", None, spec.version, None, request_id)
        if invocation_type != "RequestResponse":
            raise errors.invalid_parameter(
                f"Invalid InvocationType {invocation_type!r}: use RequestResponse, Event or DryRun."
            )
        outcome = self._execute(spec, payload, request_id, context)
        log_result = (
            base64.b64encode(tail(outcome.log_lines).encode()).decode() if log_type == "Tail" else None
        )
        return InvokeResult(
            200, outcome.payload, outcome.function_error, spec.version, log_result, request_id
        )

    def _run_event(self, spec: FunctionSpec, payload: bytes, request_id: str) -> Outcome:
        """One attempt of an asynchronous invocation, without ClientContext (Lambda passes it to
        synchronous invocations only: https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html)."""
        return self._execute(spec, payload, request_id)

    def _execute(
        self, spec: FunctionSpec, payload: bytes, request_id: str, context: str | None = None
    ) -> Outcome:
        env = self._acquire(spec)
        try:
            return env.run(request_id, payload, invoked_arn=spec.invoked_arn, client_context=context)
        finally:
            self._release(env)

    def _acquire(self, spec: FunctionSpec) -> Environment:
        deadline = time.monotonic() + spec.timeout_s + 10.0
        pc_key = (spec.account_id, spec.region, spec.name, spec.qualifier or "")
        function = _function_of(spec)
        with self._cond:
            while True:
                if self._closed:
                    raise LambdaServiceError(
                        503, "ServiceException", "The local Lambda engine is shutting down."
                    )
                mine = [e for e in self._envs if _function_of(e.spec) == function]
                starting = self._starting.get(function, 0)  # cold starts under way: busy, not listed yet
                busy = sum(1 for e in mine if e.busy) + starting
                if spec.reserved_concurrency is not None and busy >= spec.reserved_concurrency:
                    raise errors.throttled(
                        "Rate Exceeded.", "ReservedFunctionConcurrentInvocationLimitExceeded"
                    )
                # Cheap attributes first: whether a process is still there (a waitpid) is asked of the
                # chosen environment only, not of every one on every invocation.
                idle = [e for e in mine if not e.busy and e.looks_ready and e.spec.key == spec.key]
                provisioned = [e for e in idle if self._owner.get(e.id) == pc_key]
                on_demand = sorted((e for e in idle if e.id not in self._owner), key=lambda e: e.last_used)
                chosen = next((e for e in [*provisioned, *reversed(on_demand)] if e.ready), None)
                if chosen is not None:
                    chosen.busy = True
                    return chosen
                spawned = [e for e in mine if e.id not in self._owner and e.alive]
                if len(spawned) + starting < self.max_environments:
                    self._starting[function] = starting + 1
                    break
                stale = [e for e in spawned if not e.busy and e.spec.key != spec.key]
                if stale:
                    self._retire(stale[:1])
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise errors.throttled("Rate Exceeded.", "ConcurrentInvocationLimitExceeded")
                self._cond.wait(remaining)
        try:  # outside the lock: one function's cold start never holds up another's invocations
            return self._start(spec)
        finally:
            with self._cond:
                self._starting[function] -= 1
                if not self._starting[function]:
                    del self._starting[function]
                self._cond.notify_all()

    def _start(self, spec: FunctionSpec, owner: tuple[str, str, str, str] | None = None) -> Environment:
        """Start a new environment, with the engine's lock NOT held: extracting the code (a first
        invocation of a 100,000-file zip takes seconds), EFS folders, cgroups and the process are this
        environment's alone. Registered once started: busy for its caller, or provisioned for ``owner``.
        If it cannot start, what was made for it (its cgroups) is removed before the error is raised."""
        launch = None
        try:
            efs = mounts.local_mounts(
                spec.file_systems,
                state_dir=self.state_dir,
                account_id=spec.account_id,
                region=spec.region,
                role_arn=spec.role,
            )
            task_root = self._code.task_root(spec.code_sha256, spec.code_bytes)
            if self.sandbox.enabled:
                opt_dir = self._layers.opt_dir(_layer_code(spec))
                launch = launcher.sandboxed(
                    self.sandbox, spec, task_root=task_root, opt_dir=opt_dir, efs=efs, url=self.url,
                    name=uuid.uuid4().hex[:12],
                )  # fmt: skip
            else:
                launch = launcher.on_host(spec, task_root=task_root, efs=efs, url=self.url)
            env = Environment(
                spec,
                launch=launch,
                provisioned=owner is not None,
                check_callers="runtime_api" not in self.sandbox.off,
                sandbox_summary=self.sandbox.summary(),
            )
        except BaseException:
            if launch is not None and launch.group is not None:
                launch.group.remove()
            raise
        with self._cond:
            closed = self._closed
            if not closed:
                env.busy = owner is None
                self._envs.append(env)
                if owner is not None:
                    self._owner[env.id] = owner
        if closed:  # the engine stopped while it started
            env.stop()
            raise LambdaServiceError(503, "ServiceException", "The local Lambda engine is shutting down.")
        log.info(
            "started %s environment %s for %s:%s (pid %s)",
            env.init_type,
            env.id,
            spec.name,
            spec.version,
            env.process.pid,
        )
        return env

    def _release(self, env: Environment) -> None:
        with self._cond:
            env.busy = False
            dead = env.exit_code is not None or env.retired  # the reader thread sees an exit at once
            if dead:
                self._retire([env])
            self._cond.notify_all()
        if dead:  # a provisioned environment that died is replaced without waiting for the sweeper
            self._wake.set()

    def _retire(self, envs: list[Environment]) -> None:
        """Forget and end environments (lock held); busy ones end when their invocation returns."""
        for env in envs:
            if env.busy:
                env.retired = True
                continue
            if env in self._envs:
                self._envs.remove(env)
            self._owner.pop(env.id, None)
            threading.Thread(target=env.stop, daemon=True).start()

    # --- background rules --------------------------------------------------------------------------

    def _sweep_loop(self) -> None:
        while not self._closed:
            self._wake.wait(SWEEP_S)
            self._wake.clear()
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - the sweeper must survive a surprise in moto's state
                log.exception("lambda sweeper")

    def sweep(self) -> None:
        """Retire what must end (expired, outdated, deleted, dead); replace provisioned environments."""
        with self._cond:
            envs = list(self._envs)
            records = list(self._provisioned.values())
        current: dict[tuple, str | None] = {}
        for env in envs:
            env.thaw_if_killed()
            where = (env.spec.account_id, env.spec.region, env.spec.name, env.spec.version)
            if where not in current:
                current[where] = _current_key(*where)
        now = time.monotonic()
        doomed = [
            e
            for e in envs
            if e.exit_code is not None
            or current[(e.spec.account_id, e.spec.region, e.spec.name, e.spec.version)] != e.spec.key
            or (e.id not in self._owner and not e.busy and now - e.last_used > self.idle_seconds)
        ]
        for record in records:
            try:
                spec = resolve(
                    record.name, record.qualifier, account_id=record.account_id, region=record.region
                )
            except LambdaServiceError:  # the function or alias is gone
                with self._cond:
                    self._provisioned.pop(record.key, None)
                doomed += [e for e in envs if self._owner.get(e.id) == record.key]
                continue
            if spec.key != record.spec_key:  # the alias moved, or the version changed: allocate anew
                record.spec_key, record.failure = spec.key, None
            doomed += [e for e in envs if self._owner.get(e.id) == record.key and e.spec.key != spec.key]
            live = [e for e in envs if self._owner.get(e.id) == record.key and e.alive and e not in doomed]
            if len(live) < record.requested:
                self._start_provisioning(record)
        if doomed:
            with self._cond:
                self._retire(list(dict.fromkeys(doomed)))
                self._cond.notify_all()

    def sweep_at(self, when: float) -> None:
        """Sweep at ``time.monotonic()`` ``when`` too: an update's InProgress ends, and the environments
        it kept are retired then, not up to half a second later (beside a cold start of the new code)."""
        timer = threading.Timer(max(0.0, when - time.monotonic()) + 0.001, self._wake.set)
        timer.daemon = True
        timer.start()

    def _watchdog_loop(self) -> None:
        while not self._closed:
            time.sleep(WATCHDOG_S)
            with self._cond:
                live = [e for e in self._envs if e.exit_code is None]
            working = [e for e in live if e.busy or e.init_duration_ms is None]
            for env in live:
                if not env.busy:
                    env.freeze_if_idle(FREEZE_AFTER_S)
            for env in working:
                if env.sample_memory():
                    log.info(
                        "environment %s of %s went above %d MB and was killed",
                        env.id,
                        env.spec.name,
                        env.spec.memory_mb,
                    )

    def environment_pids(self) -> list[int]:
        """Process ids of every live environment (for diagnostics and tests)."""
        with self._cond:
            return [e.process.pid for e in self._envs if e.exit_code is None]

    def shutdown(self) -> None:
        """End every environment process and remove the server's cgroups; the engine answers no more
        invocations."""
        with self._cond:
            self._closed = True
            envs, self._envs = list(self._envs), []
            self._provisioned.clear()
            self._cond.notify_all()
        self._wake.set()
        for env in envs:
            env.stop()
        for env in envs:  # its reader thread removes it too, but the server may exit first
            if env.group is not None:
                env.group.destroy()
        self.sandbox.close()


def _client_context(header: str | None) -> str | None:
    """The JSON of Invoke's base64 ``X-Amz-Client-Context``; InvalidRequestContentException if it is not."""
    if not header:
        return None
    if len(header) > 3583:
        raise errors.invalid_parameter("Client context must be 3583 bytes or less (base64 encoded).")
    try:
        text = base64.b64decode(header, validate=True).decode()
        json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise LambdaServiceError(
            400,
            "InvalidRequestContentException",
            "Client context must be a valid Base64-encoded JSON object.",
        ) from exc
    return text


def _layer_code(spec: FunctionSpec) -> list[tuple[str, bytes]]:
    """(sha256 hex, zip) of each of the function's layers, in order."""
    backend = get_backend(spec.account_id, spec.region)
    layers = []
    for arn in spec.layers:
        layer = backend.layers_versions_by_arn(arn)
        if layer is None:
            raise errors.not_found(f"Layer version {arn} does not exist.")
        layers.append((hashlib.sha256(layer.code_bytes).hexdigest(), layer.code_bytes))
    return layers


def _function_of(spec: FunctionSpec) -> tuple[str, str, str]:
    return (spec.account_id, spec.region, spec.name)


def _current_key(account_id: str, region: str, name: str, version: str) -> str | None:
    """The key environments of this function version must have now; None once it is deleted."""
    try:
        return resolve(
            name, None if version == "$LATEST" else version, account_id=account_id, region=region
        ).key
    except LambdaServiceError:
        return None
