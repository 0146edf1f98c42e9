"""Guarantee 5, the Runtime API answers only its own environment.

Each environment's Runtime API listens on loopback, as Lambda's does (``AWS_LAMBDA_RUNTIME_API``), but
here other processes share that loopback: another function could take this environment's invocations
or post a forged response. So every connection is checked when it is accepted: the kernel's socket
table (``/proc/net/tcp``) gives the inode of the client's end, and the connection is served only if
that socket is open in one of the environment's own processes (``/proc/<pid>/fd``). This costs a
fraction of a millisecond per connection; the runtime client keeps one connection for its lifetime.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path


def _hex_endpoint(host: str, port: int) -> str:
    """``127.0.0.1:9001`` as /proc/net/tcp writes it (little-endian address, big-endian port)."""
    packed = socket.inet_aton(host)
    return f"{int.from_bytes(packed, 'little'):08X}:{port:04X}"


def socket_inode(conn: socket.socket) -> int | None:
    """The inode of the peer's end of an accepted loopback TCP connection, or None if not found."""
    peer_host, peer_port = conn.getpeername()[:2]
    local_host, local_port = conn.getsockname()[:2]
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
