"""CreateEndpointConfig: a variant's ``ServerlessConfig`` checked as SageMaker checks it.

https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariantServerlessConfig.html:
``MemorySizeInMB`` 1024 to 6144 in 1 GB steps (1024, 2048, ..., 6144), ``MaxConcurrency`` 1 to 200,
``ProvisionedConcurrency`` (optional) 1 to 200 and at most ``MaxConcurrency``. The same constraints
hold in CloudFormation (``AWS::SageMaker::EndpointConfig ServerlessConfig``,
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-sagemaker-endpointconfig-serverlessconfig.html).

Gaps of stock moto 5.2.5 filled here: it checks only the memory size (and only for an int, so a
CloudFormation parameter, which arrives as a string, is refused), never the concurrency ranges nor
``ProvisionedConcurrency <= MaxConcurrency``. Values are normalised to ints before moto sees them;
a violation is a ``ValidationException`` naming the field, its constraint and the fix.
"""

from __future__ import annotations

from typing import Any

from moto.sagemaker.exceptions import ValidationError

MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)
LIMITS = {"MaxConcurrency": (1, 200), "ProvisionedConcurrency": (1, 200)}


def _as_int(value: Any, where: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(
            message=f"Value '{value}' at '{where}' failed to satisfy constraint: Member must be an integer."
        ) from None
    if number != int(number):
        raise ValidationError(
            message=f"Value '{value}' at '{where}' failed to satisfy constraint: Member must be an integer."
        )
    return int(number)


def normalise(production_variants: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The variants with each ServerlessConfig checked and its values as ints (ValidationError otherwise)."""
    for index, variant in enumerate(production_variants or [], start=1):
        config = variant.get("ServerlessConfig")
        if not config:
            continue
        prefix = f"productionVariants.{index}.member.serverlessConfig"
        for name in ("MemorySizeInMB", "MaxConcurrency"):
            if name not in config:
                raise ValidationError(
                    message=f"ServerlessConfig of variant {variant.get('VariantName')} needs {name}."
                )
        memory = _as_int(config["MemorySizeInMB"], f"{prefix}.memorySizeInMB")
        if memory not in MEMORY_SIZES:
            raise ValidationError(
                message=f"Value '{memory}' at '{prefix}.memorySizeInMB' failed to satisfy constraint: Member must be "
                f"one of {', '.join(map(str, MEMORY_SIZES))} (1 GB steps from 1024 to 6144 MB)."
            )
        config["MemorySizeInMB"] = memory
        for name, (low, high) in LIMITS.items():
            if name not in config or config[name] is None:
                continue
            value = _as_int(config[name], f"{prefix}.{name[0].lower()}{name[1:]}")
            if not low <= value <= high:
                bound = f"greater than or equal to {low}" if value < low else f"less than or equal to {high}"
                raise ValidationError(
                    message=f"Value '{value}' at '{prefix}.{name[0].lower()}{name[1:]}' failed to satisfy "
                    f"constraint: Member must have value {bound}."
                )
            config[name] = value
        provisioned = config.get("ProvisionedConcurrency")
        if provisioned is not None and provisioned > config["MaxConcurrency"]:
            raise ValidationError(
                message=f"ProvisionedConcurrency ({provisioned}) of variant {variant.get('VariantName')} must be less "
                f"than or equal to its MaxConcurrency ({config['MaxConcurrency']}): lower it or raise MaxConcurrency."
            )
    return production_variants or []
