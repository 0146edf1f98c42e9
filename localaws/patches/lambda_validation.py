"""Lambda API: configuration validated as AWS validates it, and GetAccountSettings.

Gaps of stock moto 5.2.5 filled here (each refused with AWS's exception name and message):

- ``MemorySize`` outside 128-10240 MB, ``Timeout`` outside 1-900 s, ``EphemeralStorage.Size``
  outside 512-10240 MB are accepted (moto checks only the storage maximum). Quotas:
  https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
- Environment variables above 4 KB in total, or naming a key the runtime reserves (``AWS_REGION``,
  ``_HANDLER``...), are accepted. Reserved keys:
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-runtime.html
- A zip above 50 MB uploaded directly, or code + layers above 250 MB unzipped, is accepted
  (``RequestEntityTooLargeException`` / ``InvalidParameterValueException`` on AWS); a file that is
  not a zip is accepted too.
- A zip Lambda could not unzip onto Linux is accepted, and fails at invoke with an HTML 500 (CreateFunction,
  UpdateFunctionCode, PublishLayerVersion): a file that is also a folder (``a`` and ``a/b``), a name over
  255 bytes, a member whose CRC-32 lies. Lambda answers ``InvalidParameterValueException`` "Could not unzip
  uploaded file. Please check your file, then try to upload again." (checked by :mod:`.lambda_engine.unzip`).
- ``FileSystemConfigs[].LocalMountPath`` is not checked against Lambda's pattern ``^/mnt/[a-zA-Z0-9-_.]+$``
  (max 160: https://docs.aws.amazon.com/lambda/latest/api/API_FileSystemConfig.html), so a path such as
  ``/../../x`` reached the sandbox's mount code; refused with ``ValidationException``.
- Deprecated runtimes (python2.7, python3.6-3.8) can be created; any runtime string is accepted, and
  a function of a runtime this engine cannot run (Node.js, Java, container images...) is created and
  then fails at invoke. Runtimes: https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html
- ``PutFunctionConcurrency`` can reserve the whole account (moto checks only with
  ``MOTO_LAMBDA_CONCURRENCY_QUOTA``); AWS keeps at least 100 of the account's 1000 unreserved:
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html. What is unreserved
  leaves out the Provisioned Concurrency of functions without a reservation too (the engine holds it and
  tells through :func:`count_provisioned_with`): "allocated concurrency" is "the total reserved
  concurrency plus total provisioned concurrency"
  (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-concurrency.html).
- ``GetAccountSettings`` (``GET /2016-08-19/account-settings``) is not served at all:
  https://docs.aws.amazon.com/lambda/latest/api/API_GetAccountSettings.html

The checks sit on moto's backend methods, so functions created by CloudFormation are checked too.
``LOCALAWS_LAMBDA_CONCURRENCY_LIMIT`` (default 1000) sets the account's concurrency quota, for
rehearsing a new account's lower one.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import os
import re
import zipfile
from collections.abc import Callable
from typing import Any

import botocore.session
from moto.awslambda import models
from moto.awslambda.exceptions import InvalidParameterValueException, LambdaClientError, ValidationException
from moto.awslambda.utils import get_backend
from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

log = logging.getLogger(__name__)

MEMORY_MB = (128, 10240)
TIMEOUT_S = (1, 900)
EPHEMERAL_MB = (512, 10240)
ENVIRONMENT_BYTES = 4096
ZIPPED_BYTES = 52428800  # 50 MB, direct upload
UNZIPPED_BYTES = 262144000  # 250 MB, code + layers
TOTAL_CODE_BYTES = 80530636800  # 75 GB of function and layer storage per Region
UNRESERVED_MINIMUM = 100
LOCAL_MOUNT_PATH = r"^/mnt/[a-zA-Z0-9-_.]+$"
DEPRECATED_RUNTIMES = {"python2.7", "python3.6", "python3.7", "python3.8"}
LATEST_PYTHON = "python3.13"
# The runtime keys Lambda sets itself and refuses in a function's configuration (TZ is listed as
# reserved too, but Lambda accepts it in practice, so it is not refused here).
RESERVED_VARIABLES = (
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
)
_RUNTIMES = tuple(botocore.session.get_session().get_service_model("lambda").shape_for("Runtime").enum)


class RequestEntityTooLargeException(LambdaClientError):
    code = 413

    def __init__(self, message: str):
        super().__init__("RequestEntityTooLargeException", message)


def concurrency_limit() -> int:
    return int(os.environ.get("LOCALAWS_LAMBDA_CONCURRENCY_LIMIT", "1000"))


def _check_range(value: Any, name: str, low: int, high: int) -> None:
    if value is None:
        return
    if int(value) < low:
        raise ValidationException(value, name, f"Member must have value greater than or equal to {low}")
    if int(value) > high:
        raise ValidationException(value, name, f"Member must have value less than or equal to {high}")


def _check_environment(environment: dict | None) -> None:
    variables = (environment or {}).get("Variables") or {}
    reserved = [key for key in variables if key in RESERVED_VARIABLES]
    if reserved:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment variables "
            "you have provided contains reserved keys that are currently not supported for modification. "
            f"Reserved keys used in this request: {', '.join(reserved)}"
        )
    measured = json.dumps(variables, separators=(",", ":"))
    if len(measured.encode()) > ENVIRONMENT_BYTES:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment variables "
            f"you have provided exceeded the 4KB limit. String measured: {measured[:200]}..."
        )


def check_runtime(runtime: str | None, package_type: str | None, *, creating: bool) -> None:
    """Refuse what AWS refuses, then what this engine cannot run (it runs Python zip functions)."""
    if package_type == "Image":
        raise InvalidParameterValueException(
            "Container image functions (PackageType Image) cannot run on the local engine, which runs "
            f"Python .zip functions only: package the code as a .zip with Runtime {LATEST_PYTHON}."
        )
    if runtime is None:
        if creating:
            raise InvalidParameterValueException(
                f"Runtime is required for a .zip deployment package: use Runtime {LATEST_PYTHON}."
            )
        return
    if runtime not in _RUNTIMES:
        raise ValidationException(
            runtime, "runtime", f"Member must satisfy enum value set: [{', '.join(_RUNTIMES)}]"
        )
    if runtime in DEPRECATED_RUNTIMES:
        raise InvalidParameterValueException(
            f"The runtime parameter of {runtime} is no longer supported for creating or updating AWS "
            f"Lambda functions. We recommend you use the new runtime ({LATEST_PYTHON}) while creating or "
            "updating functions."
        )
    if not runtime.startswith("python"):
        raise InvalidParameterValueException(
            f"Runtime {runtime} cannot run on the local engine, which runs Python functions only: use "
            f"a Python runtime such as {LATEST_PYTHON}, or deploy this function to AWS."
        )


def _code_bytes(account_id: str, region: str, code: dict | None) -> bytes | None:
    """The zip a ``Code`` / UpdateFunctionCode body names (inline or in S3), or None if there is none."""
    code = code or {}
    if "ZipFile" in code:
        raw = code["ZipFile"]
        try:
            return base64.b64decode(raw.encode() if isinstance(raw, str) else raw)
        except (binascii.Error, ValueError) as exc:
            raise InvalidParameterValueException(
                "Could not unzip uploaded file. Please check your file, then try to upload again."
            ) from exc
    if "S3Bucket" in code and "S3Key" in code:
        try:
            return (
                s3_backends[account_id][get_partition(region)]
                .get_object(code["S3Bucket"], code["S3Key"])
                .value
            )
        except Exception:  # noqa: BLE001 - moto answers a missing object itself, with S3's error
            return None
    return None


def _unzipped_size(data: bytes) -> int:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError) as exc:
        raise InvalidParameterValueException(
            "Could not unzip uploaded file. Please check your file, then try to upload again."
        ) from exc


def _layers_size(backend, layer_arns: list[str]) -> int:
    total = 0
    for arn in layer_arns or []:
        layer = backend.layers_versions_by_arn(arn)
        if layer is not None and getattr(layer, "code_bytes", b""):
            total += _unzipped_size(layer.code_bytes)
    return total


def _check_code(backend, code: dict | None, layers: list[str] | None, operation: str) -> None:
    data = _code_bytes(backend.account_id, backend.region_name, code)
    if data is not None and "ZipFile" in (code or {}) and len(data) > ZIPPED_BYTES:
        # Lambda's answer since late 2023, as recorded against AWS (LocalStack's snapshot tests); a request
        # too large to carry such a zip is refused before it is read (localaws.limits).
        raise RequestEntityTooLargeException(f"Zipped size must be smaller than {ZIPPED_BYTES} bytes")
    _check_unzipped(backend, data, layers)


def _check_unzipped(backend, data: bytes | None, layers: list[str] | None) -> None:
    unzipped = (_unzipped_size(data) if data else 0) + _layers_size(backend, layers or [])
    if unzipped > UNZIPPED_BYTES:
        raise InvalidParameterValueException(f"Unzipped size must be smaller than {UNZIPPED_BYTES} bytes")
    if data:
        _check_unzips(data)


def _check_unzips(data: bytes) -> None:
    """Every member readable, named as Linux allows, and matching its CRC: what Lambda's unzip needs."""
    from localaws.lambda_engine import unzip  # the engine's package imports these patches' backends

    try:
        unzip.check(data)
    except unzip.UnzipError as exc:
        log.info("refused a zip: %s", exc.detail)
        raise InvalidParameterValueException(unzip.UNZIP_MESSAGE) from None


