"""Measure what IAM enforcement adds to a small Lambda Invoke: verify the signature, route, decide.

Run: ``.venv/bin/python bench/bench_iam.py``. It prints and never asserts; the goal is issue 18's: the
gate moves ``make bench``'s figure (b) by less than 0.2 ms per invoke. Until the gate is hooked into the
server (phase B), (b) cannot show it, so this script measures the gate itself, two ways:

(1) in process, CPU time (``thread_time``) of ``Authorizer.check`` on Invoke requests signed by botocore
    exactly as boto3 signs them (a 40-byte payload, boto3's header set), for the root user (signature,
    routing, the function's resource policy) and for an IAM user holding ``policies/learner-policy.json``
    (plus the user's policies read from moto and evaluated), with its parts timed separately: SigV4
    verification (parse, key look-up, body read and hash, canonical request, HMAC), routing to an
    action and resource, and the decision;
(2) over HTTP, the client round trip of boto3 Invokes to a loopback WSGI echo served the same way as
    the server (werkzeug ``make_server``, threaded, moto's request handler, in a process of its own),
    with and without the gate in front of it, alternating blocks of 20: p50 and p99 of each, their
    difference, and each server's CPU per request. On a loaded machine latencies swing; CPU time less.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from common import free_port

ACCOUNT = "123456789012"
PAYLOAD = b'{"image": "x", "warm": true, "n": 12345}'
FUNCTION = "lambda-efs-infer"
LEARNER = (Path(__file__).resolve().parents[1] / "policies" / "learner-policy.json").read_text()
ECHO = b'{"env": "echo"}'
USER_AGENT = "Boto3/1.44.5 md/Botocore#1.44.5 ua/2.1 os/linux#6.1 md/arch#x86_64 lang/python#3.11.7 cfg/retry-mode#legacy"


def invoke_environ(key: str, secret: str) -> dict:
    """The WSGI environ of a boto3 Invoke of FUNCTION:provisioned, signed now."""
    path = f"/2015-03-31/functions/{FUNCTION}/invocations"
    headers = {
        "X-Amz-Invocation-Type": "RequestResponse",
        "User-Agent": USER_AGENT,
        "Content-Length": str(len(PAYLOAD)),
    }
    request = AWSRequest(
        "POST", f"http://127.0.0.1:4566{path}?Qualifier=provisioned", data=PAYLOAD, headers=headers
    )
    SigV4Auth(Credentials(key, secret), "lambda", "us-east-1").add_auth(request)
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": f"{path}?Qualifier=provisioned",
        "PATH_INFO": path,
        "QUERY_STRING": "Qualifier=provisioned",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:4566",
        "wsgi.input": io.BytesIO(PAYLOAD),
    }
    for name, value in request.headers.items():
        wire = name.upper().replace("-", "_")
        environ[wire if wire in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + wire] = value
    return environ


def _median_us(samples: list[float]) -> str:
    ordered = sorted(samples)
    return f"p50 {statistics.median(ordered):6.1f} us, p99 {ordered[int(len(ordered) * 0.99)]:6.1f} us"


def in_process(rounds: int = 3000) -> None:
    from moto import mock_aws

    from localaws.iam import Authorizer, sigv4
    from localaws.iam.actions import checks
    from localaws.iam.operations import route

    with mock_aws():
        iam = boto3.client(
            "iam", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        iam.create_user(UserName="learner")
        iam.put_user_policy(UserName="learner", PolicyName="learner", PolicyDocument=LEARNER)
        key = iam.create_access_key(UserName="learner")["AccessKey"]
        authorizer = Authorizer(enabled=True)
        for label, (access, secret) in (
            ("root", ("testing", "testing")),
            ("learner user", (key["AccessKeyId"], key["SecretAccessKey"])),
        ):
            environs = [invoke_environ(access, secret) for _ in range(rounds + 200)]
            for environ in environs[:200]:  # warm the caches (models, compiled policies, signing key)
                authorizer.check(environ)
            whole, verify, routing = [], [], []
            for environ in environs[200:]:
                copy = {**environ, "wsgi.input": io.BytesIO(PAYLOAD)}
                start = time.thread_time()
                outcome = authorizer.check(environ)
                whole.append((time.thread_time() - start) * 1e6)
                start = time.thread_time()
                signed = sigv4.parse(copy)
                caller = authorizer.credentials.lookup(signed.access_key, signed.security_token)
                data = authorizer._verify(copy, signed, caller)
                verify.append((time.thread_time() - start) * 1e6)
                start = time.thread_time()
                checks(route(copy, "lambda", data), "us-east-1", ACCOUNT, authorizer.store.role_arn)
                routing.append((time.thread_time() - start) * 1e6)
            decided = type(outcome).__name__
            print(f"(1) {label:13s} check(): {_median_us(whole)} CPU  -> {decided}")
            print(
                f"    {'':13s} of which verify {_median_us(verify)}, route {_median_us(routing)}; the rest is the decision"
            )


# ---- (2) over HTTP -----------------------------------------------------------------------------------


def _echo(environ, start_response):
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(ECHO))),
            ("X-Amz-Executed-Version", "1"),
        ],
    )
    return [ECHO]


def serve(bare_port: int, gated_port: int) -> None:
    """Serve the echo bare on one port and behind the gate on the other, until stdin closes."""
    import logging

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    from localaws.iam import Authorizer, middleware

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    gated = middleware(_echo, Authorizer(enabled=True))
    for port, app in ((bare_port, _echo), (gated_port, gated)):
        server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def over_http(blocks: int = 40, block: int = 20) -> None:
    bare_port, gated_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(bare_port), str(gated_port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        clients = [
            boto3.client(
                "lambda",
                endpoint_url=f"http://127.0.0.1:{port}",
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(retries={"max_attempts": 1}),
            )
            for port in (bare_port, gated_port)
        ]
        times: dict[int, list[float]] = {0: [], 1: []}
        for c in clients:
            for _ in range(block):
                c.invoke(FunctionName=FUNCTION, Qualifier="provisioned", Payload=PAYLOAD)
        for _ in range(blocks):
            for i, c in enumerate(clients):
                for _ in range(block):
                    start = time.perf_counter()
                    c.invoke(FunctionName=FUNCTION, Qualifier="provisioned", Payload=PAYLOAD)
                    times[i].append((time.perf_counter() - start) * 1e3)
        for i, label in ((0, "echo"), (1, "echo behind the gate")):
            ordered = sorted(times[i])
            print(
                f"(2) {label:21s} round trip p50 {statistics.median(ordered):.3f} ms, p99 {ordered[int(len(ordered) * 0.99)]:.3f} ms, n={len(ordered)}"
            )
        print(
            f"    the gate adds p50 {statistics.median(times[1]) - statistics.median(times[0]):+.3f} ms (goal < 0.2 ms); load average {os.getloadavg()[0]:.2f}"
        )
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    in_process()
    over_http()


if __name__ == "__main__":
    main()
