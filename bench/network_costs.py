"""Measure what a network namespace per environment costs (issue 19): at a cold start, and per request.

Run as root (or where unprivileged user namespaces are allowed):
``PYTHONPATH=$PWD .venv/bin/python bench/network_costs.py``. Prints medians and p90s, never asserts
(not a ``bench_*.py``, so ``make bench`` does not run it). Rounds interleave the variants, so a loaded
machine weighs on all of them alike.

(a) Cold start, the Python path (``preexec_fn``, as SageMaker's containers and a server without a C
    compiler start): spawn to exit of ``/bin/true`` with an empty ``preexec_fn`` against one that enters
    the namespace the environment's plan asks for (loopback up, ``default dev lo``, two local prefixes,
    the Runtime API and 15 AWS listeners created inside and handed over), and the time ``enter`` itself
    takes inside the child.
(b) Per request, an AWS call: one HTTP request on a new connection (werkzeug closes after each response)
    to a WSGI app served by werkzeug's own threaded server, from a client on this machine's loopback,
    against the same request from a client inside a namespace through the plane (its selector, the
    handoff to the same request handler class, the guard's scope check).
(c) Per request, an internet host: keep-alive round trips through the plane's relay against the same
    round trips straight to the host's server.
"""

from __future__ import annotations

import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from localaws.network import addresses, guard, internet, netns, reachability, status  # noqa: E402
from localaws.network.placement import Placement  # noqa: E402
from localaws.network.plane import NetworkPlane  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "40"))
REQUESTS = int(os.environ.get("REQUESTS", "300"))
PLAN = addresses.plan()
OPEN = reachability.evaluate(Placement("123456789012", "us-east-1"), PLAN)


def _stats(values: list[float]) -> str:
    values = sorted(values)
    return f"p50 {statistics.median(values):8.3f}  p90 {values[int(len(values) * 0.9)]:8.3f}"


def _entering(enter, fd: int, writer: int):
    """A ``preexec_fn`` that enters the namespace and reports how long that took, through ``writer``."""

    def preexec() -> None:
        started = time.perf_counter()
        enter(fd)
        os.write(writer, struct.pack("d", time.perf_counter() - started))

    return preexec


def _nothing() -> None:
    """A ``preexec_fn`` that does nothing: the same fork path as the namespace's, without it."""


def cold_start() -> None:
    enter = netns.prepare(PLAN)
    timings: dict[str, list[float]] = {"no namespace (preexec_fn: nothing)": [], "namespace per the plan": []}
    inside: list[float] = []
    for _ in range(ROUNDS):
        for name, values in timings.items():
            with_namespace = name.startswith("namespace")
            server_end, child_end = netns.handover()
            reader, writer = os.pipe()
            fd = child_end.fileno()
            preexec = _entering(enter, fd, writer) if with_namespace else _nothing
            started = time.perf_counter()
            process = subprocess.Popen(["/bin/true"], preexec_fn=preexec, pass_fds=(fd,))
            child_end.close()
            if with_namespace:
                for sock in netns.receive(server_end, PLAN).values():
                    sock.close()
                inside.append(struct.unpack("d", os.read(reader, 8))[0] * 1000)
            process.wait()
            values.append((time.perf_counter() - started) * 1000)
            server_end.close()
            os.close(reader)
            os.close(writer)
    print(f"(a) cold start, Python path, {ROUNDS} rounds, ms (spawn to exit of /bin/true)")
    for name, values in timings.items():
        print(f"    {name:40s} {_stats(values)}")
    base, netted = (statistics.median(v) for v in timings.values())
    print(
        f"    added per cold start (p50): {netted - base:.3f} ms; enter() inside the child: {_stats(inside)}"
    )


CLIENT = r"""
import http.client, json, socket, sys, time
host, port, n, keep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "keep"
times = []
conn = http.client.HTTPConnection(host, port, timeout=30) if keep else None
for _ in range(n):
    started = time.perf_counter()
    c = conn or http.client.HTTPConnection(host, port, timeout=30)
    c.request("GET", "/", headers={"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"})
    c.getresponse().read()
    if not keep:
        c.close()
    times.append((time.perf_counter() - started) * 1e6)
times.sort()
print(json.dumps({"p50": times[len(times) // 2], "p90": times[int(len(times) * 0.9)]}))
"""


def _echo(environ, start_response):
    start_response("200 OK", [("Content-Length", "2"), ("Content-Type", "text/plain")])
    return [b"ok"]


class _Keep(threading.Thread):
    """A keep-alive HTTP answerer on a loopback port (the internet host)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]

    def run(self):
        while True:
            conn, _ = self.listener.accept()
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    @staticmethod
    def serve(conn):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = conn.makefile("rb")
        while True:
            while (line := reader.readline()) not in (b"\r\n", b""):
                pass
            if not line:
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def _run(command_args: list[str], inside: bool, plan, plane, name: str) -> dict:
    import json

    command = [sys.executable, "-c", CLIENT, *command_args]
    if not inside:
        return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    process, listeners = netns.start(command, plan, stdout=subprocess.PIPE, text=True)
    listeners.pop(addresses.RUNTIME, None)
    plane.attach(name, plan, listeners, reachability.evaluate(Placement("123456789012", "us-east-1"), plan))
    out, _ = process.communicate(timeout=600)
    plane.detach(name)
    return json.loads(out)


def per_request() -> None:
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):  # the server's handler logs only errors, too
        def log_request(self, *args) -> None:
            pass

    httpd = make_server(
        "127.0.0.1", 0, guard.guard(_echo, lambda e: OPEN), threaded=True, request_handler=Quiet
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    plane = NetworkPlane(guard.connection_server(httpd, Quiet))
    web = _Keep()
    web.start()
    hosts = internet.parse(f"images.example=127.0.0.1:{web.port}")
    plan = addresses.plan(hosts)
    port = httpd.server_address[1]
    results: dict[str, list] = {
        k: [] for k in ("aws direct", "aws via plane", "internet direct", "internet via relay")
    }
    for i in range(max(3, ROUNDS // 8)):
        results["aws direct"].append(
            _run(["127.0.0.1", str(port), str(REQUESTS), "new"], False, plan, plane, "")
        )
        results["aws via plane"].append(
            _run(["198.18.0.10", "80", str(REQUESTS), "new"], True, plan, plane, f"a{i}")
        )
        results["internet direct"].append(
            _run(["127.0.0.1", str(web.port), str(REQUESTS), "keep"], False, plan, plane, "")
        )
        address = hosts[0].address
        results["internet via relay"].append(
            _run([address, "80", str(REQUESTS), "keep"], True, plan, plane, f"i{i}")
        )
    print(
        f"(b, c) per request, {REQUESTS} requests x {len(results['aws direct'])} rounds, µs (median of the rounds)"
    )
    for name, runs in results.items():
        p50 = statistics.median(r["p50"] for r in runs)
        p90 = statistics.median(r["p90"] for r in runs)
        print(f"    {name:22s} p50 {p50:8.1f}  p90 {p90:8.1f}")
    for a, b in (("aws direct", "aws via plane"), ("internet direct", "internet via relay")):
        added = statistics.median(r["p50"] for r in results[b]) - statistics.median(
            r["p50"] for r in results[a]
        )
        print(f"    {b} adds {added:+.1f} µs per request (p50)")
    plane.close()
    httpd.shutdown()


if __name__ == "__main__":
    reason = status.probe()
    if reason:
        raise SystemExit(f"no network namespaces here: {reason}")
    print(f"uid {os.geteuid()}, load average {os.getloadavg()[0]:.1f}")
    cold_start()
    per_request()
