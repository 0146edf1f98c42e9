"""Helpers shared by the sandbox tests (root and unprivileged servers): the AWS CLI, and handlers that
report what they see from inside an execution environment."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.local.test_lambda_engine import create_function, efs_access_point, unique

REPO = Path(__file__).resolve().parents[1]
AWS = Path(sys.executable).with_name("aws")


def cli_invoke(
    local_aws, name: str, event: dict | None = None, tmp_path: Path | None = None
) -> tuple[dict, object]:
    """``aws lambda invoke`` with a log tail: (the CLI's JSON answer, the decoded payload)."""
    out = (tmp_path or Path("/tmp")) / f"{unique('out')}.json"
    done = subprocess.run(
        [
            str(AWS), "lambda", "invoke", "--endpoint-url", local_aws.url, "--region", local_aws.region,
            "--function-name", name,
            "--payload", json.dumps(event or {}), "--log-type", "Tail", str(out),
        ],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = json.loads(out.read_text() or "null")
    out.unlink()
    return json.loads(done.stdout), payload


def log_tail(answer: dict) -> str:
    return base64.b64decode(answer["LogResult"]).decode()


def efs_function(local_aws, code: str, **kwargs) -> tuple[str, Path]:
    """A function mounting a new access point (PosixUser 1000, as the workshop's) at /mnt/ml."""
    configs, folder = efs_access_point(local_aws, "/lambda")
    return create_function(local_aws, code, FileSystemConfigs=configs, **kwargs), folder


def check_tmp_is_private_and_capped(handle, tmp_path) -> None:
    """/tmp is empty at each cold start, kept while warm, and full at EphemeralStorage (600 MB)."""
    lam = handle.client("lambda")
    name = create_function(handle, TMP, MemorySize=1024, EphemeralStorage={"Size": 600})
    assert cli_invoke(handle, name, tmp_path=tmp_path)[1]["before"] == []
    assert cli_invoke(handle, name, tmp_path=tmp_path)[1]["before"] == ["marker"]  # warm: same /tmp
    lam.update_function_configuration(FunctionName=name, Description="force a cold start")
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    full = cli_invoke(handle, name, {"fill_mb": 700}, tmp_path)[1]
    assert full["before"] == []
    assert full["filled"] == "No space left on device"
    assert 550 <= full["size_mb"] <= 600


WHOAMI = """
import os, sys

def handler(event, context):
    visible = {path: os.path.exists(path) for path in event.get("paths", [])}
    try:
        open("/var/task/new.txt", "w")
        task_write = "written"
    except OSError as exc:
        task_write = exc.strerror
    return {
        "uid": os.getuid(), "gid": os.getgid(), "cwd": os.getcwd(), "visible": visible,
        "task_write": task_write, "sys_path": sys.path, "env": sorted(os.environ),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "runtime_api": os.environ["AWS_LAMBDA_RUNTIME_API"],
        "capabilities": int(open("/proc/self/status").read().split("CapEff:")[1].split()[0], 16),
    }
"""


TMP = """
import os

def handler(event, context):
    before = sorted(os.listdir("/tmp"))
    if event.get("fill_mb"):
        try:
            with open("/tmp/big", "wb") as fh:
                for _ in range(event["fill_mb"]):
                    fh.write(b"x" * 1024 * 1024)
            return {"before": before, "filled": "yes"}
        except OSError as exc:
            return {"before": before, "filled": exc.strerror, "size_mb": os.path.getsize("/tmp/big") // 2**20}
    open("/tmp/marker", "w").write(context.aws_request_id)
    return {"before": before}
"""


THIEF = """
import http.client, json, os

def handler(event, context):
    host, port = event["runtime_api"].split(":")
    results = {}
    for method, path in (("GET", "/2018-06-01/runtime/invocation/next"),
                         ("POST", "/2018-06-01/runtime/invocation/some-id/response")):
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=3)
            conn.request(method, path, body=b"{}" if method == "POST" else None)
            results[method] = conn.getresponse().status
        except (OSError, http.client.HTTPException) as exc:
            results[method] = type(exc).__name__
    return results
"""


ESCAPE = """
import ctypes, os

def single_threaded_unshare(flags):  # in a forked child: the runtime may have threads (EINVAL)
    pid = os.fork()
    if pid == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        os._exit(0 if libc.unshare(flags) == 0 else ctypes.get_errno())
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return "allowed" if code == 0 else os.strerror(code)

def handler(event, context):
    results = {name: single_threaded_unshare(flags) for name, flags in (("user", 0x10000000), ("mount", 0x20000))}
    try:
        os.chroot("/")
        results["chroot"] = "allowed"
    except OSError as exc:
        results["chroot"] = exc.strerror
    return results
"""
