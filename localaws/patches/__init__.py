"""Fixes to moto's model classes for what the workshop's templates and notebooks need.

One module per service; each module's docstring names the gaps of stock moto it fills, and each gap
has a test in ``tests/local`` that fails on stock moto. ``apply_all()`` is idempotent.
"""

from __future__ import annotations

import importlib

MODULES = [
    "cloudformation_yaml",
    "cloudformation",
    "cloudformation_serial",
    "ec2",
    "efs",
    "s3",
    "iam",
    "lambda_cfn",
    "apigatewayv2",
    "lambda_api",
    "lambda_function_config",
    "lambda_event_invoke",
    "lambda_validation",
    "lambda_states",
    "cloudformation_imports",
    "sagemaker",
    "logs_store",
    "untracked_models",
    "routing_lock",
]
_applied = False


def apply_all() -> None:
    global _applied
    if _applied:
        return
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}").apply()
    # moto caches the list of CloudFormation resource classes; patches may have added some.
    from moto.cloudformation import parsing

    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()
    _applied = True
