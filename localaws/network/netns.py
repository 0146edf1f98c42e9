"""A network namespace of the environment's own, set up from Python between fork and exec.

This is the sandbox's Python path (its ``preexec``; SageMaker's containers start this way). The C
launcher does the same steps in its own ``unshare`` (see /work/proto/network/INTEGRATION.md). In order:

1. ``unshare(CLONE_NEWNET)``: a namespace with only a loopback device, which is down. Called after the
   sandbox entered its outer user namespace (a server that is not root), the namespace belongs to that
   user namespace, where the server's uid is 0 (network_namespaces(7), user_namespaces(7));
2. ``lo`` up (``SIOCSIFFLAGS``);
3. ``default dev lo`` (one ``RTM_NEWROUTE``): a connection to any address nobody models leaves on
   ``lo``, arrives as a packet for a non-local address with forwarding off, and is dropped: ``connect()``
   hangs as it does on AWS. (A namespace with no default route answers ``ENETUNREACH`` at once, and a
   ``blackhole`` route ``EINVAL``: both fail fast, which AWS never does.) UDP, DNS to an unreachable
   resolver included, vanishes the same way;
4. each prefix of the plan made local (a ``local`` route in table ``local`` on ``lo``), so that its
   addresses can be bound without adding any;
5. each listener of the plan created inside (the Runtime API at 127.0.0.1:9001, one address per AWS
   service, each published internet host), sent to the server in one ``SCM_RIGHTS`` message over an
   inherited ``AF_UNIX`` socket, then closed: the function never holds them, and the server serves them
   from outside without being able to enter the namespace.

Everything the child does is a system call on data built before the fork (the netlink messages, the
ioctl request), so nothing in it allocates much or takes a lock another thread may hold.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
import socket
import struct
import subprocess
from collections.abc import Callable, Sequence

from localaws.network.addresses import Plan

CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_RTM_NEWROUTE = 24
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_EXCL, _NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
_RT_TABLE_MAIN, _RT_TABLE_LOCAL, _RTPROT_BOOT = 254, 255, 3
_RT_SCOPE_LINK, _RT_SCOPE_HOST = 253, 254
_RTN_UNICAST, _RTN_LOCAL = 1, 2
_RTA_DST, _RTA_OIF = 1, 4
_LOOPBACK_INDEX = 1  # lo is the first device of every new namespace
_LISTEN_BACKLOG = 64

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.unshare.argtypes = [ctypes.c_int]
CLONE_NEWUSER = 0x10000000


def unshare_network() -> None:
    """Move the calling process into a new network namespace."""
    if _libc.unshare(CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"unshare(CLONE_NEWNET): {os.strerror(code)}")


def enter_user_namespace() -> None:
    """For a process that is not root: a user namespace of its own where its uid and gid are 0, so that
    it may create the network namespace (the sandbox's outer user namespace does the same)."""
    uid, gid = os.geteuid(), os.getegid()
    if _libc.unshare(CLONE_NEWUSER) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"unshare(CLONE_NEWUSER): {os.strerror(code)}")
    for path, data in (
        ("/proc/self/setgroups", b"deny"),
        ("/proc/self/gid_map", f"0 {gid} 1\n".encode()),
        ("/proc/self/uid_map", f"0 {uid} 1\n".encode()),
    ):
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def _route_message(table: int, route_type: int, scope: int, cidr: str | None) -> bytes:
    """One RTM_NEWROUTE request: ``cidr`` (or the default route when None) on ``lo``."""
    prefix_length, destination = 0, b""
    if cidr:
        network, _, bits = cidr.partition("/")
        prefix_length, destination = int(bits or 32), socket.inet_aton(network)
    attributes = struct.pack("HHi", 8, _RTA_OIF, _LOOPBACK_INDEX)
    if destination:
        attributes += struct.pack("HH", 8, _RTA_DST) + destination
    body = struct.pack(
        "BBBBBBBBI", socket.AF_INET, prefix_length, 0, 0, table, _RTPROT_BOOT, scope, route_type, 0
    )
    flags = _NLM_F_REQUEST | _NLM_F_ACK | _NLM_F_CREATE | _NLM_F_EXCL
    return (
        struct.pack("IHHII", 16 + len(body) + len(attributes), _RTM_NEWROUTE, flags, 1, 0) + body + attributes
    )


