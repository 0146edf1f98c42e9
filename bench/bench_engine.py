"""Measure the local Lambda engine: init overhead, warm round-trip overhead, and a parallel burst.

Run: ``.venv/bin/python bench/bench_engine.py``. Starts its own local AWS (temporary state folder,
free port, at most 4 environments per function), prints three figures, stops the server and cleans up;
then (a) and (b) again with ``LOCALAWS_SANDBOX=off``, so the sandbox's cost is read side by side.
It prints and never asserts; the goals are those of the engine's issue:

(a) a trivial handler's Init Duration next to a bare process doing the same spawn and imports
    (awslambdaric + the handler module), as a ratio (goal <= 1.10);
(b) client round trip minus the REPORT's Duration for warm invocations, p50 and p99 (goal p50 <= 3 ms);
    with its yardstick in the same run: the same boto3 client's round trip to a bare loopback WSGI
    echo served the same way (werkzeug ``make_server``, threaded, the server's request handler class,
    in a process of its own) that answers Invoke with a canned response. The engine's share is
    (b) minus the echo (goal p50 <= 0.5 ms): what the engine adds beyond HTTP, WSGI and boto3, measured
    back to back (blocks of 10 alternating with the echo's) and spaced (alternating one by one after
    1 ms of quiet, so that neither carries the other's after-work on 2 cores).
    Next to it, the CPU time each server process spent per request (user + system, from /proc): on a
    loaded machine latencies swing from run to run, CPU time much less;
(c) 200 invocations by 16 threads over 4 environments: errors (goal 0) and throughput.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

from common import client, free_port, lambda_role, local_aws

from helpers.reports import report_from_log_result
from localaws.server import health

# One id per environment (a process id is not: in the sandbox's pid namespace every handler is the same pid).
HANDLER = "import uuid\n\nENVIRONMENT = uuid.uuid4().hex\n\ndef handler(event, context):\n    return {'env': ENVIRONMENT}\n"
COLD_STARTS = 7
WARM_INVOCATIONS = 300
QUIET_S = 0.001  # before each spaced request of (b) and of its echo
BURST_INVOCATIONS, BURST_THREADS, BURST_ENVIRONMENTS = 200, 16, 4


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _bare_init_ms(task_root: Path) -> float:
    """Spawn the host interpreter and import awslambdaric's bootstrap and the handler, as an environment does."""
    code = (
        "import awslambdaric.bootstrap, awslambdaric.lambda_runtime_client, app, sys; "
        "sys.stdout.write('x'); sys.stdout.flush()"
    )
    start = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, "-c", code], cwd=task_root, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    ) as proc:
        proc.stdout.read(1)
        elapsed = (time.perf_counter() - start) * 1000
        proc.wait()
    return elapsed


def init_overhead(lam, name: str, task_root: Path) -> None:
    inits, bares = [], []
    for i in range(COLD_STARTS):
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"COLD": str(i)}})
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
        response = lam.invoke(FunctionName=name, LogType="Tail", Payload=b"{}")
        inits.append(report_from_log_result(response["LogResult"]).init_duration_ms)
        bares.append(_bare_init_ms(task_root))
    init, bare = statistics.median(inits), statistics.median(bares)
    print(
        f"(a) Init Duration, median of {COLD_STARTS}: {init:.1f} ms; bare spawn + same imports: {bare:.1f} ms; "
        f"ratio {init / bare:.2f} (goal <= 1.10)"
    )


# The echo's answer: what the engine answers a warm trivial invocation with, minus the engine.
_ECHO_LOG = base64.b64encode(
    b"START RequestId: 0 Version: $LATEST\nEND RequestId: 0\nREPORT RequestId: 0\tDuration: 0.00 ms\t"
    b"Billed Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 1 MB\n"
).decode()


def _echo_app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    body = b'{"env": "echo"}'
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("X-Amz-Executed-Version", "$LATEST"),
            ("x-amzn-RequestId", "0"),
            ("X-Amz-Log-Result", _ECHO_LOG),
        ],
    )
    return [body]


def serve_echo(port: int) -> None:
    """The yardstick server: served as ``localaws.server.serve`` serves the app, nothing behind it."""
    from werkzeug.serving import make_server

    from localaws import server

    httpd = make_server(
        server.HOST, port, _echo_app, threaded=True, request_handler=server._request_handler()
    )
    print("ready", flush=True)
    httpd.serve_forever()


def _cpu_s(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), in seconds; 0.0 where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _round_trip(lam, name: str, *, minus_duration: bool) -> float:
    start = time.perf_counter()
    response = lam.invoke(FunctionName=name, LogType="Tail", Payload=b"{}")
    response["Payload"].read()
    elapsed = (time.perf_counter() - start) * 1000
    return elapsed - (report_from_log_result(response["LogResult"]).duration_ms if minus_duration else 0.0)


def _measure(engine_client, echo_client, name: str, *, block: int, quiet_s: float) -> tuple[list, list]:
    """Round trips of the engine (minus Duration) and of the echo, alternating in blocks of ``block``
    requests so that both see the same machine load, each request after ``quiet_s`` of quiet."""
    overheads: list[float] = []
    echoes: list[float] = []
    while len(overheads) < WARM_INVOCATIONS:
        for values, lam, minus_duration in ((overheads, engine_client, True), (echoes, echo_client, False)):
            for _ in range(block):
                if quiet_s:
                    time.sleep(quiet_s)
                values.append(_round_trip(lam, name, minus_duration=minus_duration))
    return overheads, echoes


