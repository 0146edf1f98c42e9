"""One execution environment: a child process running a runtime client against its own Runtime API.

The process is started as its :class:`~localaws.lambda_engine.sandbox.Launch` says (in the Lambda
sandbox, or as a host process: see :mod:`.launcher`), in a process group of its own, with stdin closed
and stdout/stderr piped into the environment's CloudWatch Logs stream (never the server's own output).
Its Runtime API serves only this environment's processes where that can be checked; while it waits for
the next invocation its cgroup is frozen, and thawed to deliver one.

Timing, as Lambda measures it: Init Duration runs from spawn to the runtime's first ``/next``;
Duration from handing an invocation to the runtime until its response or error arrives.
On-demand init is capped at 10 s like Lambda's: an init that takes longer goes on inside the first
invocation, under the function timeout, and is then counted in Duration with no Init Duration (which
is how a long cold start shows on AWS). Provisioned environments report no Init Duration.
Memory: the kernel enforces MemorySize through the sandbox's memory cgroup; without one, the process
tree's resident memory is sampled while it works (see :meth:`sample_memory`) and going above MemorySize
kills the environment. Either way Lambda's ``Runtime.OutOfMemory`` is reported.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import logging
import os
import select
import signal
import socket
import subprocess
import termios
import threading
import time
import uuid

from localaws.lambda_engine import logs, memory
from localaws.lambda_engine.delivery import Answer, Mailbox
from localaws.lambda_engine.function_spec import FunctionSpec
from localaws.lambda_engine.invocation import Invocation, Outcome, error_body, error_type_of, exit_reason
from localaws.lambda_engine.runtime_api import RuntimeAPIServer
from localaws.lambda_engine.sandbox import Launch

log = logging.getLogger(__name__)

INIT_CAP_S = 10.0  # Lambda's on-demand init limit
PROVISIONED_INIT_CAP_S = 900.0  # Provisioned Concurrency init may take up to 15 minutes


class Environment:
    """A process, its Runtime API and its log stream. The engine serialises invocations on it."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        launch: Launch,
        provisioned: bool,
        check_callers: bool = False,
        sandbox_summary: str = "",
    ):
        self.spec = spec
        self.id = uuid.uuid4().hex[:12]
        self.provisioned = provisioned
        self.init_type = "provisioned-concurrency" if provisioned else "on-demand"
        self.stream = logs.LogStream.for_environment(spec, launch, self.init_type)  # applies LoggingConfig
        self.busy = True  # the engine creates an environment for a caller (or for provisioning)
        self.retired = False
        self.last_used = time.monotonic()
        self.init_duration_ms: float | None = None
        self.init_error: tuple[bytes, str | None] | None = None
        self.exit_code: int | None = None
        self.peak_kb = 0
        self._tree: list[int] = []  # the process tree's pids, as the watchdog last saw them
        self.over_memory = False
        self._invocations = 0
        self._current: Invocation | None = None
        self._settled = threading.Event()  # ready, init error or exit
        self._out_lock = threading.Lock()
        self._partial = b""
        self.group = launch.group  # the sandbox's cgroups, or None
        self._mailbox = Mailbox(self.id, self.group.thaw if self.group is not None else lambda: None)
        self._api = RuntimeAPIServer(self, callers=self._own_pids if check_callers else None)
        self._launch = launch
        self._env = {
            **launch.env,
            "AWS_LAMBDA_RUNTIME_API": self._api.address,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.stream.name,
            "AWS_LAMBDA_INITIALIZATION_TYPE": self.init_type,
        }
        self._init_lines = (
            logs.TailLines()
        )  # INIT_START and init output: the first invocation's tail has them
        self._superseded: set[int] = set()
        try:
            self._start_process()
        except BaseException:  # out of descriptors, processes or threads: nothing of it is left running
            self.retired = True
            self._api.close()
            if getattr(self, "process", None) is not None:
                self._kill_group()
            raise
        self._log([logs.init_start_line(spec.region, sandbox_summary, launch.notes)])

    def _start_process(self) -> None:
        """Spawn the runtime; its output is read by a thread of its own, which settles only for it."""
        self._spawned = time.perf_counter()
        self.process = subprocess.Popen(
            self._launch.command,
            cwd=self._launch.cwd,
            env=self._env,
            preexec_fn=self._launch.preexec,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(
            target=self._read_output, args=(self.process,), name=f"lambda-env-{self.id}", daemon=True
        ).start()
        if self._launch.adopt and self.group is not None:
            threading.Thread(target=self.group.adopt, args=(self.process.pid,), daemon=True).start()

    def _restart(self) -> None:
        """End the process and start it again (an on-demand init past 10 s is re-run, as on AWS)."""
        self._superseded.add(self.process.pid)  # before the kill: its reader must not settle for it
        self._kill_group()
        self._mailbox.release(stop=False)  # a /next of the old process (init ended at the cap) is let go
        self._settled.clear()
        self.init_duration_ms, self.init_error = None, None
        self._start_process()

    # --- state -------------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        # poll() too: a process that died between invocations is not handed the next one before the
        # reader thread has seen its exit.
        return self.exit_code is None and not self.retired and self.process.poll() is None

    @property
    def ready(self) -> bool:
        return self.init_duration_ms is not None and self.alive

    @property
    def looks_ready(self) -> bool:
        """``ready`` as far as the engine knows without asking the kernel (no waitpid)."""
        return self.init_duration_ms is not None and self.exit_code is None and not self.retired

    def wait_settled(self, timeout: float) -> bool:
        return self._settled.wait(timeout)

    # --- Runtime API delivery ----------------------------------------------------------------------

    def next_invocation(self, conn: socket.socket | None = None) -> Answer:
        """The answer to the runtime's ``GET /next`` on ``conn`` (see :class:`.delivery.Mailbox`); the first
        one ends init."""
        if self.init_duration_ms is None:
            self.init_duration_ms = (time.perf_counter() - self._spawned) * 1000
            self._tree = memory.tree(self.process.pid)  # the runtime is up: its process is in the tree
            self._settled.set()
        return self._mailbox.next(conn, self._current)

    def complete(self, request_id: str, body: bytes, *, is_error: bool, error_type: str | None) -> bool:
        current = self._current
        if current is None or current.request_id != request_id:
            return False
        if error_type == "Function.ResponseSizeTooLarge":  # its runtime got a 413, which ends it, as on
            self.retired = True  # Lambda: the next invocation starts a new environment
        return current.settle("error" if is_error else "response", body)

    def init_failed(self, body: bytes, error_type: str | None) -> None:
        self.init_error = (body, error_type)
        self._settled.set()

    # --- output and exit ---------------------------------------------------------------------------

    def freeze_if_idle(self, after_s: float) -> None:
        """Freeze the environment once its runtime has waited ``after_s`` for the next invocation, as Lambda
        freezes an idle environment (a background thread does not run). Not at once: back-to-back
        invocations then pay no freeze and thaw, and the first milliseconds after a response run, as they
        do on Lambda until the runtime asks for the next invocation."""
        if self.group is None or self.group.frozen:
            return
        with self._mailbox.lock:
            idle = self._mailbox.idle and time.monotonic() - self._mailbox.waiting_since >= after_s
            if idle:
                self.group.freeze()

    def thaw_if_killed(self) -> None:
        """Let a frozen environment that something killed die now (cgroup v1 holds SIGKILL while frozen)."""
        if self.group is not None and self.group.frozen and memory.kill_pending(self.process.pid):
            self.group.thaw()

    def _own_pids(self) -> list[int]:
        return memory.tree(self.process.pid)

    def _read_output(self, process: subprocess.Popen) -> None:
        watch = select.poll()  # not select(): a server with many environments holds descriptors above 1,024
        watch.register(process.stdout.fileno(), select.POLLIN)
        while True:
            if not watch.poll(1000):
                if process.poll() is not None:  # exited, but a descendant holds the pipe
                    break
                continue
            if not self._drain(process):
                break
        self._drain(process)
        code = process.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with self._out_lock:
            process.stdout.close()
        if process.pid in self._superseded:  # replaced by a restart: it settles nothing
            return
        self.exit_code = code
        if self.group is not None:
            if self.group.oom_kills():
                self.over_memory = True  # the kernel ended it at the cgroup's limit
            self.group.remove()
        self._settled.set()
        current = self._current
        if current is not None:
            current.settle("exit")

    def _drain(self, process: subprocess.Popen | None = None, *, eof: bool = True) -> bool:
        """Read what the pipe holds into the log; False at end of file (looked for unless ``eof`` is
        False: the invocation's path leaves that to the reader thread). Safe from any thread."""
        process = process or self.process
        with self._out_lock:
            if process.stdout.closed:
                return False
            fd = process.stdout.fileno()
            pending = array.array("i", [0])
            fcntl.ioctl(fd, termios.FIONREAD, pending, True)
            if not pending[0]:
                if not eof:
                    return True
                if _readable(fd):  # readable with nothing pending: end of file
                    self._flush_partial()
                    return False
                return True
            data = self._partial + os.read(fd, pending[0])
            *lines, self._partial = data.split(b"\n")
            if len(self._partial) > logs.MAX_LINE_BYTES:  # a line without end is never held whole
                cut = len(self._partial) - len(self._partial) % logs.MAX_LINE_BYTES
                lines.append(self._partial[:cut])
                self._partial = self._partial[cut:]
            self._log([text for line in lines for text in logs.events_of(line)])
            return True

    def _flush_partial(self) -> None:
        if self._partial:
            self._log(list(logs.events_of(self._partial)))
            self._partial = b""

    def _log(self, lines: list[str]) -> None:
        if not lines:
            return
        current = self._current  # set from START until the output is drained after the invocation
        if current is not None:
            current.lines.extend(lines)
        elif self._invocations == 0:
            self._init_lines.extend(lines)
        self.stream.write(lines)

    # --- memory ------------------------------------------------------------------------------------

    def sample_memory(self) -> bool:
        """Update the peak from the process tree's RSS; True (and the process killed) above MemorySize."""
        if self.exit_code is not None:
            return False
        self._tree = memory.tree(self.process.pid)
        rss = sum(memory.read_kb(pid, "VmRSS") for pid in self._tree)
        self.peak_kb = max(self.peak_kb, rss)
        enforced = self.group is not None and self.group.layout.memory
        if rss > self.spec.memory_mb * 1024 and not enforced:
            self.over_memory = True
            self._kill_group()
            return True
        return False

    def _max_memory_used_mb(self) -> int:
        if self.over_memory:
            return self.spec.memory_mb  # Lambda reports the limit it hit
        # The tree as the watchdog last walked it (every 25 ms while the environment works): walking it
        # again here cost a dozen system calls on every invocation's path.
        tree = self._tree or memory.tree(self.process.pid)
        self.peak_kb = max(self.peak_kb, sum(memory.read_kb(pid, "VmHWM") for pid in tree))
        return min(self.spec.memory_mb, -(-self.peak_kb // 1024))

    # --- invocation --------------------------------------------------------------------------------

    def run(
        self,
        request_id: str,
        payload: bytes,
        *,
        invoked_arn: str | None = None,
        client_context: str | None = None,
    ) -> Outcome:
        """Run one invocation (waiting for init if needed); writes START, output, END and REPORT.

        An on-demand init that has not finished after 10 s is reported (``INIT_REPORT ... Status:
        timeout``) and run again inside this invocation, under the function timeout; its time is then
        part of Duration and the REPORT has no Init Duration, as AWS documents:
        https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html#runtimes-lifecycle-ib
        """
        spec = self.spec
        first = self._invocations == 0
        self._invocations += 1
        init_ms, carried_ms = None, 0.0
        if self.provisioned:
            self._settled.wait(PROVISIONED_INIT_CAP_S)
        elif not self._settled.wait(INIT_CAP_S):
            timed_out = f"INIT_REPORT Init Duration: {INIT_CAP_S * 1000:.2f} ms\tPhase: init\tStatus: timeout"
            self._init_lines.append(timed_out)
            self.stream.write([timed_out])
            self._restart()
            self._settled.wait(spec.timeout_s)
            if self.init_duration_ms is not None:
                carried_ms = self.init_duration_ms
        elif first:
            init_ms = self.init_duration_ms
        if self.init_duration_ms is None or self.exit_code is not None:
            return self._failed_init(request_id)
        budget_s = spec.timeout_s - carried_ms / 1000
        invocation = Invocation(
            request_id=request_id,
            payload=payload,
            deadline_ms=int((time.time() + budget_s) * 1000),
            invoked_arn=invoked_arn or spec.invoked_arn,
            client_context=client_context,
        )
        start = logs.start_line(request_id, spec.version)
        self.stream.write([start])
        self._current = invocation
        self._mailbox.deliver(invocation)
        finished = invocation.done.wait(max(0.0, budget_s))
        if not finished and invocation.settle("timeout"):
            self.retired = True  # never handed another invocation, even before its exit is seen
            self._kill_group()
        self._drain(eof=False)  # what the handler printed before it answered belongs to this invocation
        self._current = None
        self.last_used = time.monotonic()
        status = error_type = None
        function_error = None
        body = invocation.body
        if invocation.kind == "response":
            duration_ms = (invocation.finished - invocation.started) * 1000
        elif invocation.kind == "error":
            duration_ms = (invocation.finished - invocation.started) * 1000
            function_error = "Unhandled"
        else:
            duration_ms = (invocation.finished - (invocation.started or invocation.finished)) * 1000
            function_error = "Unhandled"
            if invocation.kind == "timeout":
                duration_ms = budget_s * 1000
                status = "timeout"
                message = f"Task timed out after {spec.timeout_s:.2f} seconds"
                stamp = (
                    time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
                    + f".{int(time.time() * 1000) % 1000:03d}Z"
                )
                self._log_invocation(invocation, [f"{stamp} {request_id} {message}"])
                body = error_body("Sandbox.Timedout", f"RequestId: {request_id} Error: {message}")
            else:
                error_type = "Runtime.OutOfMemory" if self.over_memory else "Runtime.ExitError"
                status = "error"
                message = (
                    f"RequestId: {request_id} Error: Runtime exited with error: {exit_reason(self.exit_code)}"
                )
                self._log_invocation(invocation, [message, error_type])
                body = error_body(error_type, message)
        duration_ms += carried_ms
        memory = self._max_memory_used_mb()
        closing = [
            logs.end_line(request_id),
            logs.report_line(
                request_id,
                duration_ms=duration_ms,
                memory_size_mb=spec.memory_mb,
                max_memory_used_mb=memory,
                init_duration_ms=init_ms,
                status=status,
                error_type=error_type,
            ),
        ]
        self.stream.write(closing)
        before = self._init_lines if first else []
        return Outcome(body, function_error, [*before, start, *invocation.lines, *closing])

    def _log_invocation(self, invocation: Invocation, lines: list[str]) -> None:
        invocation.lines.extend(lines)
        self.stream.write(lines)

    def _failed_init(self, request_id: str) -> Outcome:
        """The invocation's answer when init failed, crashed or never finished; the process is ended."""
        self._kill_group()
        self._drain()
        elapsed_ms = (time.perf_counter() - self._spawned) * 1000
        if self.init_error is not None:
            body, error_type = self.init_error
            error_type = error_type or error_type_of(body) or "Runtime.Unknown"
            status = "error"
        elif self.exit_code is not None:
            error_type = "Runtime.OutOfMemory" if self.over_memory else "Runtime.ExitError"
            status = "error"
            body = error_body(
                error_type,
                f"RequestId: {request_id} Error: Runtime exited with error: {exit_reason(self.exit_code)}",
            )
        else:
            error_type, status = None, "timeout"
            message = f"Task timed out after {self.spec.timeout_s:.2f} seconds"
            body = error_body("Sandbox.Timedout", f"RequestId: {request_id} Error: {message}")
        init_report = f"INIT_REPORT Init Duration: {elapsed_ms:.2f} ms\tPhase: init\tStatus: {status}"
        if error_type:
            init_report += f"\tError Type: {error_type}"
        lines = [
            init_report,
            logs.start_line(request_id, self.spec.version),
            logs.end_line(request_id),
            logs.report_line(
                request_id,
                duration_ms=elapsed_ms,
                memory_size_mb=self.spec.memory_mb,
                max_memory_used_mb=self._max_memory_used_mb(),
                status=status,
                error_type=error_type,
            ),
        ]
        self.stream.write(lines)
        return Outcome(body, "Unhandled", [*self._init_lines, *lines])

    # --- ending ------------------------------------------------------------------------------------

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.group is not None:
            self.group.thaw()  # a frozen cgroup v1 task dies only once thawed

    def stop(self) -> None:
        """End the process (and anything it started) and the Runtime API; safe to call twice."""
        self.retired = True
        self._mailbox.release(stop=True)
        self._kill_group()
        self._api.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("environment %s (pid %s) did not end after SIGKILL", self.id, self.process.pid)


def _readable(fd: int) -> bool:
    """Whether reading ``fd`` would not block (data, end of file or an error), asked without waiting."""
    watch = select.poll()
    watch.register(fd, select.POLLIN)
    return bool(watch.poll(0))
