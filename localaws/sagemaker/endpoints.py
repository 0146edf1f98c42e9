"""Endpoint lifecycle: ``Creating`` -> ``InService`` or ``Failed`` with a ``FailureReason``.

AWS (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpoint.html and
API_DescribeEndpoint.html): CreateEndpoint returns at once with the endpoint ``Creating``; SageMaker
then fetches the model, prepares its compute and sets ``InService``, or ``Failed`` with a
``FailureReason`` (DescribeEndpoint); the ``endpoint_in_service`` waiter polls for it. Stock moto 5.2.5
makes every endpoint ``InService`` at once and never fails one.

Here, after ``LOCALAWS_SAGEMAKER_CREATE_SECONDS`` (default 1 s), each serverless variant is prepared:
its model's container image must be a PyTorch inference image (the only one emulated), its
``ModelDataUrl`` is read from S3 and extracted (:mod:`.archive`), and its Provisioned Concurrency
containers are started and must pass ``/ping`` (:mod:`.pool`). Any failure makes the endpoint
``Failed`` with a reason that says what to fix. Instance-based variants are left to moto (no data
plane). DeleteEndpoint stops the endpoint's containers.

The framework the emulated image provides (torch, Pillow) is a folder importable as site-packages:
``LOCALAWS_SAGEMAKER_FRAMEWORK`` when the server starts, else ``<state>/sagemaker/framework`` (a
folder or link that a client may create at any time), precompiled once if it has no bytecode
(:mod:`.framework`).
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from moto.core.utils import utcnow

from localaws.lambda_engine.sandbox import Sandbox
from localaws.sagemaker import archive, framework
from localaws.sagemaker.container import ContainerSpec, SetupFailed, image_dir
from localaws.sagemaker.pool import VariantPool, setting

log = logging.getLogger(__name__)

FRAMEWORK_SETTING = "LOCALAWS_SAGEMAKER_FRAMEWORK"
EMULATED_IMAGE = "pytorch-inference"
_current: Manager | None = None


def current() -> Manager | None:
    return _current


class Manager:
    """The serverless endpoints of one server: their preparation and their variant pools."""

    def __init__(self, state_dir: Path, sandbox: Sandbox | None):
        self.state_dir = Path(state_dir)
        self.sandbox = sandbox
        self.image = image_dir(self.state_dir)
        self.models_dir = self.state_dir / "sagemaker" / "models"
        self.create_s = setting("LOCALAWS_SAGEMAKER_CREATE_SECONDS", 1.0)
        self._lock = threading.Lock()
        self.pools: dict[tuple[str, str, str], dict[str, VariantPool]] = {}
        self._ready: dict[tuple[str, str, str], threading.Event] = {}

    def framework_dir(self) -> Path | None:
        configured = os.environ.get(FRAMEWORK_SETTING)
        candidate = Path(configured) if configured else self.state_dir / "sagemaker" / "framework"
        return candidate.resolve() if candidate.is_dir() else None

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self, backend: Any, endpoint: Any) -> threading.Event:
        """Put a just-created endpoint in ``Creating`` and prepare it in the background."""
        key = (backend.account_id, backend.region_name, endpoint.endpoint_name)
        endpoint.endpoint_status = "Creating"
        endpoint.failure_reason = None
        done = threading.Event()
        with self._lock:
            self._ready[key] = done
        threading.Thread(
            target=self._prepare, args=(backend, endpoint, key, done), name=f"sm-create-{key[2]}", daemon=True
        ).start()
        return done

    def _prepare(self, backend: Any, endpoint: Any, key: tuple[str, str, str], done: threading.Event) -> None:
        time.sleep(self.create_s)
        pools: dict[str, VariantPool] = {}
        try:
            config = backend.endpoint_configs.get(endpoint.endpoint_config_name)
            variants = config.production_variants if config is not None else []
            for variant in variants:
                if variant.get("ServerlessConfig"):
                    pools[variant["VariantName"]] = self._pool(backend, endpoint.endpoint_name, variant)
            for pool in pools.values():
                pool.provision()
        except (archive.ArchiveError, SetupFailed, _Unsupported) as exc:
            for pool in pools.values():
                pool.shutdown()
            reason = (
                str(exc) if not isinstance(exc, SetupFailed) else f"A provisioned container failed: {exc}"
            )
            self._settle(backend, endpoint, key, None, "Failed", reason[:1024])
        except Exception as exc:  # noqa: BLE001 - any bug fails the endpoint, never the server
            log.exception("preparing endpoint %s failed", key[2])
            for pool in pools.values():
                pool.shutdown()
            self._settle(
                backend, endpoint, key, None, "Failed", f"Internal error of the local backend: {exc}"
            )
        else:
            self._settle(backend, endpoint, key, pools, "InService", None)
        finally:
            done.set()

    def _settle(self, backend, endpoint, key, pools, status: str, reason: str | None) -> None:
        with self._lock:
            if backend.endpoints.get(key[2]) is not endpoint:  # deleted (or replaced) meanwhile
                for pool in (pools or {}).values():
                    pool.shutdown()
                return
            if pools:
                self.pools[key] = pools
            endpoint.endpoint_status = status
            endpoint.failure_reason = reason
            endpoint.last_modified_time = utcnow()
        log.info("endpoint %s is %s%s", key[2], status, f": {reason}" if reason else "")

    def _pool(self, backend: Any, endpoint_name: str, variant: dict) -> VariantPool:
        model = backend._models.get(variant["ModelName"])
        if model is None:
            raise _Unsupported(
                f"The model {variant['ModelName']} of variant {variant['VariantName']} was deleted."
            )
        container = model.primary_container or (model.containers or [{}])[0]
        image = container.get("Image", "")
        if EMULATED_IMAGE not in image.rsplit("/", 1)[-1].split(":")[0]:
            raise _Unsupported(
                f'The local backend emulates only the SageMaker PyTorch inference container (a "{EMULATED_IMAGE}" '
                f'image); the image "{image}" of model {model.model_name} cannot run here.'
            )
        framework_dir = self.framework_dir()
        if framework_dir is not None:
            try:
                framework_dir = framework.precompiled(
                    framework_dir, self.state_dir / "sagemaker" / "framework-cache"
                )
            except (OSError, subprocess.CalledProcessError) as exc:
                raise _Unsupported(
                    f"The framework folder {framework_dir} could not be prepared for the image: {exc}"
                ) from None
        data = archive.read_s3(container.get("ModelDataUrl", ""), backend.account_id, backend.region_name)
        model_dir = archive.extract(data, self.models_dir, container.get("ModelDataUrl", ""))
        serverless = variant["ServerlessConfig"]
        spec = ContainerSpec(
            account_id=backend.account_id,
            region=backend.region_name,
            endpoint_name=endpoint_name,
            variant_name=variant["VariantName"],
            memory_mb=int(serverless["MemorySizeInMB"]),
            model_dir=model_dir,
            framework_dir=framework_dir,
            environment={str(k): str(v) for k, v in (container.get("Environment") or {}).items()},
        )
        return VariantPool(
            spec,
            max_concurrency=int(serverless["MaxConcurrency"]),
            provisioned=int(serverless.get("ProvisionedConcurrency") or 0),
            sandbox=self.sandbox,
            image=self.image,
            state_dir=self.state_dir,
        )

    def wait(self, account_id: str, region: str, name: str, timeout_s: float) -> bool:
        done = self._ready.get((account_id, region, name))
        return done.wait(timeout_s) if done is not None else True

    def variant(self, account_id: str, region: str, name: str, target: str | None) -> VariantPool | None:
        pools = self.pools.get((account_id, region, name)) or {}
        if target:
            return pools.get(target)
        return next(iter(pools.values()), None)

    def delete(self, account_id: str, region: str, name: str) -> None:
        with self._lock:
            pools = self.pools.pop((account_id, region, name), {})
            self._ready.pop((account_id, region, name), None)
        for pool in pools.values():
            pool.shutdown()

    def shutdown(self) -> None:
        with self._lock:
            everything = list(self.pools.values())
            self.pools.clear()
        for pools in everything:
            for pool in pools.values():
                pool.shutdown()


class _Unsupported(Exception):
    """The endpoint cannot be served here; the message is its FailureReason."""


def install(state_dir: Path, sandbox: Sandbox | None) -> Manager:
    global _current
    _current = Manager(state_dir, sandbox)
    return _current


def uninstall(manager: Manager) -> None:
    global _current
    manager.shutdown()
    if _current is manager:
        _current = None