def warm_overhead_and_yardstick(url: str, name: str) -> None:
    """(b) and its echo, measured twice:

    - back to back, as a client loop invokes, in blocks of 10 alternating with the echo's (in rounds
      of 50, a load that came and went in one round moved the engine's share by 0.3 ms);
    - spaced: alternating request by request, each after ``QUIET_S`` of quiet. After answering, the
      runtime asks for its next invocation; on 2 cores that work competes with whatever request comes
      next, and on Lambda the environment has a CPU of its own. Spaced, each request starts on a quiet
      machine, and the share is what the engine itself adds to a request's path.
    """
    port = free_port()
    echo = subprocess.Popen(
        [sys.executable, __file__, "--echo-server", str(port)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert echo.stdout.readline().strip() == "ready"
        engine_client, echo_client = client(url), client(f"http://127.0.0.1:{port}")
        engine_pid = health(url)["pid"]
        _round_trip(engine_client, name, minus_duration=True)  # warm both clients and servers
        _round_trip(echo_client, name, minus_duration=False)
        cpu_before = {"engine": _cpu_s(engine_pid), "echo": _cpu_s(echo.pid)}
        overheads, echoes = _measure(engine_client, echo_client, name, block=10, quiet_s=0.0)
        cpu = {
            "engine": _cpu_s(engine_pid) - cpu_before["engine"],
            "echo": _cpu_s(echo.pid) - cpu_before["echo"],
        }
        spaced, spaced_echoes = _measure(engine_client, echo_client, name, block=1, quiet_s=QUIET_S)
    finally:
        echo.terminate()
        echo.wait(10)
    b50, b99 = _percentile(overheads, 0.5), _percentile(overheads, 0.99)
    e50, e99 = _percentile(echoes, 0.5), _percentile(echoes, 0.99)
    print(
        f"(b) warm round trip minus Duration, {len(overheads)} back to back: p50 {b50:.2f} ms, "
        f"p99 {b99:.2f} ms (goal p50 <= 3 ms)"
    )
    print(
        f"    yardstick: the same client's round trip to a bare WSGI echo: p50 {e50:.2f} ms, p99 {e99:.2f} ms"
    )
    s50, se50 = _percentile(spaced, 0.5), _percentile(spaced_echoes, 0.5)
    paired = statistics.median(o - e for o, e in zip(spaced, spaced_echoes, strict=True))
    print(
        f"    engine share = (b) - echo (goal <= 0.5 ms p50): back to back {b50 - e50:.2f} ms; spaced "
        f"{s50 - se50:.2f} ms ({s50:.2f} - {se50:.2f}; median of the paired differences {paired:.2f} ms)"
    )
    print(
        f"    server CPU per request, back to back: engine {cpu['engine'] / len(overheads) * 1e6:.0f} us, "
        f"echo {cpu['echo'] / len(echoes) * 1e6:.0f} us (load average {os.getloadavg()[0]:.2f})"
    )


def burst(url: str, name: str) -> None:
    errors: list[str] = []
    environments: set[str] = set()
    remaining = [BURST_INVOCATIONS]
    lock = threading.Lock()

    def worker() -> None:
        lam = client(url)
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            try:
                response = lam.invoke(FunctionName=name, Payload=b"{}")
                body = json.loads(response["Payload"].read())
                if response.get("FunctionError"):
                    errors.append(str(body))
                else:
                    with lock:
                        environments.add(body["env"])
            except Exception as exc:  # noqa: BLE001 - a benchmark counts errors, it does not stop on them
                errors.append(repr(exc))

    threads = [threading.Thread(target=worker) for _ in range(BURST_THREADS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    print(
        f"(c) {BURST_INVOCATIONS} invocations by {BURST_THREADS} threads: {len(errors)} errors (goal 0), "
        f"{BURST_INVOCATIONS / elapsed:.0f} invocations/s, {len(environments)} environments (at most {BURST_ENVIRONMENTS})"
    )
    for error in errors[:3]:
        print("    error:", error[:200])


def run(sandbox: str, *, with_burst: bool) -> None:
    """The figures against a server of its own, started with ``LOCALAWS_SANDBOX=<sandbox>``."""
    os.environ["LOCALAWS_SANDBOX"] = sandbox  # the server inherits it
    with local_aws("bench-engine") as (url, state_dir):
        print(f"-- LOCALAWS_SANDBOX={sandbox}: {health(url)['lambda_sandbox']['summary']}")
        role = lambda_role(url)
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("app.py", HANDLER)
        lam = client(url)
        config = lam.create_function(
            FunctionName="bench-trivial",
            Runtime="python3.12",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": archive.getvalue()},
            # One vCPU's worth in the sandbox (Lambda's CPU follows memory): the bare spawn it is compared
            # with runs unthrottled, and so does this single-threaded init at 1769 MB.
            MemorySize=1769,
        )
        lam.get_waiter("function_active_v2").wait(FunctionName="bench-trivial", WaiterConfig={"Delay": 0.1})
        task_root = state_dir / "lambda" / "code" / base64.b64decode(config["CodeSha256"]).hex()
        lam.invoke(FunctionName="bench-trivial", Payload=b"{}")  # extracts the code, warms the page cache
        init_overhead(lam, "bench-trivial", task_root)
        warm_overhead_and_yardstick(url, "bench-trivial")
        if with_burst:
            burst(url, "bench-trivial")


def main() -> None:
    os.environ["LOCALAWS_LAMBDA_MAX_ENVIRONMENTS"] = str(BURST_ENVIRONMENTS)  # the server inherits it
    run("auto", with_burst=True)
    run("off", with_burst=False)  # the same figures without the sandbox, for its cost


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--echo-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        serve_echo(args.echo_server)
    else:
        main()
