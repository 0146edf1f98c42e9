"""Lambda API: ``FileSystemConfigs`` survives CreateFunction, UpdateFunctionConfiguration and PublishVersion.

Gap of stock moto 5.2.5 filled here: ``LambdaFunction`` ignores ``FileSystemConfigs`` in
CreateFunction and UpdateFunctionConfiguration, and GetFunction / GetFunctionConfiguration never
return it, so a function meant to mount an EFS access point loses its mount (and the local Lambda
engine could not map ``LocalMountPath``). Here the function keeps the list, returns it as AWS does
(``[{"Arn": access point ARN, "LocalMountPath": "/mnt/..."}]``, omitted when empty) and published
versions carry it along (moto copies the function object when publishing).
"""

from __future__ import annotations

from typing import Any

from moto.awslambda import models


def _wrap_init(original):
    def __init__(self, account_id: str, spec: dict[str, Any], region: str, version: str | int = 1):
        original(self, account_id, spec, region, version)
        self.file_system_configs = [dict(config) for config in spec.get("FileSystemConfigs") or []]

    return __init__


def _wrap_get_configuration(original):
    def get_configuration(self, on_create: bool = False) -> dict[str, Any]:
        config = original(self, on_create)
        if getattr(self, "file_system_configs", None):
            config["FileSystemConfigs"] = [dict(c) for c in self.file_system_configs]
        return config

    return get_configuration


def _wrap_update_configuration(original):
    def update_configuration(self, config_updates: dict[str, Any]) -> dict[str, Any]:
        if "FileSystemConfigs" in config_updates:
            self.file_system_configs = [dict(c) for c in config_updates["FileSystemConfigs"] or []]
        return original(self, config_updates)

    return update_configuration


def apply() -> None:
    models.LambdaFunction.__init__ = _wrap_init(models.LambdaFunction.__init__)
    models.LambdaFunction.get_configuration = _wrap_get_configuration(models.LambdaFunction.get_configuration)
    models.LambdaFunction.update_configuration = _wrap_update_configuration(
        models.LambdaFunction.update_configuration
    )
