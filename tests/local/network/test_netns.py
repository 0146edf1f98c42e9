"""localaws.network.netns and .bpf on this machine's kernel: an environment in a namespace of its own
reaches only the listeners the server holds; everything else, and whatever the server filters, times
out instead of failing fast, as on AWS; nothing of the host or another environment is reachable."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from localaws.network import addresses, bpf, netns

from .conftest import python, run_probes

pytestmark = pytest.mark.usefixtures("namespaces")
PLAN = addresses.plan()


def close_all(listeners: dict) -> None:
    for sock in listeners.values():
        sock.close()


def test_an_unmodelled_destination_hangs_instead_of_failing_fast():
    script = "report(result=connect('10.9.9.9', 80, 2.0))"
    process, listeners = netns.start(
        python(script), PLAN, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    close_all(listeners)
    assert run_probes(process) == [{"result": "TimeoutError"}]
    # Without "default dev lo" the kernel answers at once (ENETUNREACH), which AWS never does.
    process, listeners = netns.start(
        python(script), PLAN, default_to_lo=False, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    close_all(listeners)
    assert run_probes(process) == [{"result": "OSError errno 101"}]


def test_the_listeners_are_created_inside_handed_out_and_not_kept_by_the_function():
    script = """
s = socket.create_connection(('127.0.0.1', 9001), timeout=30)
s.sendall(b'ping')
reply = s.recv(100).decode()
import json
import os
links = []
for fd in os.listdir('/proc/self/fd'):
    try:
        links.append(os.readlink(f'/proc/self/fd/{fd}'))
    except OSError:
        pass  # the listing's own descriptor
report(reply=reply, sockets=[link for link in links if link.startswith('socket:')])
"""
    process, listeners = netns.start(
        python(script), PLAN, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert set(listeners) == {listener.name for listener in PLAN.listeners}
    runtime = listeners[addresses.RUNTIME]
    runtime.settimeout(30)
    conn, _ = runtime.accept()
    conn.sendall(conn.recv(100) + b"-pong")
    conn.close()
    inodes = {f"socket:[{os.fstat(sock.fileno()).st_ino}]" for sock in listeners.values()}
    close_all(listeners)
    (probe,) = run_probes(process)
    assert probe["reply"] == "ping-pong"
    assert not inodes & set(probe["sockets"])  # the function holds none of its listeners


def test_the_hosts_loopback_ports_are_not_reachable_from_inside():
    with socket.socket() as host_server:
        host_server.bind(("127.0.0.1", 0))
        host_server.listen()
        port = host_server.getsockname()[1]
        script = f"report(result=connect('127.0.0.1', {port}, 5.0))"
        process, listeners = netns.start(
            python(script), PLAN, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        close_all(listeners)
        assert run_probes(process) == [{"result": "ConnectionRefusedError errno 111"}]
        # The same process without a namespace reaches it (this test would see a leak).
        outside = subprocess.run(python(script), capture_output=True, text=True, timeout=60)
        assert '"connected"' in outside.stdout


def test_another_environments_abstract_unix_socket_is_not_reachable():
    name = f"localaws-test-{uuid.uuid4().hex}"
    owner = python(
        f"""
s = socket.socket(socket.AF_UNIX)
s.bind('\\0{name}')
s.listen()
report(bound=True)
sys.stdin.readline()
"""
    )
    process, listeners = netns.start(
        owner, PLAN, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    close_all(listeners)
    try:
        assert process.stdout.readline().strip() == '{"bound": true}'
        other = python(
            f"""
s = socket.socket(socket.AF_UNIX)
try:
    s.connect('\\0{name}')
    report(result='connected')
except OSError as exc:
    report(result=type(exc).__name__)
"""
        )
        second, more = netns.start(other, PLAN, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        close_all(more)
        assert run_probes(second) == [{"result": "ConnectionRefusedError"}]
    finally:
        process.communicate("done\n", timeout=60)


def test_a_filtered_listener_times_out_and_opens_again_without_a_restart():
    script = """
report(first=connect('198.18.0.11', 80, 1.5))
sys.stdin.readline()
report(second=connect('198.18.0.11', 80, 60.0))
"""
    process, listeners = netns.start(
        python(script), PLAN, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lambda_listener = listeners["lambda"]
    bpf.drop(lambda_listener)
    try:
        assert process.stdout.readline().strip() == '{"first": "TimeoutError"}'
        bpf.allow(lambda_listener)
        process.stdin.write("go\n")
        process.stdin.flush()
        assert process.stdout.readline().strip() == '{"second": "connected"}'
    finally:
        process.communicate(timeout=60)
        close_all(listeners)


def test_allowing_a_listener_without_a_filter_is_harmless():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        bpf.allow(listener)
        bpf.set_open(listener, True)


def test_a_user_namespace_can_own_the_environments_network():
    script = "report(runtime=connect('127.0.0.1', 9001, 30.0), elsewhere=connect('10.9.9.9', 80, 1.5))"
    process, listeners = netns.start(
        python(script),
        PLAN,
        before=netns.enter_user_namespace,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert run_probes(process) == [{"runtime": "connected", "elsewhere": "TimeoutError"}]
    finally:
        close_all(listeners)


UNPRIVILEGED = r"""
import json, socket, sys
from localaws.network import addresses, bpf, netns, status
plan = addresses.plan()
reason = status.probe()
script = '''
import socket
def c(port, t):
    s = socket.socket(); s.settimeout(t)
    try:
        s.connect(("198.18.0.11", port)); return "connected"
    except OSError as e:
        return type(e).__name__
print(c(80, 1.5))
'''
process, listeners = netns.start([sys.executable, "-c", script], plan, before=netns.enter_user_namespace,
                                 stdout=__import__("subprocess").PIPE, text=True)
bpf.drop(listeners["lambda"])
out = process.communicate(timeout=60)[0].strip()
print(json.dumps({"uid": __import__("os").geteuid(), "probe": reason, "filtered": out}))
"""


def test_a_server_that_is_not_root_sets_up_and_filters_namespaces_too(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("switching to uid 65534 for this test needs root")
    interpreter = "/usr/bin/python3.11" if os.path.exists("/usr/bin/python3.11") else sys.executable
    repository = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            interpreter,
            "-c",
            UNPRIVILEGED,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(repository), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    if "Permission denied" in done.stderr and "localaws" in done.stderr:
        pytest.skip(f"uid 65534 cannot read this repository: {done.stderr[-200:]}")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"uid": 65534, "probe": None, "filtered": "TimeoutError"}
