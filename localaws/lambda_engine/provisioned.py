"""Provisioned Concurrency in the local engine: N environments initialised ahead of time for a qualifier.

``PUT /2019-09-30/functions/{name}/provisioned-concurrency?Qualifier=`` starts ``count`` environments with
``AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency``; the config is ``IN_PROGRESS`` until they are
ready, then ``READY``, or ``FAILED`` with a StatusReason when init fails. Invocations of that qualifier use
them first and spill over to on-demand environments (see :mod:`.engine`); if the alias moves or an
environment dies, the sweeper replaces it. As documented in
https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html.

A request AWS refuses is refused before anything starts, with Lambda's ``InvalidParameterValueException``
and its message: more than the account's concurrency (1,000 by default); leaving less than 100 of it
unreserved, counting other functions' reservations and Provisioned Concurrency
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html); more, over all of the
function's versions and aliases, than its own reserved concurrency. The messages are AWS's, as recorded
by LocalStack's AWS-validated snapshots and as AWS answered PutProvisionedConcurrencyConfig in public
reports ("Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution
below its minimum value of [10].", an account of 10).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from moto.awslambda.utils import get_backend

from localaws.lambda_engine import errors
from localaws.lambda_engine.environment import PROVISIONED_INIT_CAP_S, Environment
from localaws.lambda_engine.errors import LambdaServiceError
from localaws.lambda_engine.function_spec import FunctionSpec, resolve, split_name
from localaws.patches import lambda_validation

log = logging.getLogger(__name__)


@dataclass
class _Provisioned:
    account_id: str
    region: str
    name: str
    qualifier: str
    requested: int
    spec_key: str
    last_modified: str
    failure: str | None = None
    provisioning: bool = False

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.account_id, self.region, self.name, self.qualifier)


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


class ProvisionedConcurrency:
    """The Provisioned Concurrency half of :class:`~localaws.lambda_engine.engine.Engine` (its state and
    lock live there: ``_cond``, ``_envs``, ``_owner``, ``_provisioned``, ``_starting``, ``_start``,
    ``_retire``)."""

    def put_provisioned_concurrency(
        self, function_name: str, qualifier: str | None, count: int, *, account_id: str, region: str
    ) -> dict:
        """Configure ``count`` environments for a version or alias; they initialise in the background."""
        name, qualifier = split_name(function_name, qualifier)
        if not qualifier or qualifier == "$LATEST":
            raise errors.invalid_parameter(
                "Provisioned Concurrency Configs cannot be applied to unpublished function versions: "
                "publish a version or use an alias."
            )
        if int(count) < 1:
            raise errors.invalid_parameter("ProvisionedConcurrentExecutions must be at least 1.")
        spec = resolve(name, qualifier, account_id=account_id, region=region)
        record = _Provisioned(account_id, region, spec.name, qualifier, int(count), spec.key, _now_iso())
        with self._cond:
            self._check_account(spec, record)  # under the lock: two PUTs at once cannot both fit
            self._provisioned[record.key] = record
            mine = [e for e in self._envs if self._owner.get(e.id) == record.key]
            surplus = mine[record.requested :] + [e for e in mine if e.spec.key != spec.key]
            self._retire(list(dict.fromkeys(surplus)))
        self._start_provisioning(record)
        return self._config(record)

    def provisioned_totals(self, account_id: str, region: str) -> dict[str, int]:
        """``{function name: Provisioned Concurrency configured over its versions and aliases}``."""
        totals: dict[str, int] = {}
        with self._cond:
            for record in self._provisioned.values():
                if (record.account_id, record.region) == (account_id, region):
                    totals[record.name] = totals.get(record.name, 0) + record.requested
        return totals

    def _check_account(self, spec: FunctionSpec, record: _Provisioned) -> None:
        """InvalidParameterValueException, as Lambda answers, for what the account cannot hold."""
        limit = lambda_validation.concurrency_limit()
        siblings = sum(  # the function's other versions and aliases (this one's old value is replaced)
            r.requested
            for r in self._provisioned.values()
            if r.key[:3] == record.key[:3] and r.key != record.key
        )
        if spec.reserved_concurrency is not None:
            if siblings + record.requested > spec.reserved_concurrency:
                raise errors.invalid_parameter(
                    "Requested Provisioned Concurrency should not be greater than the "
                    "reservedConcurrentExecution for function"
                )
            return  # inside the function's reservation, which already counts against the account
        if record.requested > limit:
            raise errors.invalid_parameter(
                "Specified ConcurrentExecutions for function is greater than account's unreserved "
                f"concurrency [{limit}]."
            )
        unreserved = lambda_validation.unreserved_concurrency(
            get_backend(spec.account_id, spec.region), spec.name
        )
        minimum = lambda_validation.UNRESERVED_MINIMUM
        if unreserved - siblings - record.requested < minimum:
            raise errors.invalid_parameter(
                "Specified ConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{minimum}]."
            )

    def get_provisioned_concurrency(
        self, function_name: str, qualifier: str | None, *, account_id: str, region: str
    ) -> dict:
        return self._config(self._record(function_name, qualifier, account_id, region))

    def list_provisioned_concurrency(self, function_name: str, *, account_id: str, region: str) -> list[dict]:
        name, _ = split_name(function_name, None)
        resolve(name, None, account_id=account_id, region=region)
        with self._cond:
            records = [r for r in self._provisioned.values() if r.key[:3] == (account_id, region, name)]
        return [self._config(r, with_arn=True) for r in records]

    def delete_provisioned_concurrency(
        self, function_name: str, qualifier: str | None, *, account_id: str, region: str
    ) -> None:
        record = self._record(function_name, qualifier, account_id, region)
        with self._cond:
            self._provisioned.pop(record.key, None)
            self._retire([e for e in self._envs if self._owner.get(e.id) == record.key])

    def _record(
        self, function_name: str, qualifier: str | None, account_id: str, region: str
    ) -> _Provisioned:
        name, qualifier = split_name(function_name, qualifier)
        spec = resolve(name, qualifier, account_id=account_id, region=region)
        record = self._provisioned.get((account_id, region, spec.name, qualifier or ""))
        if record is None:
            raise LambdaServiceError(
                404,
                "ProvisionedConcurrencyConfigNotFoundException",
                "No Provisioned Concurrency Config found for this function",
            )
        return record

    def _config(self, record: _Provisioned, with_arn: bool = False) -> dict:
        with self._cond:
            ready = sum(
                1
                for e in self._envs
                if self._owner.get(e.id) == record.key and e.ready and e.spec.key == record.spec_key
            )
        status = "FAILED" if record.failure else "READY" if ready >= record.requested else "IN_PROGRESS"
        config = {
            "RequestedProvisionedConcurrentExecutions": record.requested,
            "AvailableProvisionedConcurrentExecutions": min(ready, record.requested),
            "AllocatedProvisionedConcurrentExecutions": min(ready, record.requested),
            "Status": status,
            "LastModified": record.last_modified,
        }
        if record.failure:
            config["StatusReason"] = record.failure
        if with_arn:
            config["FunctionArn"] = (
                f"arn:aws:lambda:{record.region}:{record.account_id}:function:{record.name}:{record.qualifier}"
            )
        return config

    def _start_provisioning(self, record: _Provisioned) -> None:
        with self._cond:
            if record.provisioning or record.failure:
                return
            record.provisioning = True
        threading.Thread(target=self._provision, args=(record,), daemon=True).start()

    def _provision(self, record: _Provisioned) -> None:
        """Start the environments ``record`` lacks, one at a time and with the engine's lock not held (each
        start extracts code, makes cgroups and spawns a process); counted while they start, so that a
        second provisioning of the same configuration (a PUT meanwhile) never starts more than requested."""
        fresh: list[Environment] = []
        try:
            spec = resolve(record.name, record.qualifier, account_id=record.account_id, region=record.region)
            with self._cond:
                if self._provisioned.get(record.key) is not record or self._closed:
                    return
                record.spec_key = spec.key
            while True:
                with self._cond:
                    have = [
                        e
                        for e in self._envs
                        if self._owner.get(e.id) == record.key and e.alive and e.spec.key == spec.key
                    ]
                    starting = self._starting.get(record.key, 0)
                    current = self._provisioned.get(record.key) is record and not self._closed
                    if not current or len(have) + starting >= record.requested:
                        break
                    self._starting[record.key] = starting + 1
                try:
                    fresh.append(self._start(spec, owner=record.key))
                finally:
                    with self._cond:
                        self._starting[record.key] -= 1
                        if not self._starting[record.key]:
                            del self._starting[record.key]
            for env in fresh:
                env.wait_settled(PROVISIONED_INIT_CAP_S)
            failed = [e for e in fresh if not e.ready]
            if failed:
                record.failure = "FUNCTION_ERROR_INIT_FAILURE: " + _init_failure(failed[0])
                log.warning(
                    "Provisioned Concurrency on %s:%s failed: %s",
                    record.name,
                    record.qualifier,
                    record.failure,
                )
                with self._cond:
                    self._retire(failed)
        except Exception as exc:  # noqa: BLE001 - e.g. a full disk: FAILED with a reason, never IN_PROGRESS forever
            if isinstance(exc, LambdaServiceError):
                record.failure = exc.message
            else:
                log.exception("provisioning %s:%s", record.name, record.qualifier)
                record.failure = f"FUNCTION_ERROR_INIT_FAILURE: could not start an environment: {exc}"
            with self._cond:  # what this round started goes too: it failed as a whole
                self._retire(fresh)
        finally:
            record.provisioning = False


def _init_failure(env: Environment) -> str:
    if env.init_error is not None:
        body, error_type = env.init_error
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
        return (
            f"{error_type or doc.get('errorType', 'Runtime.Unknown')}: {doc.get('errorMessage', '')}".strip()
        )
    if env.exit_code is not None:
        return f"Runtime exited with error: exit status {env.exit_code}"
    return f"init did not finish within {PROVISIONED_INIT_CAP_S:.0f} s"
