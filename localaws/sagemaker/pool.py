"""Scaling of a serverless endpoint variant: cold starts, scale-out to MaxConcurrency, scale to zero,
and Provisioned Concurrency kept warm.

As AWS documents it (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html,
https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-invoke.html):

- an invocation with no idle container starts one: a *cold start*, "also if your concurrent requests
  exceed the current concurrent request usage"; its ``ModelSetupTime`` is measured;
- at most ``MaxConcurrency`` invocations run at once; "any endpoint invocations beyond the maximum are
  throttled" (``ThrottlingException``, never queued);
- with no traffic the endpoint "scales down to 0": an idle on-demand container is stopped after
  ``LOCALAWS_SAGEMAKER_IDLE_SECONDS`` (AWS publishes no number; default 300 s);
- ``ProvisionedConcurrency`` containers are started with the endpoint and kept warm (never scaled to
  zero); invocations use them first and spill over to on-demand cold starts;
- the container must answer ``/ping`` within 3 minutes (``LOCALAWS_SAGEMAKER_SETUP_SECONDS``) and
  ``/invocations`` within 1 minute (``LOCALAWS_SAGEMAKER_INVOCATION_SECONDS``).
A container serves one invocation at a time (serverless endpoints use one worker per container).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from localaws.lambda_engine.sandbox import Sandbox
from localaws.sagemaker.container import Container, ContainerSpec, InvocationTimeout, SetupFailed

log = logging.getLogger(__name__)


def setting(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        log.warning("%s=%r is not a number; using %s", name, os.environ.get(name), default)
        return default


class Throttled(Exception):
    """More concurrent invocations than MaxConcurrency."""


@dataclass
class Answer:
    """What one invocation got: the container's answer, or why it got none."""

    status: int | None  # the container's HTTP status; None when no container answered
    body: bytes
    headers: dict
    model_latency_us: float | None
    setup_ms: float | None  # set on a cold start
    log_stream_arn: str
    failure: str | None = None  # "timeout", "setup" (no healthy container) or "crash" (died answering)
    message: str = ""


class VariantPool:
    """The containers of one serverless production variant."""

    def __init__(
        self,
        spec: ContainerSpec,
        *,
        max_concurrency: int,
        provisioned: int,
        sandbox: Sandbox | None,
        image: Path,
        state_dir: Path,
    ):
        self.spec = spec
        self.max_concurrency = max_concurrency
        self.provisioned = provisioned
        self.sandbox, self.image, self.state_dir = sandbox, image, state_dir
        self.idle_s = setting("LOCALAWS_SAGEMAKER_IDLE_SECONDS", 300.0)
        self.setup_s = setting("LOCALAWS_SAGEMAKER_SETUP_SECONDS", 180.0)
        self.invocation_s = setting("LOCALAWS_SAGEMAKER_INVOCATION_SECONDS", 60.0)
        self._lock = threading.Lock()
        self._idle: list[Container] = []
        self._all: set[Container] = set()
        self._in_flight = 0
        self._closed = threading.Event()
        self.cold_starts = 0
        threading.Thread(target=self._reap, name=f"sm-reaper-{spec.endpoint_name}", daemon=True).start()

    def _new(self, provisioned: bool) -> Container:
        container = Container(self.spec, self.sandbox, self.image, self.state_dir, provisioned)
        with self._lock:
            self._all.add(container)
        return container

    def provision(self) -> None:
        """Start the provisioned containers and wait until each is healthy (SetupFailed otherwise)."""
        started = [self._new(provisioned=True) for _ in range(self.provisioned)]
        for container in started:
            container.wait_healthy(self.setup_s)
        with self._lock:
            self._idle.extend(started)

    def invoke(self, body: bytes, headers: dict[str, str]) -> Answer:
        with self._lock:
            if self._closed.is_set() or self._in_flight >= self.max_concurrency:
                raise Throttled()
            self._in_flight += 1
            warm = sorted(self._idle, key=lambda c: not c.provisioned)  # provisioned first
            container = next((c for c in warm if c.alive), None)
            if container is not None:
                self._idle.remove(container)
        try:
            return self._run(container, body, headers)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _run(self, container: Container | None, body: bytes, headers: dict[str, str]) -> Answer:
        setup_ms = None
        if container is None:
            container = self._new(provisioned=False)
            self.cold_starts += 1
            try:
                setup_ms = container.wait_healthy(self.setup_s)
            except SetupFailed as exc:
                self._retire(container)
                return Answer(None, b"", {}, None, None, container.log.arn, "setup", str(exc))
        try:
            status, data, reply_headers, latency_us = container.invoke(body, headers, self.invocation_s)
        except InvocationTimeout:
            self._retire(container)
            return Answer(None, b"", {}, self.invocation_s * 1e6, setup_ms, container.log.arn, "timeout")
        except SetupFailed as exc:
            self._retire(container)
            return Answer(None, b"", {}, None, setup_ms, container.log.arn, "crash", str(exc))
        with self._lock:
            if container.alive and not self._closed.is_set():
                self._idle.append(container)
            else:
                self._all.discard(container)
        return Answer(status, data, reply_headers, latency_us, setup_ms, container.log.arn)

    def _retire(self, container: Container) -> None:
        container.stop()
        with self._lock:
            self._all.discard(container)
            if container in self._idle:
                self._idle.remove(container)
        if container.provisioned and not self._closed.is_set():
            threading.Thread(target=self._replace_provisioned, daemon=True).start()

    def _replace_provisioned(self) -> None:
        try:
            replacement = self._new(provisioned=True)
            replacement.wait_healthy(self.setup_s)
        except SetupFailed:
            log.warning("a provisioned container of %s could not be replaced", self.spec.endpoint_name)
            return
        with self._lock:
            self._idle.append(replacement)

    def _reap(self) -> None:
        """Stop on-demand containers idle longer than the idle time (scale to zero)."""
        while not self._closed.wait(min(1.0, max(0.05, self.idle_s / 4))):
            now = time.monotonic()
            with self._lock:
                expired = [c for c in self._idle if not c.provisioned and now - c.last_used >= self.idle_s]
                dead = [c for c in self._idle if not c.alive]
                for container in expired + dead:
                    if container in self._idle:
                        self._idle.remove(container)
                    self._all.discard(container)
            for container in expired + dead:
                container.stop()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "running": len(self._all),
                "idle": len(self._idle),
                "provisioned": sum(1 for c in self._all if c.provisioned),
                "in_flight": self._in_flight,
                "cold_starts": self.cold_starts,
            }

    def shutdown(self) -> None:
        self._closed.set()
        with self._lock:
            containers = list(self._all)
            self._all.clear()
            self._idle.clear()
        for container in containers:
            container.stop()
