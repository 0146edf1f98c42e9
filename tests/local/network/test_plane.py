"""localaws.network end to end on this machine: a process in its own namespace talks boto3 to the real
localaws app (moto, in this process) through the network plane, with the reachability the workshop's
network gives it; published "internet" hosts are relayed; a warm environment follows a route change.

The app is served by the server's own request handler class (``localaws.server._request_handler``), as
``python -m localaws serve`` serves it, with the guard in front."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from localaws.network import addresses, guard, internet, netns, reachability
from localaws.network.placement import Placement
from localaws.network.plane import NetworkPlane
from tests.unit.network.conftest import ACCOUNT, REGION, build_workshop

pytestmark = pytest.mark.usefixtures("namespaces")
PROBE = str(Path(__file__).with_name("function_probe.py"))
IMAGE = b"\xff\xd8fake-jpeg" * 100


class Image(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(IMAGE)))
        self.end_headers()
        self.wfile.write(IMAGE)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The localaws app in this process, behind the guard, with a plane whose connections it serves."""
    from werkzeug.serving import make_server

    from localaws.app import create_app
    from localaws.server import _request_handler

    state = tmp_path_factory.mktemp("network-state")
    holder: dict = {}
    app = create_app(state, "http://127.0.0.1:0")
    checked = guard.guard(app, lambda environment: holder["plane"].policy(environment), hold_limit_s=60)
    httpd = make_server("127.0.0.1", 0, checked, threaded=True, request_handler=_request_handler())
    holder["plane"] = NetworkPlane(guard.connection_server(httpd, _request_handler()))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Image)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield {"plane": holder["plane"], "url": url, "image_port": web.server_address[1]}
    holder["plane"].close()
    web.shutdown()
    httpd.shutdown()
    app.shutdown()


