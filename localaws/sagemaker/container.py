"""One serverless container: the emulated PyTorch inference image running in the Lambda sandbox.

Serverless Inference runs on AWS Lambda's infrastructure
(https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html), so each container gets the
guarantees of :mod:`localaws.lambda_engine.sandbox`, reused piece by piece (its ``filesystem`` plan and
apply, ``identity``, ``cgroups``):

- file system: its own mount namespace on an empty root; ``/opt/ml/model`` = the extracted model
  archive, read-only, with the code at ``/opt/ml/model/code``; the framework bundle (torch, Pillow)
  read-only at ``/opt/conda/lib/pythonX.Y/site-packages``, where the DLC image has it; the serving
  shim (:mod:`.serving`, this "image"'s entry point) read-only at ``/var/task``; a private ``/tmp`` of
  5 GB (serverless endpoints have 5 GB of storage); nothing else of the host;
- identity: never root (serverless containers run without root's permissions, see the troubleshooting
  page https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-troubleshooting.html), own
  PID namespace;
- CPU and memory: "compute resources proportional to the memory you select"; AWS publishes no ratio,
  so Lambda's (one vCPU per 1,769 MB, capped at this machine's cores) is used, and memory is capped at
  ``MemorySizeInMB`` by the kernel.
- processes: Lambda's 1,024 processes and threads (the sandbox's pids cgroup, or ``RLIMIT_NPROC`` in user
  namespaces: :mod:`localaws.lambda_engine.sandbox.limits`), as on the infrastructure it runs on; SageMaker
  documents no quota of its own, and a fork bomb in a model never reaches the host.

Where the sandbox is off (not Linux, neither root nor user namespaces, ``LOCALAWS_SANDBOX=off``), the
container runs as a host process with ``SAGEMAKER_BASE_PATH`` pointing at the extracted model, and its
first log line says which guarantees are off. It listens on 127.0.0.1 on a port of its own (``SAGEMAKER_BIND_TO_PORT``).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from localaws.lambda_engine.logs import MAX_LINE_BYTES
from localaws.lambda_engine.sandbox import Sandbox, cgroups, filesystem, identity, runtime
from localaws.sagemaker.telemetry import ContainerLog

SHIM = "serving.py"
MODEL_MOUNT = "/opt/ml/model"
FRAMEWORK_MOUNT = f"/opt/conda/lib/python{runtime.VERSION}/site-packages"
STORAGE_MB = 5120  # every serverless endpoint has 5 GB of storage
RESPONSE_LIMIT = 4 * 1024 * 1024  # serverless endpoints: 4 MB request and response payloads


class SetupFailed(Exception):
    """The container did not become healthy; the message says why (with its last log lines)."""


class InvocationTimeout(Exception):
    """The container did not answer ``/invocations`` in time."""


@dataclass
class ContainerSpec:
    """What every container of one endpoint variant runs."""

    account_id: str
    region: str
    endpoint_name: str
    variant_name: str
    memory_mb: int
    model_dir: Path
    framework_dir: Path | None
    environment: dict[str, str] = field(default_factory=dict)


def image_dir(state_dir: Path) -> Path:
    """The "image" folder (the serving shim), refreshed from this package at each server start."""
    target = Path(state_dir) / "sagemaker" / "image"
    target.mkdir(parents=True, exist_ok=True)
    source = (Path(__file__).parent / SHIM).read_bytes()
    if not (target / SHIM).exists() or (target / SHIM).read_bytes() != source:
        (target / SHIM).write_bytes(source)
    target.chmod(0o755)
    (target / SHIM).chmod(0o644)
    return target


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Container:
    """A process serving one model; the pool hands it one invocation at a time."""

    def __init__(
        self, spec: ContainerSpec, sandbox: Sandbox | None, image: Path, state_dir: Path, provisioned: bool
    ):
        self.spec = spec
        self.id = uuid.uuid4().hex[:16]
        self.provisioned = provisioned
        self.port = _free_port()
        self.log = ContainerLog(
            spec.account_id, spec.region, spec.endpoint_name, f"{spec.variant_name}/{self.id}"
        )
        self.last_used = time.monotonic()
        self.setup_ms: float | None = None
        self._tail: list[str] = []
        self._group: cgroups.Group | None = None
        self._host_base: Path | None = None  # SAGEMAKER_BASE_PATH of a host process
        env = {
            "PATH": "/opt/conda/bin:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "HOME": "/tmp",
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "SAGEMAKER_PROGRAM": "inference.py",
            **spec.environment,
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
            "OMP_NUM_THREADS": str(max(1, round(cgroups.cpu_share(spec.memory_mb)))),
        }
        if sandbox is not None and sandbox.enabled:
            command, preexec, note = self._sandboxed(sandbox, image, env)
        else:
            command, preexec, note = self._on_host(image, env, state_dir, sandbox)
        self.log.write([f"localaws container {self.id}: {note}"])
        self._spawned = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            env=env,
            preexec_fn=preexec,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=self._read_output, name=f"sm-container-{self.id}", daemon=True).start()

    # --- launching ---------------------------------------------------------------------------------

    def _sandboxed(self, sandbox: Sandbox, image: Path, env: dict) -> tuple[list[str], object, str]:
        spec = self.spec
        # The extracted archive is opened inside the models folder without following links, as an access point.
        mounts: dict = {MODEL_MOUNT: filesystem.Beneath(spec.model_dir.parent, spec.model_dir.name)}
        if spec.framework_dir is not None:
            mounts[FRAMEWORK_MOUNT] = spec.framework_dir
            env["LOCALAWS_FRAMEWORK_PATH"] = FRAMEWORK_MOUNT
        steps = filesystem.plan(
            task_root=image, opt_dir=None, runtime_dir=image, etc_dir=sandbox.etc,
            lang_prefix=runtime.lang_prefix(), lang_masks=runtime.lang_masks(),
            efs=mounts, efs_read_only=set(mounts), tmp_mb=STORAGE_MB,
        )  # fmt: skip
        who = identity.for_access_points([])
        layout = sandbox.layout
        if layout is not None and layout.bases:
            self._group = cgroups.Group(layout, f"sagemaker-{self.id}", spec.memory_mb)
        group = self._group
        prefix, preexec = sandbox.isolation(steps, who, group)  # as root, or in user namespaces

        note = f"sandbox {sandbox.summary()}; runs as uid {who.uid}"
        if group is not None and layout.cpu:
            note += f"; cpu: {cgroups.cpu_share(spec.memory_mb):.2f} vCPU for {spec.memory_mb} MB"
        command = prefix + [runtime.PYTHON, "-u", "-I", f"{filesystem.TASK_ROOT}/{SHIM}"]
        return command, preexec, note

    def _on_host(
        self, image: Path, env: dict, state_dir: Path, sandbox: Sandbox | None
    ) -> tuple[list[str], None, str]:
        base = Path(state_dir) / "sagemaker" / "base" / self.id
        base.mkdir(parents=True, exist_ok=True)
        (base / "model").symlink_to(self.spec.model_dir)
        self._host_base = base
        env["SAGEMAKER_BASE_PATH"] = str(base)
        if self.spec.framework_dir is not None:
            env["LOCALAWS_FRAMEWORK_PATH"] = str(self.spec.framework_dir)
        why = sandbox.summary() if sandbox is not None else "no sandbox"
        return [sys.executable, "-u", "-I", str(image / SHIM)], None, f"host process ({why})"

    # --- output ------------------------------------------------------------------------------------

    def _read_output(self) -> None:
        # A line is read up to a log event's size at a time (a longer one becomes several events, as in
        # Lambda's logs): a container printing without end never makes the server hold it whole.
        for raw in iter(lambda: self.process.stdout.readline(MAX_LINE_BYTES), b""):
            line = raw.decode(errors="replace").rstrip("\n")
            self._tail = (self._tail + [line[:1000]])[-20:]
            self.log.write([line])
        self.process.wait()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    # --- contract ----------------------------------------------------------------------------------

    def wait_healthy(self, timeout_s: float) -> float:
        """Poll ``GET /ping`` until 200; the setup time in ms (spawn to healthy), or SetupFailed."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive:
                time.sleep(0.05)  # let the reader drain the last lines
                raise SetupFailed(
                    f"the container exited with code {self.process.returncode} before /ping answered 200; "
                    "its last log lines: " + " | ".join(self._tail[-8:])
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=max(2.0, timeout_s))
                try:
                    connection.request("GET", "/ping")
                    if connection.getresponse().status == 200:
                        self.setup_ms = (time.perf_counter() - self._spawned) * 1000
                        return self.setup_ms
                finally:
                    connection.close()
            time.sleep(0.02)
        self.stop()
        raise SetupFailed(f"the container did not answer /ping with 200 within {timeout_s:.0f} s")

    def invoke(
        self, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> tuple[int, bytes, dict, float]:
        """POST /invocations: (status, body, headers, model latency in µs); InvocationTimeout past ``timeout_s``."""
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout_s)
        try:
            connection.request("POST", "/invocations", body=body, headers=headers)
            response = connection.getresponse()
            data = response.read(RESPONSE_LIMIT + 1)  # never more than the limit is held
            if len(data) > RESPONSE_LIMIT:
                raise SetupFailed(
                    f"the model's response is larger than {RESPONSE_LIMIT} bytes, the limit of serverless "
                    "endpoints (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-invoke.html)"
                )
        except TimeoutError:
            self.stop()
            raise InvocationTimeout() from None
        except (OSError, http.client.HTTPException) as exc:
            raise SetupFailed(self._crash_reason(exc)) from None
        finally:
            connection.close()
            self.last_used = time.monotonic()
        latency_us = (time.perf_counter() - started) * 1e6
        return response.status, data, dict(response.getheaders()), latency_us

    def _crash_reason(self, exc: Exception) -> str:
        """Why the container dropped an invocation (the kernel's memory limit, or its exit), then stop it."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=2)
        oom = self._group is not None and self._group.oom_kills() > 0
        self.stop()
        if oom:
            return (
                f"the container ran out of memory: it used more than its MemorySizeInMB ({self.spec.memory_mb} MB) "
                "and the kernel stopped it; choose a larger MemorySizeInMB"
            )
        code = self.process.returncode
        return (
            f"the container exited during the invocation (code {code}, {exc}); its last log lines: "
            + " | ".join(self._tail[-8:])
        )

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        if self._group is not None:
            self._group.remove()
            self._group = None
        base = self._host_base
        if base is not None:
            self._host_base = None
            with contextlib.suppress(OSError):
                (base / "model").unlink()
                base.rmdir()
