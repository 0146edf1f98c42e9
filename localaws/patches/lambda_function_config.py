"""Lambda API: ``LoggingConfig`` and ``DeadLetterConfig`` survive CreateFunction and UpdateFunctionConfiguration.

Gaps of stock moto 5.2.5 filled here:

- ``LoggingConfig`` (``LogFormat``, ``ApplicationLogLevel``, ``SystemLogLevel``, ``LogGroup``) is
  dropped: GetFunctionConfiguration never returns it, so a function set to JSON logs or a custom log
  group silently keeps plain text in ``/aws/lambda/<name>``. Here it is kept and answered as AWS
  does: ``LogFormat`` ``Text`` by default with ``LogGroup`` ``/aws/lambda/<name>``; with ``JSON`` the
  levels default to ``INFO`` (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html);
  an update merges into what the function has. Values outside AWS's enums are refused with
  ``InvalidParameterValueException``
  (https://docs.aws.amazon.com/lambda/latest/api/API_LoggingConfig.html). The local Lambda engine
  applies it (see :mod:`localaws.lambda_engine.logs`).
- ``DeadLetterConfig`` (``TargetArn`` of an SQS queue or SNS topic) is dropped, so events that
  exhausted their retries had nowhere to go. Here it is kept, answered by GetFunctionConfiguration,
  and used by :mod:`localaws.lambda_engine.asynchronous`
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#invocation-dlq).

Published versions carry both along (moto copies the function object when publishing).
"""

from __future__ import annotations

import re
from typing import Any

from moto.awslambda import models
from moto.awslambda.exceptions import InvalidParameterValueException

LOG_FORMATS = ("JSON", "Text")
APPLICATION_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
SYSTEM_LEVELS = ("DEBUG", "INFO", "WARN")
_DLQ_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:(sqs|sns):[a-z0-9-]+:\d{12}:.+$")


def default_log_group(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


def normalise_logging(
    function_name: str, current: dict[str, Any] | None, update: dict[str, Any] | None
) -> dict:
    """The LoggingConfig AWS reports after ``update`` is applied to ``current``; refuses bad values."""
    config = {"LogFormat": "Text", "LogGroup": default_log_group(function_name), **(current or {})}
    config.update({k: v for k, v in (update or {}).items() if v is not None})
    if config["LogFormat"] not in LOG_FORMATS:
        raise InvalidParameterValueException(
            f"LoggingConfig.LogFormat {config['LogFormat']!r} is not valid: use JSON or Text."
        )
    for key, allowed in (("ApplicationLogLevel", APPLICATION_LEVELS), ("SystemLogLevel", SYSTEM_LEVELS)):
        if key in config and config[key] not in allowed:
            raise InvalidParameterValueException(
                f"LoggingConfig.{key} {config[key]!r} is not valid: use one of {', '.join(allowed)}."
            )
    if config["LogFormat"] == "JSON":
        config.setdefault("ApplicationLogLevel", "INFO")
        config.setdefault("SystemLogLevel", "INFO")
    else:  # log-level filtering needs JSON: Text reports no levels
        config.pop("ApplicationLogLevel", None)
        config.pop("SystemLogLevel", None)
    if not config.get("LogGroup"):
        config["LogGroup"] = default_log_group(function_name)
    return config


def _dead_letter(config: dict[str, Any] | None) -> dict[str, str] | None:
    target = (config or {}).get("TargetArn")
    if not target:
        return None
    if not _DLQ_ARN.match(target):
        raise InvalidParameterValueException(
            f"DeadLetterConfig.TargetArn {target!r} must be the ARN of an SQS queue or an SNS topic."
        )
    return {"TargetArn": target}


def _wrap_init(original):
    def __init__(self, account_id: str, spec: dict[str, Any], region: str, version: str | int = 1):
        original(self, account_id, spec, region, version)
        self.logging_config = normalise_logging(self.function_name, None, spec.get("LoggingConfig"))
        self.dead_letter_config = _dead_letter(spec.get("DeadLetterConfig"))

    return __init__


def _wrap_get_configuration(original):
    def get_configuration(self, on_create: bool = False) -> dict[str, Any]:
        config = original(self, on_create)
        logging_config = getattr(self, "logging_config", None)
        config["LoggingConfig"] = dict(logging_config or normalise_logging(self.function_name, None, None))
        if getattr(self, "dead_letter_config", None):
            config["DeadLetterConfig"] = dict(self.dead_letter_config)
        return config

    return get_configuration


def _wrap_update_configuration(original):
    def update_configuration(self, config_updates: dict[str, Any]) -> dict[str, Any]:
        if "LoggingConfig" in config_updates:
            self.logging_config = normalise_logging(
                self.function_name, getattr(self, "logging_config", None), config_updates["LoggingConfig"]
            )
        if "DeadLetterConfig" in config_updates:
            self.dead_letter_config = _dead_letter(config_updates["DeadLetterConfig"])
        return original(self, config_updates)

    return update_configuration


def apply() -> None:
    models.LambdaFunction.__init__ = _wrap_init(models.LambdaFunction.__init__)
    models.LambdaFunction.get_configuration = _wrap_get_configuration(models.LambdaFunction.get_configuration)
    models.LambdaFunction.update_configuration = _wrap_update_configuration(
        models.LambdaFunction.update_configuration
    )