def _check_file_systems(configs: Any) -> None:
    for index, config in enumerate(configs if isinstance(configs, list) else [], start=1):
        path = (config or {}).get("LocalMountPath") if isinstance(config, dict) else None
        if path is None:
            raise ValidationException(
                "null", f"fileSystemConfigs.{index}.member.localMountPath", "Member must not be null"
            )
        if not isinstance(path, str) or len(path) > 160 or not re.match(LOCAL_MOUNT_PATH, path):
            raise ValidationException(
                str(path)[:200],
                f"fileSystemConfigs.{index}.member.localMountPath",
                f"Member must satisfy regular expression pattern: {LOCAL_MOUNT_PATH}",
            )


def _check_configuration(spec: dict[str, Any]) -> None:
    _check_range(spec.get("MemorySize"), "memorySize", *MEMORY_MB)
    _check_range(spec.get("Timeout"), "timeout", *TIMEOUT_S)
    if spec.get("EphemeralStorage"):
        _check_range(spec["EphemeralStorage"].get("Size"), "ephemeralStorage.size", *EPHEMERAL_MB)
    if "Environment" in spec:
        _check_environment(spec["Environment"])
    if spec.get("FileSystemConfigs"):
        _check_file_systems(spec["FileSystemConfigs"])


def _reserved_elsewhere(backend, function_name: str) -> int:
    return sum(
        int(fn.reserved_concurrency)
        for fn in backend._lambdas.latest()
        if fn.reserved_concurrency is not None and fn.function_name != function_name
    )


