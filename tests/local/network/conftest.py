"""Real network namespaces: skipped, with the reason, where this machine cannot create them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from localaws.network import status


@pytest.fixture(scope="session")
def namespaces() -> None:
    reason = status.probe()
    if reason is not None:
        pytest.skip(f"network namespaces are unavailable here: {reason}")


def run_probes(process: subprocess.Popen, timeout: float = 120) -> list[dict]:
    """The JSON lines a probe script printed (one per probe), once it has ended."""
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


PROBE = r"""
import json, socket, sys, time

def report(**kw):
    print(json.dumps(kw), flush=True)

def connect(host, port, timeout):
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        return "connected"
    except OSError as exc:
        return type(exc).__name__ + (f" errno {exc.errno}" if exc.errno else "")
    finally:
        s.close()
"""


def python(script: str) -> list[str]:
    return [sys.executable, "-c", PROBE + script]
