"""Start, find, health-check and stop the embedded local AWS server.

One detached server process is shared by every notebook kernel. It writes ``server.json`` (pid, port,
URL) into the state folder; a second start reuses a healthy server, a stale file is cleaned up, and a
port held by another program gives a one-sentence error with the fix. A server that stopped or
crashed can be started again at once on the same port (the port check binds with SO_REUSEADDR, as
the server does, so TIME_WAIT sockets of the previous one do not count).

moto keeps everything in memory, so a new server starts with no file system at all: the EFS folders
``<state>/efs/fs-<id>`` a previous server left behind belong to nothing and are removed at start
(only folders of that layout; anything else in ``efs/`` is left alone, and links are never followed).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
SERVICE_NAME = "workshop-local-aws"
HEALTH_PATH = "/_workshop/health"
START_TIMEOUT_S = 60.0
PORT_RELEASE_S = 3.0  # how long a start waits for a port that nothing of ours answers on
_FILE_SYSTEM_FOLDER = re.compile(r"^fs-[0-9a-f]{8,40}$")  # moto's (and EFS's) file system ids


class LocalServerError(RuntimeError):
    """The local server could not be started or reached; the message says what to do."""


def _state_file(state_dir: Path) -> Path:
    return Path(state_dir) / "server.json"


def log_file(state_dir: Path) -> Path:
    return Path(state_dir) / "server.log"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` is alive (a zombie whose threads are all gone is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (ours, not yet reaped) counts as dead, once its other threads are gone too: a
    # killed multi-threaded server's main thread turns zombie before the threads that still hold its
    # sockets (the listening one included) have exited.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return len(os.listdir(f"/proc/{pid}/task")) > 1
    return True


def health(url: str, timeout: float = 2.0) -> dict | None:
    """The server's health document, or None if nothing of ours answers at ``url``."""
    try:
        with urllib.request.urlopen(url + HEALTH_PATH, timeout=timeout) as resp:
            doc = json.loads(resp.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return doc if isinstance(doc, dict) and doc.get("service") == SERVICE_NAME else None


def status(state_dir: Path) -> dict | None:
    """``{"pid", "port", "url", ...}`` of a healthy server for this state folder, else None.

    A state file whose process is gone, or whose port answers with someone else, is removed.
    """
    path = _state_file(state_dir)
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    doc = health(info.get("url", ""), timeout=5.0) if pid_alive(int(info.get("pid", 0))) else None
    if (
        doc
        and doc.get("pid") == info.get("pid")
        and Path(doc.get("state_dir", "")) == Path(state_dir).resolve()
    ):
        return info
    if not pid_alive(int(info.get("pid", 0))):
        log.info("removing stale %s (pid %s is gone)", path, info.get("pid"))
        path.unlink(missing_ok=True)
    return None


def _port_free(port: int) -> bool:
    """Whether the server could bind ``port``: with SO_REUSEADDR, as werkzeug binds, so a TIME_WAIT
    socket left by a server that just stopped does not count as in use."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def _lock(state_dir: Path):
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(state_dir) / "server.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_running(state_dir: Path, port: int, *, port_setting: str = "LOCALAWS_PORT") -> str:
    """Return the URL of this state folder's server, starting a detached one if none is healthy.

    ``port_setting`` names the variable a caller sets to pick another port (said in the busy-port error).
    """
    state_dir = Path(state_dir).resolve()
    info = status(state_dir)
    if info:
        return info["url"]
    with _lock(state_dir):
        info = status(state_dir)
        if info:
            return info["url"]
        return _start(state_dir, port, port_setting)


def _start(state_dir: Path, port: int, port_setting: str) -> str:
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + PORT_RELEASE_S
    while not _port_free(port) and health(url) is None and time.monotonic() < deadline:
        time.sleep(0.05)  # a server that was just killed may hold it a moment longer
    if not _port_free(port):
        other = health(url)
        whose = (
            f"another workshop server (state folder {other.get('state_dir')})" if other else "another program"
        )
        raise LocalServerError(
            f"Port {port} on {HOST} is in use by {whose}: stop it, or pick a free port with "
            f"export {port_setting}={port + 1}."
        )
    logpath = log_file(state_dir)
    cmd = [sys.executable, "-m", "localaws", "serve", "--port", str(port), "--state-dir", str(state_dir)]
    log.info("starting the local AWS server on %s (log: %s)", url, logpath)
    with open(logpath, "ab") as out:
        # Own session and no inherited stdout/stderr: whatever reads our output (a notebook kernel,
        # nbval, CI) must not wait on the detached server.
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=str(state_dir),
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalServerError(
                f"The local AWS server exited at start (code {proc.returncode}); see {logpath}:\n"
                + _tail(logpath)
            )
        info = status(state_dir)
        if info:
            return info["url"]
        time.sleep(0.1)
    proc.kill()
    raise LocalServerError(
        f"The local AWS server did not answer within {START_TIMEOUT_S:.0f} s; see {logpath}."
    )


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop(state_dir: Path, timeout: float = 20.0) -> bool:
    """Stop this state folder's server and every process it started. True if one was running."""
    path = _state_file(state_dir)
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    pid = int(info.get("pid", 0))
    running = pid > 0 and pid_alive(pid)
    if running:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            log.warning("server pid %s ignored SIGTERM; killing its process group", pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return running


def _request_handler():
    """moto's request handler (it keeps S3 metadata headers with underscores), logging only server
    errors: a benchmark makes thousands of requests, and a line for each costs time on the hot path."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class RequestHandler(MotoRequestHandler):
        def log_request(self, code="-", size="-") -> None:
            if str(getattr(code, "value", code)).startswith("5"):
                super().log_request(code, size)

    return RequestHandler


def remove_orphaned_efs(state_dir: Path) -> list[str]:
    """Remove ``<state>/efs/fs-*`` folders of a previous server life; return their names."""
    root = Path(state_dir) / "efs"
    removed = []
    if not root.is_dir() or root.is_symlink():
        return removed
    for entry in sorted(root.iterdir()):
        if not _FILE_SYSTEM_FOLDER.match(entry.name):
            continue
        if entry.is_symlink():
            entry.unlink()  # the link only, never what it points to
        elif entry.is_dir():
            shutil.rmtree(entry)  # rmtree does not follow links inside the tree
        else:
            continue
        removed.append(entry.name)
    if removed:
        log.info("removed EFS folders of a previous server: %s", ", ".join(removed))
    return removed


def serve(port: int, state_dir: Path) -> None:
    """Run the server in the foreground until SIGTERM/SIGINT (what the detached process runs)."""
    from werkzeug.serving import make_server

    from localaws.app import create_app

    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    remove_orphaned_efs(state_dir)  # no file system exists yet in this server's moto
    url = f"http://{HOST}:{port}"
    app = create_app(state_dir, url)
    try:
        httpd = make_server(HOST, port, app, threaded=True, request_handler=_request_handler())
    except OSError as exc:
        raise LocalServerError(f"Cannot listen on {url}: {exc}. Pick a free port.") from exc

    def _terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    info = {"pid": os.getpid(), "port": port, "url": url, "started": time.time(), "state_dir": str(state_dir)}
    _state_file(state_dir).write_text(json.dumps(info))
    print(f"local AWS listening on {url} (pid {os.getpid()})", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        app.shutdown()
        httpd.server_close()
        with contextlib.suppress(OSError, ValueError):
            if json.loads(_state_file(state_dir).read_text()).get("pid") == os.getpid():
                _state_file(state_dir).unlink()
        print("local AWS stopped", flush=True)