def _no_provisioned(account_id: str, region: str) -> dict[str, int]:
    return {}


_provisioned: Callable[[str, str], dict[str, int]] = _no_provisioned


def count_provisioned_with(totals: Callable[[str, str], dict[str, int]]) -> None:
    """Where Provisioned Concurrency is held (the Lambda engine): ``totals(account_id, region)`` is
    ``{function name: environments configured}``; it counts against the unreserved concurrency."""
    global _provisioned
    _provisioned = totals


def unreserved_concurrency(backend, excluding: str = "") -> int:
    """The account's concurrency minus what functions other than ``excluding`` reserve, and the
    Provisioned Concurrency of those of them without a reservation (theirs lives inside it)."""
    reserved = {
        fn.function_name: int(fn.reserved_concurrency)
        for fn in backend._lambdas.latest()
        if fn.reserved_concurrency is not None
    }
    provisioned = _provisioned(backend.account_id, backend.region_name)
    claimed = sum(n for name, n in reserved.items() if name != excluding)
    claimed += sum(n for name, n in provisioned.items() if name != excluding and name not in reserved)
    return concurrency_limit() - claimed


def _check_reserved(backend, function_name: str, requested: Any) -> None:
    if requested is None:
        return
    if unreserved_concurrency(backend, function_name) - int(requested) < UNRESERVED_MINIMUM:
        raise InvalidParameterValueException(
            "Specified ReservedConcurrentExecutions for function decreases account's "
            f"UnreservedConcurrentExecution below its minimum value of [{UNRESERVED_MINIMUM}]."
        )


