"""The server's side of every environment's network: the listeners created inside each namespace.

An environment's launcher creates its listeners inside the namespace and hands them over
(:mod:`.netns`); the plane serves them from outside, in the server process:

- **AWS addresses** (the generic ``AWS_ENDPOINT_URL`` one and one per service): each accepted
  connection is served by the server's own request handling (``serve_aws``, usually
  :func:`.guard.connection_server`), which tags every request with the environment and the address it
  dialled for :func:`.guard.guard`. Nothing is copied between sockets.
- **Internet hosts**: each accepted connection is relayed byte for byte to the host's target on this
  machine's loopback (:mod:`.internet`); a target that is down resets the connection, as a real host
  with nothing listening would.
- **Reachability**: a listener the environment's :class:`.reachability.Policy` does not open carries a
  drop filter (:mod:`.bpf`), so the function's ``connect()`` times out as it does on AWS. ``update()``
  switches the filters while the environment runs (a route added or removed applies to the next
  connection, with no cold start, as on AWS).

One thread waits on every listener (a selector); each connection gets a thread while it lasts. An
environment may hold at most ``max_connections`` connections at once: past that its listeners are not
accepted from until one ends, so their backlog fills and further SYNs are dropped (connect timeouts),
and no environment can make the server grow without bound. (AWS's limit is far higher, 65,000
connections per Hyperplane network interface,
https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html; this one is the server's.)
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from localaws.network import bpf
from localaws.network.addresses import Listener, Plan
from localaws.network.guard import Endpoint
from localaws.network.reachability import Policy

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64
RELAY_CONNECT_TIMEOUT_S = 10.0
_CHUNK = 65536


@dataclass
class _Environment:
    name: str
    listeners: dict[str, tuple[Listener, socket.socket]]
    policy: Policy
    active: int = 0
    paused: bool = False
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def _reset(conn: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0): what a host with nothing listening answers."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy until ``source`` ends, then end ``sink``'s writing half (a half-close passes through)."""
    try:
        while data := source.recv(_CHUNK):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class NetworkPlane:
    """Serves the AWS and internet listeners of every environment (see the module's docstring)."""

    def __init__(
        self,
        serve_aws: Callable[[socket.socket, tuple, Endpoint], None],
        *,
        max_connections: int = MAX_CONNECTIONS,
        relay_connect_timeout_s: float = RELAY_CONNECT_TIMEOUT_S,
    ):
        self._serve_aws = serve_aws
        self._max = max_connections
        self._relay_timeout = relay_connect_timeout_s
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._environments: dict[str, _Environment] = {}
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="network-plane", daemon=True)
        self._thread.start()

    # -- the environments ---------------------------------------------------------------------------

    def attach(
        self, environment: str, plan: Plan, listeners: Mapping[str, socket.socket], policy: Policy
    ) -> None:
        """Serve ``environment``'s AWS and internet listeners (by name, as :func:`.netns.receive` gives
        them; the plane owns and closes them; the Runtime API's is left to its server)."""
        owned = {}
        for spec in plan.listeners:
            sock = listeners.get(spec.name)
            if sock is None or spec.kind == "runtime":
                continue
            sock.setblocking(False)
            bpf.set_open(sock, policy.listener_open(spec))
            owned[spec.name] = (spec, sock)
        env = _Environment(environment, owned, policy)
        with self._lock:
            if environment in self._environments:
                raise ValueError(f"environment {environment} is already attached")
            self._environments[environment] = env
            self._register(env)  # epoll reports a descriptor added while it waits: no wake-up needed

    def update(self, environment: str, policy: Policy) -> None:
        """Apply a new policy: listeners open and close at once, and so does the generic address."""
        with self._lock:
            env = self._environments.get(environment)
            if env is None:
                return
            env.policy = policy
            for spec, sock in env.listeners.values():
                with contextlib.suppress(OSError):
                    bpf.set_open(sock, policy.listener_open(spec))

    def policy(self, environment: str) -> Policy | None:
        """The environment's current policy (for :func:`.guard.guard`), None once it is detached."""
        env = self._environments.get(environment)
        return env.policy if env is not None else None

    def detach(self, environment: str) -> None:
        """Stop serving ``environment``: its listeners are closed (its connections end on their own)."""
        with self._lock:
            env = self._environments.pop(environment, None)
            if env is None:
                return
            env.closed = True
            self._unregister(env)
            for _, sock in env.listeners.values():
                sock.close()

    def environments(self) -> list[str]:
        with self._lock:
            return list(self._environments)

    def close(self) -> None:
        for name in self.environments():
            self.detach(name)
        self._stopping = True
        self._wake()
        self._thread.join(timeout=5)
        self._selector.close()
        self._wake_read.close()
        self._wake_write.close()

    # -- the selector thread ------------------------------------------------------------------------

    def _register(self, env: _Environment) -> None:
        for spec, sock in env.listeners.values():
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.register(sock, selectors.EVENT_READ, (env, spec))

    def _unregister(self, env: _Environment) -> None:
        for _, sock in env.listeners.values():
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(sock)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_write.send(b"w")

    def _loop(self) -> None:
        while not self._stopping:
            try:
                events = self._selector.select()
            except (OSError, ValueError):  # a listener closed under select: look again
                continue
            for key, _ in events:
                if key.data is None:
                    with contextlib.suppress(OSError):
                        self._wake_read.recv(4096)
                    continue
                env, spec = key.data
                self._accept(env, spec, key.fileobj)

    def _accept(self, env: _Environment, spec: Listener, listener: socket.socket) -> None:
        with self._lock:
            if env.closed:
                return
            if env.active >= self._max:
                if not env.paused:
                    env.paused = True
                    self._unregister(env)
                    log.warning(
                        "environment %s holds %d connections: not accepting more", env.name, self._max
                    )
                return
            try:
                conn, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # closed by detach meanwhile
            env.active += 1
        work = self._serve if spec.kind == "aws" else self._relay
        threading.Thread(
            target=work, args=(env, spec, conn, address), name=f"net-{env.name}", daemon=True
        ).start()

    def _done(self, env: _Environment) -> None:
        with self._lock:
            env.active -= 1
            if env.paused and not env.closed and env.active < self._max:
                env.paused = False
                self._register(env)

    # -- one connection -----------------------------------------------------------------------------

    def _serve(self, env: _Environment, spec: Listener, conn: socket.socket, address: tuple) -> None:
        try:
            self._serve_aws(conn, address, Endpoint(env.name, spec.name))
        except Exception:  # noqa: BLE001 - one connection's failure must not end the plane
            log.exception("serving a connection of environment %s to %s", env.name, spec.name)
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
            self._done(env)

    def _relay(self, env: _Environment, spec: Listener, conn: socket.socket, address: tuple) -> None:
        upstream = None
        try:
            try:
                upstream = socket.create_connection(spec.target, timeout=self._relay_timeout)
            except OSError as exc:
                log.info("internet host %s (%s:%d) is down: %s", spec.name, *spec.target, exc)
                _reset(conn)
                return
            upstream.settimeout(None)
            for sock in (conn, upstream):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            back = threading.Thread(
                target=_pump, args=(upstream, conn), name=f"net-{env.name}-in", daemon=True
            )
            back.start()
            _pump(conn, upstream)
            back.join()
        finally:
            conn.close()
            if upstream is not None:
                upstream.close()
            self._done(env)
