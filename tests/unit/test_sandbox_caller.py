"""Who is calling a Runtime API (localaws/lambda_engine/sandbox/caller.py): the client socket's inode
from one sock_diag query, the same as /proc/net/tcp says, and nothing for a connection that is not there."""

from __future__ import annotations

import os
import socket
import sys

import pytest

from localaws.lambda_engine.sandbox import caller

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="sock_diag and /proc are Linux's"
)


def test_the_inode_of_the_clients_end_is_found_and_owned_by_this_process():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        with socket.create_connection(listener.getsockname()) as client:
            accepted, _ = listener.accept()
            with accepted:
                inode = caller.socket_inode(accepted)
                assert inode == os.fstat(client.fileno()).st_ino
                peer, local = accepted.getpeername(), accepted.getsockname()
                assert caller._table_inode(*peer, *local) == inode
                assert caller.owned_by(inode, [os.getpid()])
                assert not caller.owned_by(inode, [])
                assert caller._diag_inode(peer[0], peer[1] % 65535 + 1, *local) is None  # no such socket
