"""Lambda API: function states (``Pending`` -> ``Active``, ``InProgress`` -> ``Successful``) as AWS reports them.

Gap of stock moto 5.2.5 filled here: every function is ``Active`` and every update ``Successful`` at
once, so code that forgets to wait (``function_active_v2``, ``function_updated_v2``,
``published_version_active``) works locally and fails on AWS. AWS
(https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html):

- CreateFunction answers ``State: Pending`` (``StateReason`` "The function is being created."); the
  function becomes ``Active`` when its resources are ready. While it is ``Pending``,
  UpdateFunctionCode, UpdateFunctionConfiguration and PublishVersion fail with
  ``ResourceConflictException``.
- UpdateFunctionCode / UpdateFunctionConfiguration set ``LastUpdateStatus: InProgress`` until the
  update is done (``Successful``); meanwhile another update or a PublishVersion fails with
  ``ResourceConflictException`` ("An update is in progress for resource: <arn>").
- PublishVersion answers a new version in ``State: Pending``; it becomes ``Active`` once ready.
- "Lambda does not invoke a function during pending state": Invoke of a ``Pending`` function or
  version fails with ``ResourceConflictException`` (:func:`refuse_invoke_while_pending`, called by
  the Lambda layer).

Locally the windows last ``LOCALAWS_LAMBDA_STATE_SECONDS`` (default 0.2 s): long enough that the
waiters really wait, short enough not to slow anything down. Only API calls go through these states:
CloudFormation creates and updates functions inside the stack operation, and (as on AWS, where a
resource is complete only once its function is ``Active``) they are ready when the stack is.
During ``InProgress`` invocations run the previous code and configuration, as on AWS (the Lambda
layer holds the spec from before the update: ``localaws.lambda_engine.function_spec.hold_previous``).
An HTTP API in front of a ``Pending`` function answers 500, since Lambda refuses the invocation.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any
from urllib.parse import unquote

from moto.awslambda import models, responses
from moto.awslambda.exceptions import LambdaClientError

log = logging.getLogger(__name__)

CREATING = "The function is being created."
UPDATING = "The function is being updated."


class ResourceConflictException(LambdaClientError):
    code = 409

    def __init__(self, message: str):
        super().__init__("ResourceConflictException", message)


def window_s() -> float:
    return float(os.environ.get("LOCALAWS_LAMBDA_STATE_SECONDS", "0.2"))


def _pending(fn: Any) -> bool:
    return time.monotonic() < getattr(fn, "_localaws_pending_until", 0.0)


def _updating(fn: Any) -> bool:
    return time.monotonic() < getattr(fn, "_localaws_updating_until", 0.0)


def busy_until(fn: Any) -> float:
    """The ``time.monotonic()`` at which ``fn`` is neither ``Pending`` nor ``InProgress`` (past: it is not)."""
    return max(getattr(fn, "_localaws_pending_until", 0.0), getattr(fn, "_localaws_updating_until", 0.0))


def _refuse_while_busy(fn: Any) -> None:
    """ResourceConflictException if ``fn`` is still being created or updated."""
    if _pending(fn):
        raise ResourceConflictException(
            "The operation cannot be performed at this time. The function is currently in the following "
            "state: Pending"
        )
    if _updating(fn):
        raise ResourceConflictException(
            "The operation cannot be performed at this time. An update is in progress for resource: "
            f"{fn.function_arn}"
        )


def refuse_invoke_while_pending(
    function_name: str, qualifier: str | None, account_id: str, region: str
) -> None:
    """ResourceConflictException if what Invoke names (function, version or alias) is still ``Pending``."""
    from moto.awslambda.utils import get_backend

    from localaws.lambda_engine.function_spec import split_name

    name, qualifier = split_name(function_name, qualifier)
    try:
        fn = get_backend(account_id, region).get_function(name, qualifier)
    except LambdaClientError:
        return  # the engine answers ResourceNotFoundException
    if fn is not None and _pending(fn):
        raise ResourceConflictException(
            "The operation cannot be performed at this time. The function is currently in the following "
            "state: Pending"
        )


def _wrap_get_configuration(original):
    def get_configuration(self, on_create: bool = False) -> dict[str, Any]:
        config = original(self, on_create)
        if _pending(self):
            config["State"], config["StateReason"] = "Pending", CREATING
        if _updating(self):
            config["LastUpdateStatus"], config["LastUpdateStatusReason"] = "InProgress", UPDATING
        return config

    return get_configuration


def _wrap_create(original):
    def create_function(self):
        answer = original(self)
        name = self.json_body["FunctionName"].rsplit(":", 1)[-1]
        storage = self.backend._lambdas
        if name in storage._functions:
            until = time.monotonic() + window_s()
            storage._functions[name]["latest"]._localaws_pending_until = until
            for version in storage._functions[name]["versions"]:
                version._localaws_pending_until = until
            status, headers, body = answer
            return status, headers, _with_state(body, "State", "Pending", "StateReason", CREATING)
        return answer

    return create_function


def _with_state(body: str, field: str, value: str, reason_field: str, reason: str) -> str:
    config = json.loads(body)
    config[field], config[reason_field] = value, reason
    return json.dumps(config)


def _wrap_update(original):
    def update(self):
        name = unquote(self.path.rsplit("/", 2)[-2])
        fn = self.backend.get_function(name, self._get_param("Qualifier", None))
        _refuse_while_busy(fn)
        if self.json_body.get("DryRun"):
            return original(self)
        before = getattr(fn, "_localaws_updating_until", 0.0)
        fn._localaws_updating_until = time.monotonic() + window_s()
        try:
            return original(self)
        except Exception:
            fn._localaws_updating_until = before
            raise

    return update


def _wrap_publish(original):
    def publish_version(self):
        name = unquote(self.path.split("/")[-2])
        fn = self.backend.get_function(name)
        _refuse_while_busy(fn)
        versions = self.backend._lambdas._functions.get(fn.function_name, {}).get("versions", [])
        count = len(versions)
        status, headers, body = original(self)
        if len(versions) > count:  # a new version (moto returns the last one when nothing changed)
            versions[-1]._localaws_pending_until = time.monotonic() + window_s()
            versions[-1]._localaws_updating_until = 0.0
            body = _with_state(body, "State", "Pending", "StateReason", CREATING)
        return status, headers, body

    return publish_version


def apply() -> None:
    models.LambdaFunction.get_configuration = _wrap_get_configuration(models.LambdaFunction.get_configuration)
    response = responses.LambdaResponse
    response.create_function = _wrap_create(response.create_function)
    response.update_function_configuration = _wrap_update(response.update_function_configuration)
    response.update_function_code = _wrap_update(response.update_function_code)
    response.publish_version = _wrap_publish(response.publish_version)
