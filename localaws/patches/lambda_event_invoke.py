"""Lambda API: the event invoke config (asynchronous invocation settings) per function, version and alias.

Gaps of stock moto 5.2.5 filled here (API: https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionEventInvokeConfig.html):

- ``Qualifier`` is ignored: a version's or an alias's configuration overwrites the function's, and
  they cannot be told apart. Here each of ``$LATEST`` (no qualifier), a version and an alias has its
  own, and ``FunctionArn`` in the answer is qualified (``...:function:f:$LATEST``) as AWS answers it.
- A second ``PutFunctionEventInvokeConfig`` is appended behind the first, so GetFunctionEventInvokeConfig
  keeps answering the first one; AWS overwrites ("If you exclude any settings, they are removed").
- ``UpdateFunctionEventInvokeConfig`` replaces everything; AWS changes only the settings given
  ("To set one option without affecting existing settings for other options, use
  UpdateFunctionEventInvokeConfig").
- ``DestinationConfig`` is answered as sent; AWS always answers both ``OnSuccess`` and ``OnFailure``.

moto's own range and ARN checks still run (MaximumRetryAttempts 0-2, MaximumEventAgeInSeconds up to
21600). :func:`event_invoke_config` is what the local Lambda engine reads for an invocation.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import unquote

from moto.awslambda import models, responses
from moto.awslambda.exceptions import InvalidParameterValueException, LambdaClientError, UnknownEventConfig
from moto.awslambda.utils import get_backend

_SETTINGS = ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")
_SUCCESS_TARGETS = ("sqs", "sns", "lambda", "events")


def _store(fn: models.LambdaFunction) -> dict[str, dict[str, Any]]:
    if not hasattr(fn, "event_invoke_configs"):
        fn.event_invoke_configs = {}
    return fn.event_invoke_configs


def _destinations(config: dict[str, Any] | None) -> dict[str, dict[str, str]]:
    config = config or {}
    return {key: dict(config.get(key) or {}) for key in ("OnSuccess", "OnFailure")}


def event_invoke_config(
    function_name: str, qualifier: str | None, *, account_id: str, region: str
) -> dict[str, Any] | None:
    """The settings of ``function_name:qualifier`` as GetFunctionEventInvokeConfig answers them, or None."""
    try:
        fn = get_backend(account_id, region).get_function(function_name)
    except LambdaClientError:
        return None
    return _store(fn).get(qualifier or "$LATEST")


def _function(backend, function_name: str, qualifier: str | None) -> models.LambdaFunction:
    """The unqualified function; ResourceNotFoundException if it or its qualifier does not exist."""
    if qualifier and qualifier != "$LATEST":
        backend.get_function(function_name, qualifier)
    return backend.get_function(function_name)


def _put(backend, function_name: str, qualifier: str | None, body: dict[str, Any], merge: bool) -> dict:
    fn = _function(backend, function_name, qualifier)
    key = qualifier or "$LATEST"
    store = _store(fn)
    settings = {k: body[k] for k in _SETTINGS if k in body}
    if merge and key in store:
        current = {k: v for k, v in store[key].items() if k in _SETTINGS}
        if "DestinationConfig" in settings:
            destinations = _destinations(current.get("DestinationConfig"))
            destinations.update({k: v for k, v in settings["DestinationConfig"].items() if v is not None})
            settings["DestinationConfig"] = destinations
        settings = {**current, **settings}
    arn = f"{fn.function_arn}:{key}"
    models.EventInvokeConfig(arn, fn.last_modified, dict(settings))  # moto's range and ARN checks
    _check_destinations(settings.get("DestinationConfig"))
    config = {"FunctionArn": arn, "LastModified": time.time(), **settings}
    config["DestinationConfig"] = _destinations(settings.get("DestinationConfig"))
    store[key] = config
    return config


def _check_destinations(config: dict[str, Any] | None) -> None:
    """A destination is an SQS queue, SNS topic, Lambda function or EventBridge bus (and an S3 bucket,
    on failure only): https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html"""
    for kind, allowed in (("OnSuccess", _SUCCESS_TARGETS), ("OnFailure", _SUCCESS_TARGETS + ("s3",))):
        target = ((config or {}).get(kind) or {}).get("Destination")
        service = target.split(":")[2] if target and target.count(":") >= 5 else None
        if target and service not in allowed:
            raise InvalidParameterValueException(
                f"The {kind} destination {target} is not supported: use the ARN of an SQS queue, "
                f"SNS topic, Lambda function or EventBridge event bus{' (or S3 bucket)' if kind == 'OnFailure' else ''}."
            )


def _name_and_qualifier(self) -> tuple[str, str | None]:
    parts = self.path.split("/functions/", 1)[1].split("/")
    return unquote(parts[0]), self.querystring.get("Qualifier", [None])[0]


def _answer(status: int, doc: Any) -> tuple[int, dict[str, str], str]:
    return status, {"status": str(status), "Content-Type": "application/json"}, json.dumps(doc)


def put_function_event_invoke_config(self):
    name, qualifier = _name_and_qualifier(self)
    return _answer(200, _put(self.backend, name, qualifier, self.json_body or {}, merge=False))


def update_function_event_invoke_config(self):
    name, qualifier = _name_and_qualifier(self)
    return _answer(200, _put(self.backend, name, qualifier, self.json_body or {}, merge=True))


def get_function_event_invoke_config(self):
    name, qualifier = _name_and_qualifier(self)
    fn = _function(self.backend, name, qualifier)
    config = _store(fn).get(qualifier or "$LATEST")
    if config is None:
        raise UnknownEventConfig(f"{fn.function_arn}:{qualifier or '$LATEST'}")
    return _answer(200, config)


def delete_function_event_invoke_config(self):
    name, qualifier = _name_and_qualifier(self)
    fn = _function(self.backend, name, qualifier)
    if _store(fn).pop(qualifier or "$LATEST", None) is None:
        raise UnknownEventConfig(f"{fn.function_arn}:{qualifier or '$LATEST'}")
    return 204, {"status": "204"}, ""


def list_function_event_invoke_configs(self):
    name, _ = _name_and_qualifier(self)
    fn = _function(self.backend, name, None)
    return _answer(200, {"FunctionEventInvokeConfigs": list(_store(fn).values())})


def apply() -> None:
    for handler in (
        put_function_event_invoke_config,
        update_function_event_invoke_config,
        get_function_event_invoke_config,
        delete_function_event_invoke_config,
        list_function_event_invoke_configs,
    ):
        setattr(responses.LambdaResponse, handler.__name__, handler)
