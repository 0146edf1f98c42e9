"""A denied connection times out, as it does on AWS: a socket filter that drops every SYN on a listener.

On AWS a packet that no route or security group admits is dropped silently: ``connect()`` neither
succeeds nor fails fast, it waits until the client gives up (boto3's ``ConnectTimeoutError``, a
download's ``timed out``): the VPC answers traffic that a security group or a missing route denies
with nothing at all, no reset and no ICMP error
(https://docs.aws.amazon.com/vpc/latest/userguide/vpc-security-groups.html).

Here every destination an environment may dial is a listener the server holds (created inside the
environment's namespace, :mod:`.netns`). A classic BPF program of one instruction, ``ret #0`` ("keep
nothing"), attached with ``SO_ATTACH_FILTER`` to a *listening* socket makes the kernel discard each SYN
before the listen handling sees it: no SYN-ACK, no RST, no ICMP, so the client's ``connect()`` hangs.
``SO_DETACH_FILTER`` opens the listener again, and the client's next SYN retransmission connects. The
filter needs no privilege, works on a socket of another namespace (the server holds the fd), costs
nothing while detached, and can be switched at any time: a warm environment follows a route change at
once, as new connections on AWS do. See socket(7) (``SO_ATTACH_FILTER``) and
https://www.kernel.org/doc/html/latest/networking/filter.html.
"""

from __future__ import annotations

import ctypes
import errno
import socket

SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
_BPF_RET_K = 0x06  # BPF_RET | BPF_K: return the constant (the number of bytes to keep)


class _Instruction(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_Instruction))]


_DROP_ALL = (_Instruction * 1)(_Instruction(_BPF_RET_K, 0, 0, 0))
_DROP_PROGRAM = _Program(1, ctypes.cast(_DROP_ALL, ctypes.POINTER(_Instruction)))
_DROP_BYTES = bytes(memoryview(_DROP_PROGRAM).cast("B"))  # struct sock_fprog, as setsockopt wants it


def drop(listener: socket.socket) -> None:
    """Drop every packet that reaches ``listener`` (on a listening socket: every SYN), silently."""
    listener.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, _DROP_BYTES)


def allow(listener: socket.socket) -> None:
    """Remove the filter (a listener without one is left as it is)."""
    try:
        listener.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
    except OSError as exc:
        if exc.errno != errno.ENOENT:  # ENOENT: no filter was attached
            raise


def set_open(listener: socket.socket, is_open: bool) -> None:
    (allow if is_open else drop)(listener)