def route_messages(local_prefixes: Sequence[str], *, default_to_lo: bool = True) -> list[bytes]:
    """The netlink requests of steps 3 and 4."""
    messages = [_route_message(_RT_TABLE_MAIN, _RTN_UNICAST, _RT_SCOPE_LINK, None)] if default_to_lo else []
    messages += [_route_message(_RT_TABLE_LOCAL, _RTN_LOCAL, _RT_SCOPE_HOST, cidr) for cidr in local_prefixes]
    return messages


def _loopback_up() -> None:
    request = struct.pack("16sH14x", b"lo", 0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        flags = struct.unpack("16sH14x", fcntl.ioctl(probe, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(probe, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def _add_routes(messages: list[bytes]) -> None:
    if not messages:
        return
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as netlink:
        for message in messages:
            netlink.send(message)
            answer = netlink.recv(4096)
            error = struct.unpack("i", answer[16:20])[0]  # struct nlmsgerr after the 16-byte header
            if error:
                raise OSError(-error, f"adding a route: {os.strerror(-error)}")


def _listen(addresses: list[tuple[str, int]]) -> list[socket.socket]:
    listeners = []
    for address in addresses:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(address)
        listener.listen(_LISTEN_BACKLOG)
        listeners.append(listener)
    return listeners


def prepare(plan: Plan, *, default_to_lo: bool = True) -> Callable[[int | None], None]:
    """Build everything before the fork; return ``enter(send_fd)`` for the child (``send_fd``: its end
    of :func:`handover`'s socket pair, closed once the listeners are sent; None to create none)."""
    messages = route_messages(plan.local_prefixes, default_to_lo=default_to_lo)
    addresses = [(listener.address, listener.port) for listener in plan.listeners]

    def enter(send_fd: int | None) -> None:
        unshare_network()
        _loopback_up()
        _add_routes(messages)
        if send_fd is None:
            return
        listeners = _listen(addresses)
        channel = socket.socket(fileno=send_fd)
        try:
            socket.send_fds(channel, [b"L"], [listener.fileno() for listener in listeners])
        finally:
            channel.close()
            for listener in listeners:
                listener.close()

    return enter


def handover() -> tuple[socket.socket, socket.socket]:
    """``(server end, child end)``: pass the child end's fd to the child (``pass_fds``), close it in the
    server once the child is started, then :func:`receive` on the server end."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def receive(server_end: socket.socket, plan: Plan, timeout: float = 30.0) -> dict[str, socket.socket]:
    """The listeners the child created, by listener name; OSError if the child sent fewer (it failed)."""
    server_end.settimeout(timeout)
    try:
        _, fds, _, _ = socket.recv_fds(server_end, 1, len(plan.listeners))
    except (OSError, TimeoutError) as exc:
        raise OSError(f"the environment sent no listeners: {exc or 'it ended first'}") from exc
    sockets = [socket.socket(fileno=fd) for fd in fds]
    if len(sockets) != len(plan.listeners):
        for sock in sockets:
            sock.close()
        raise OSError(f"the environment sent {len(sockets)} listeners of {len(plan.listeners)}")
    return {listener.name: sock for listener, sock in zip(plan.listeners, sockets, strict=True)}


def start(
    command: Sequence[str],
    plan: Plan,
    *,
    before: Callable[[], None] | None = None,
    default_to_lo: bool = True,
    timeout: float = 30.0,
    **popen,
) -> tuple[subprocess.Popen, dict[str, socket.socket]]:
    """Run ``command`` in a namespace of its own set up per ``plan``; return it and its listeners.

    ``before`` runs first in the child (a user namespace, for example). What the sandbox does, minus
    the sandbox: for tests and measurements.
    """
    enter = prepare(plan, default_to_lo=default_to_lo)
    server_end, child_end = handover()
    child_fd = child_end.fileno()

    def preexec() -> None:
        if before is not None:
            before()
        enter(child_fd)

    try:
        process = subprocess.Popen(
            list(command), preexec_fn=preexec, pass_fds=(*popen.pop("pass_fds", ()), child_fd), **popen
        )
    finally:
        child_end.close()
    try:
        listeners = receive(server_end, plan, timeout) if plan.listeners else {}
    except OSError:
        process.kill()
        process.wait()
        raise
    finally:
        server_end.close()
    return process, listeners