@pytest.fixture
def workshop(server, monkeypatch):
    """The workshop's network, built through the server's own EC2/EFS API (so the model the plane's
    policies read is the server's)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": server["url"],
    }.items():
        monkeypatch.setenv(name, value)
    return build_workshop()


class Environment:
    """A function-like process in its own namespace, attached to the plane with a policy."""

    def __init__(self, server, placement: Placement, hosts: tuple = ()):
        self.plane: NetworkPlane = server["plane"]
        self.plan = addresses.plan(hosts)
        self.placement = placement
        self.name = f"env-{uuid.uuid4().hex[:8]}"
        env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "PATH": "/usr/bin:/bin",
            **self.plan.variables,
        }
        self.process, listeners = netns.start(
            [sys.executable, PROBE],
            self.plan,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.runtime = listeners.pop(addresses.RUNTIME)
        self.plane.attach(self.name, self.plan, listeners, reachability.evaluate(placement, self.plan))

    def reevaluate(self) -> None:
        self.plane.update(self.name, reachability.evaluate(self.placement, self.plan))

    def probe(self, name: str, read_timeout: float = 60) -> dict:
        self.process.stdin.write(json.dumps({"probe": name, "read_timeout": read_timeout}) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)
        self.plane.detach(self.name)
        self.runtime.close()


@pytest.fixture
def environment(server):
    started = []

    def _start(placement: Placement, hosts: tuple = ()) -> Environment:
        started.append(Environment(server, placement, hosts))
        return started[-1]

    yield _start
    for env in started:
        env.close()


def test_a_function_in_the_workshop_vpc_reaches_s3_but_not_the_lambda_api(workshop, environment):
    env = environment(workshop.placement())
    assert env.probe("s3")["ok"]
    denied = env.probe("lambda", read_timeout=5)
    assert (denied["ok"], denied["error"]) == (False, "ConnectTimeoutError")
    assert "198.18.0.11" in denied["message"]


def test_the_same_code_without_vpc_config_reaches_the_lambda_api(workshop, environment):
    env = environment(Placement(ACCOUNT, REGION))
    assert env.probe("lambda")["ok"]
    assert env.probe("s3")["ok"]


def test_a_warm_environment_follows_a_route_change_without_a_cold_start(workshop, environment):
    env = environment(workshop.placement())
    assert env.probe("lambda", read_timeout=5)["error"] == "ConnectTimeoutError"
    nat = workshop.add_nat()
    env.reevaluate()
    assert env.probe("lambda")["ok"]
    workshop.ec2.delete_nat_gateway(NatGatewayId=nat)
    env.reevaluate()
    assert env.probe("lambda", read_timeout=5)["error"] == "ConnectTimeoutError"
    assert env.process.poll() is None  # the same process all along


def test_a_request_signed_for_another_service_gets_that_address_services_error(workshop, environment):
    env = environment(workshop.placement())
    answer = env.probe("wrong scope")
    assert answer["ok"] and answer["result"].startswith("400 ")
    assert "<Code>AuthorizationHeaderMalformed</Code>" in answer["result"]


def test_the_generic_address_answers_what_the_network_reaches_and_holds_the_rest(workshop, environment):
    env = environment(workshop.placement())
    assert env.probe("s3 via generic")["ok"]
    held = env.probe("sts via generic", read_timeout=3)
    assert (held["ok"], held["error"]) == (False, "ReadTimeoutError")


@pytest.fixture
def published(server):
    return internet.parse(f"images.example=127.0.0.1:{server['image_port']}")


def test_a_published_internet_host_is_reached_outside_a_vpc(workshop, environment, published):
    env = environment(Placement(ACCOUNT, REGION), published)
    answer = env.probe("internet")
    assert answer == {"ok": True, "result": f"200 {len(IMAGE)} bytes", "seconds": answer["seconds"]}


def test_the_workshop_subnets_time_out_on_the_internet_and_reach_it_through_a_nat_on_its_port(
    workshop, environment, published
):
    env = environment(workshop.placement(), published)
    denied = env.probe("internet", read_timeout=3)
    assert denied["ok"] is False and "timed out" in denied["message"]
    workshop.add_nat()
    env.reevaluate()
    assert env.probe("internet", read_timeout=3)["ok"] is False  # port 80: no egress rule in the Lambda group
    workshop.ec2.authorize_security_group_egress(
        GroupId=workshop.lambda_group, IpPermissions=workshop.permission(80, cidr="0.0.0.0/0")
    )
    env.reevaluate()
    assert env.probe("internet")["ok"]


def test_an_internet_host_that_is_down_resets_the_connection(workshop, environment):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    env = environment(Placement(ACCOUNT, REGION), internet.parse(f"images.example=127.0.0.1:{port}"))
    answer = env.probe("internet", read_timeout=30)
    assert answer["ok"] is False
    # A reset, as from a host with nothing listening: urllib raises it bare when it arrives while the
    # response is read, wrapped in a URLError when it arrives before the request was sent.
    reset = answer["error"] == "ConnectionResetError" or (
        answer["error"] == "URLError" and "[Errno 104]" in answer["message"]
    )
    assert reset, answer


def test_an_environment_cannot_hold_more_connections_than_its_share(server):
    gate, started, lock = threading.Event(), [], threading.Lock()

    def serve(conn, address, endpoint):
        conn.recv(10)
        with lock:
            started.append(endpoint.listener)
        gate.wait(120)
        conn.sendall(b"done")

    plane = NetworkPlane(serve, max_connections=2)
    plan = addresses.plan(runtime_api=False)
    script = """
import socket
conns = [socket.create_connection(("198.18.0.10", 80), timeout=120) for _ in range(3)]
for c in conns:
    c.sendall(b"x")
print(sum(c.recv(10) == b"done" for c in conns), flush=True)
"""
    process, listeners = netns.start([sys.executable, "-c", script], plan, stdout=subprocess.PIPE, text=True)
    plane.attach("capped", plan, listeners, reachability.evaluate(Placement(ACCOUNT, REGION), plan))
    try:
        deadline = time.monotonic() + 60
        while len(started) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # room for a third to start, were the cap not kept
        assert len(started) == 2
        gate.set()
        out, _ = process.communicate(timeout=120)
        assert out.strip() == "3" and len(started) == 3  # the third was served once one ended
    finally:
        gate.set()
        process.kill()
        plane.close()
