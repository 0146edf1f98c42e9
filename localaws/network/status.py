"""Whether environments get a network of their own on this machine, and, when they cannot, the one
sentence that says what is not enforced (for ``INIT_START``, the health document and the notebooks).

Network namespaces need ``CAP_SYS_ADMIN``: a root server has it; a server that is not root has it
inside a user namespace of its own where the kernel allows unprivileged user namespaces (the sandbox's
mode for such servers). macOS, locked-down kernels and containers without either have no namespaces:
there environments share this machine's network, and nothing of what a VPC decides is enforced.
"""

from __future__ import annotations

import errno
import os

from localaws.network import netns
from localaws.network.addresses import Plan, plan

NOT_ENFORCED = (
    "environments share this machine's network: VpcConfig, route tables, VPC endpoints, NAT gateways and "
    "security groups are not enforced (every function reaches every AWS service, the internet, the server's "
    "ports and other environments' sockets), and EFS mounts are not checked against them"
)


def probe(trial: Plan | None = None) -> str | None:
    """Why a network namespace with a listener inside cannot be set up here, or None when it can.

    A forked child does what an environment's start does (a user namespace first when this process is
    not root) and exits; nothing is left behind.
    """
    if not hasattr(os, "fork") or not os.path.exists("/proc/self/ns/net"):
        return "this system has no Linux network namespaces"
    enter = netns.prepare(trial or plan(runtime_api=True))
    server_end, child_end = netns.handover()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            server_end.close()
            if os.geteuid() != 0:
                netns.enter_user_namespace()
            enter(child_end.fileno())
        except OSError as exc:
            code = exc.errno or errno.EPERM
        except BaseException:
            code = errno.EPERM
        os._exit(code)
    child_end.close()
    try:
        _, status = os.waitpid(pid, 0)
        received = (
            netns.receive(server_end, trial or plan(runtime_api=True), timeout=5.0) if status == 0 else {}
        )
    except OSError as exc:
        return f"the trial namespace sent no listeners ({exc})"
    finally:
        server_end.close()
    for sock in received.values():
        sock.close()
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return None
    why = os.strerror(code) if code > 0 else f"signal {-code}"
    if os.geteuid() == 0:
        return f"this kernel refuses a network namespace ({why})"
    return (
        f"the server does not run as root and this kernel refuses it a network namespace in a user "
        f"namespace ({why}; see /proc/sys/user/max_user_namespaces)"
    )


def describe(unavailable: str | None) -> dict:
    """The health document's ``network`` entry: what is enforced, or why not and what that means."""
    if unavailable is None:
        return {"isolated": True, "mode": "a network namespace per environment", "not_enforced": None}
    return {"isolated": False, "reason": unavailable, "not_enforced": NOT_ENFORCED}


def sentence(unavailable: str | None) -> str | None:
    """The one sentence for ``INIT_START`` and the notebooks' caveats, or None when all is enforced."""
    if unavailable is None:
        return None
    return f"Network: {NOT_ENFORCED} ({unavailable})."
