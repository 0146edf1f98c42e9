"""Guarantee 5, the Runtime API answers only its own environment.

Each environment's Runtime API listens on loopback, as Lambda's does (``AWS_LAMBDA_RUNTIME_API``), but
here other processes share that loopback: another function could take this environment's invocations
or post a forged response. So every connection is checked when it is accepted: the kernel gives the inode
of the client's end, and the connection is served only if that socket is open in one of the
environment's own processes (``/proc/<pid>/fd``). The inode comes from one sock_diag netlink query for
that one socket (sock_diag(7), ``SOCK_DIAG_BY_FAMILY`` with its four-tuple), a few microseconds
whatever the number of sockets on the machine; reading ``/proc/net/tcp`` instead grows with every socket
and ``TIME_WAIT`` entry (2,000 refused connections cost 5 s of CPU that way), and is kept only where
netlink is refused. The runtime client keeps one connection for its lifetime.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from pathlib import Path

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NLMSG_ERROR = 2
_NO_COOKIE = 0xFFFFFFFF
_REQUEST = struct.Struct("=IHHII BBBxI HH16s16sI II")  # nlmsghdr + inet_diag_req_v2 (ports big-endian)
_INODE_AT = 16 + 68  # nlmsghdr, then inet_diag_msg's idiag_inode


def _hex_endpoint(host: str, port: int) -> str:
    """``127.0.0.1:9001`` as /proc/net/tcp writes it (little-endian address, big-endian port)."""
    packed = socket.inet_aton(host)
    return f"{int.from_bytes(packed, 'little'):08X}:{port:04X}"


def socket_inode(conn: socket.socket) -> int | None:
    """The inode of the peer's end of an accepted loopback TCP connection, or None if not found."""
    peer_host, peer_port = conn.getpeername()[:2]
    local_host, local_port = conn.getsockname()[:2]
    try:
        return _diag_inode(peer_host, peer_port, local_host, local_port)
    except OSError:  # no sock_diag here (a kernel without it, a seccomp profile): read the table
        return _table_inode(peer_host, peer_port, local_host, local_port)


def _diag_inode(src_host: str, src_port: int, dst_host: str, dst_port: int) -> int | None:
    """The inode of the IPv4 TCP socket whose local end is ``src`` and remote end ``dst``, from the kernel
    by sock_diag (None if there is none); OSError if netlink is refused."""
    ports = struct.pack("!HH", src_port, dst_port)
    request = _REQUEST.pack(
        _REQUEST.size, _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0,
        socket.AF_INET, socket.IPPROTO_TCP, 0, 0xFFFFFFFF,
        *struct.unpack("=HH", ports), socket.inet_aton(src_host).ljust(16, b"\0"),
        socket.inet_aton(dst_host).ljust(16, b"\0"), 0, _NO_COOKIE, _NO_COOKIE,
    )  # fmt: skip
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as link:
        link.settimeout(1.0)
        link.sendto(request, (0, 0))
        answer = link.recv(8192)
    kind = struct.unpack_from("=H", answer, 4)[0]
    if kind == _NLMSG_ERROR:
        code = -struct.unpack_from("=i", answer, 16)[0]
        if code in (0, 2):  # ENOENT: no such socket
            return None
        raise OSError(code, os.strerror(code))
    return struct.unpack_from("=I", answer, _INODE_AT)[0]


def _table_inode(peer_host: str, peer_port: int, local_host: str, local_port: int) -> int | None:
    want_local, want_remote = _hex_endpoint(peer_host, peer_port), _hex_endpoint(local_host, local_port)
    with contextlib.suppress(OSError):
        with open("/proc/net/tcp") as table:
            next(table)
            for line in table:
                fields = line.split()
                if fields[1] == want_local and fields[2] == want_remote:
                    return int(fields[9])
    return None


def owned_by(inode: int, pids: list[int]) -> bool:
    """Whether a socket with this inode is open in one of ``pids``."""
    link = f"socket:[{inode}]"
    for pid in pids:
        folder = Path(f"/proc/{pid}/fd")
        with contextlib.suppress(OSError):
            for fd in os.listdir(folder):
                with contextlib.suppress(OSError):
                    if os.readlink(folder / fd) == link:
                        return True
    return False


def available() -> bool:
    return Path("/proc/net/tcp").exists()