def account_settings(account_id: str, region: str) -> dict[str, Any]:
    """GetAccountSettings' answer for this account and Region."""
    backend = get_backend(account_id, region)
    functions = list(backend._lambdas.all())
    layers = [v for layer in backend._layers._layers.values() for v in layer.layer_versions.values()]
    reserved = _reserved_elsewhere(backend, "")
    return {
        "AccountLimit": {
            "TotalCodeSize": TOTAL_CODE_BYTES,
            "CodeSizeUnzipped": UNZIPPED_BYTES,
            "CodeSizeZipped": ZIPPED_BYTES,
            "ConcurrentExecutions": concurrency_limit(),
            "UnreservedConcurrentExecutions": max(concurrency_limit() - reserved, 0),
        },
        "AccountUsage": {
            "TotalCodeSize": sum(int(f.code_size or 0) for f in functions)
            + sum(int(v.code_size or 0) for v in layers),
            "FunctionCount": len(list(backend._lambdas.latest())),
        },
    }


def check_cloudformation_update(properties: dict[str, Any]) -> None:
    """What UpdateFunctionConfiguration checks, for a stack update of an ``AWS::Lambda::Function``."""
    if "Runtime" in properties:
        check_runtime(properties["Runtime"], properties.get("PackageType"), creating=False)
    _check_configuration(properties)


def _wrap_create_function(original):
    def create_function(self, spec: dict[str, Any]):
        check_runtime(spec.get("Runtime"), spec.get("PackageType"), creating=True)
        _check_configuration(spec)
        _check_reserved(self, spec.get("FunctionName", ""), spec.get("ReservedConcurrentExecutions"))
        _check_code(self, spec.get("Code"), spec.get("Layers"), "CreateFunction")
        return original(self, spec)

    return create_function


def _wrap_update_configuration(original):
    def update_function_configuration(self, function_name: str, qualifier: str, body: dict[str, Any]):
        if "Runtime" in body:
            check_runtime(body["Runtime"], None, creating=False)
        _check_configuration(body)
        if "Layers" in body:
            _check_unzipped(self, self.get_function(function_name, qualifier).code_bytes, body["Layers"])
        return original(self, function_name, qualifier, body)

    return update_function_configuration


def _wrap_update_code(original):
    def update_function_code(self, function_name: str, qualifier: str, body: dict[str, Any]):
        fn = self.get_function(function_name, qualifier)
        layers = [layer["Arn"] for layer in fn.layers or []]
        _check_code(self, body, layers, "UpdateFunctionCode")
        return original(self, function_name, qualifier, body)

    return update_function_code


def _wrap_put_concurrency(original):
    def put_function_concurrency(self, function_name: str, reserved_concurrency: str):
        fn = self.get_function(function_name)
        _check_reserved(self, fn.function_name, reserved_concurrency)
        return original(self, function_name, reserved_concurrency)

    return put_function_concurrency


def _wrap_publish_layer_version(original):
    def publish_layer_version(self, spec: dict[str, Any]):
        data = _code_bytes(self.account_id, self.region_name, spec.get("Content"))
        if data:
            _check_unzips(data)
        return original(self, spec)

    return publish_layer_version


def apply() -> None:
    backend = models.LambdaBackend
    backend.publish_layer_version = _wrap_publish_layer_version(backend.publish_layer_version)
    backend.create_function = _wrap_create_function(backend.create_function)
    backend.update_function_configuration = _wrap_update_configuration(backend.update_function_configuration)
    backend.update_function_code = _wrap_update_code(backend.update_function_code)
    backend.put_function_concurrency = _wrap_put_concurrency(backend.put_function_concurrency)
