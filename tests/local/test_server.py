"""The local server's process management: reuse, stale pid files, busy ports, the CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from localaws import server
from tests.conftest import free_port


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "helpers.local", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, **(env or {})},
    )


def test_a_second_start_reuses_the_running_server(own_local_aws):
    first = server.status(own_local_aws.state_dir)
    url = server.ensure_running(own_local_aws.state_dir, free_port())
    assert url == own_local_aws.url
    assert server.status(own_local_aws.state_dir)["pid"] == first["pid"]


def test_stop_ends_the_server_and_removes_its_state_file(own_local_aws):
    pid = server.status(own_local_aws.state_dir)["pid"]
    assert server.stop(own_local_aws.state_dir) is True
    assert server.status(own_local_aws.state_dir) is None
    assert not server.pid_alive(pid)  # gone, or a zombie waiting to be reaped by this test process
    assert server.stop(own_local_aws.state_dir) is False


def test_a_stale_pid_file_is_cleaned_up_and_a_new_server_started(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    port = free_port()
    (state / "server.json").write_text(
        json.dumps({"pid": dead.pid, "port": port, "url": f"http://127.0.0.1:{port}"})
    )
    assert server.status(state) is None
    assert not (state / "server.json").exists()
    try:
        url = server.ensure_running(state, port)
        assert server.health(url)["pid"] != dead.pid
    finally:
        server.stop(state)


def test_a_port_held_by_another_program_gives_one_sentence_with_the_fix(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(server.LocalServerError, match=rf"Port {port} .* another program.*LOCALAWS_PORT"):
            server.ensure_running(tmp_path / "state", port)


def test_a_port_held_by_another_workshop_server_names_its_state_folder(own_local_aws, tmp_path):
    with pytest.raises(server.LocalServerError, match=str(own_local_aws.state_dir)):
        server.ensure_running(tmp_path / "other", own_local_aws.port)


def test_cli_url_prints_only_the_endpoint_and_works_with_the_aws_cli(tmp_path):
    env = {"WORKSHOP_STATE_DIR": str(tmp_path / "state"), "WORKSHOP_LOCAL_PORT": str(free_port())}
    try:
        url = cli("url", env=env).stdout.strip()
        assert url.startswith("http://127.0.0.1:") and "\n" not in url
        aws = os.path.join(os.path.dirname(sys.executable), "aws")
        out = subprocess.run(
            [aws, "--endpoint-url", url, "--region", "us-east-1", "sts", "get-caller-identity"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["Account"]
        assert cli("status", env=env).returncode == 0
    finally:
        assert cli("stop", env=env).returncode == 0
    assert cli("status", env=env).returncode == 3


def test_cli_reports_a_bad_port_setting_without_a_traceback(tmp_path):
    out = cli("start", env={"WORKSHOP_STATE_DIR": str(tmp_path), "WORKSHOP_LOCAL_PORT": "http"})
    assert out.returncode == 2
    assert out.stderr.startswith("error: WORKSHOP_LOCAL_PORT='http'")
    assert "Traceback" not in out.stderr


def test_the_server_does_not_hold_its_starters_output_open(tmp_path):
    """A detached server must not inherit stdout: whatever reads it (nbval, CI) would wait forever."""
    env = {"WORKSHOP_STATE_DIR": str(tmp_path / "state"), "WORKSHOP_LOCAL_PORT": str(free_port())}
    try:
        # communicate() returns only when every holder of the pipe has closed it.
        proc = subprocess.Popen(
            [sys.executable, "-m", "helpers.local", "start"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **env},
        )
        out, _ = proc.communicate(timeout=60)
        assert b"local AWS running" in out
    finally:
        cli("stop", env=env)


def test_the_server_log_holds_no_line_per_request(own_local_aws):
    s3 = own_local_aws.client("s3")
    for _ in range(5):
        s3.list_buckets()
    log = server.log_file(own_local_aws.state_dir).read_text()
    assert "local AWS listening" in log and "POST /" not in log and "GET /_workshop/health" not in log
