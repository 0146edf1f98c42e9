"""Measure the local Lambda engine: init overhead, warm round-trip overhead, and a parallel burst.

Run: ``.venv/bin/python bench/bench_engine.py``. Starts its own local AWS (temporary state folder,
free port, at most 4 environments per function), prints three figures, stops the server and cleans up.
It prints and never asserts; the goals are those of the engine's issue:

(a) a trivial handler's Init Duration next to a bare process doing the same spawn and imports
    (awslambdaric + the handler module), as a ratio (goal <= 1.10);
(b) client round trip minus the REPORT's Duration for warm invocations, p50 and p99 (goal p50 <= 3 ms);
(c) 200 invocations by 16 threads over 4 environments: errors (goal 0) and throughput.
"""

from __future__ import annotations

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

from common import client, lambda_role, local_aws

from helpers.reports import report_from_log_result

HANDLER = "import os\n\ndef handler(event, context):\n    return {'pid': os.getpid()}\n"
COLD_STARTS = 7
WARM_INVOCATIONS = 300
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
        response = lam.invoke(FunctionName=name, LogType="Tail", Payload=b"{}")
        inits.append(report_from_log_result(response["LogResult"]).init_duration_ms)
        bares.append(_bare_init_ms(task_root))
    init, bare = statistics.median(inits), statistics.median(bares)
    print(
        f"(a) Init Duration, median of {COLD_STARTS}: {init:.1f} ms; bare spawn + same imports: {bare:.1f} ms; "
        f"ratio {init / bare:.2f} (goal <= 1.10)"
    )


def warm_overhead(lam, name: str) -> None:
    lam.invoke(FunctionName=name, Payload=b"{}")
    overheads = []
    for _ in range(WARM_INVOCATIONS):
        start = time.perf_counter()
        response = lam.invoke(FunctionName=name, LogType="Tail", Payload=b"{}")
        response["Payload"].read()
        elapsed = (time.perf_counter() - start) * 1000
        overheads.append(elapsed - report_from_log_result(response["LogResult"]).duration_ms)
    print(
        f"(b) warm round trip minus Duration over {WARM_INVOCATIONS}: p50 {_percentile(overheads, 0.5):.2f} ms, "
        f"p99 {_percentile(overheads, 0.99):.2f} ms (goal p50 <= 3 ms)"
    )


def burst(url: str, name: str) -> None:
    errors: list[str] = []
    pids: set[int] = set()
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
                        pids.add(body["pid"])
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
        f"{BURST_INVOCATIONS / elapsed:.0f} invocations/s, {len(pids)} environments (at most {BURST_ENVIRONMENTS})"
    )
    for error in errors[:3]:
        print("    error:", error[:200])


def main() -> None:
    os.environ["LOCALAWS_LAMBDA_MAX_ENVIRONMENTS"] = str(BURST_ENVIRONMENTS)  # the server inherits it
    with local_aws("bench-engine") as (url, state_dir):
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
        )
        task_root = state_dir / "lambda" / "code" / base64.b64decode(config["CodeSha256"]).hex()
        lam.invoke(FunctionName="bench-trivial", Payload=b"{}")  # extracts the code, warms the page cache
        init_overhead(lam, "bench-trivial", task_root)
        warm_overhead(lam, "bench-trivial")
        burst(url, "bench-trivial")


if __name__ == "__main__":
    main()
