"""Guarantee 6, at most 1,024 processes and threads in an execution environment, as Lambda's quota.

Lambda's quota is 1,024 processes and threads per execution environment
(https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): past it ``fork``, ``clone`` or
``pthread_create`` fails with EAGAIN (Python's ``can't start new thread``, ``BlockingIOError``).
How the sandbox enforces it, best first:

- a pids cgroup (``pids.max`` = 1024, see :mod:`.cgroups`): it counts exactly the environment's tasks;
- in user namespaces without a delegated pids controller (a server that is not root): ``RLIMIT_NPROC`` =
  1024, set before the environment's nested user namespace is created. The kernel counts RLIMIT_NPROC per
  user *and user namespace*, charging each parent namespace up to the limit in force when the namespace
  was made (user_namespaces(7), setrlimit(2)); every environment has user namespaces of its own, so the
  count is its own processes and threads, the same quota. INIT_START and the health document say so;
- as root without a pids controller: ``RLIMIT_NPROC`` = 1024 too, but the kernel then counts every
  process of the function's uid on the machine (Lambda's 993, or an access point's PosixUser), shared by
  the environments running as that uid. It still keeps a fork bomb off the host; the guarantee is named
  off, since it is not per environment.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

from localaws.lambda_engine.sandbox.cgroups import MAX_PROCESSES, Layout


@dataclass(frozen=True)
class ProcessLimit:
    """How the quota is enforced: the ``RLIMIT_NPROC`` the launcher sets (None: the pids cgroup does it),
    a sentence for the learner, and why it is off (None: it is enforced per environment)."""

    rlimit: int | None
    means: str
    off: str | None = None


def plan(layout: Layout | None, userns: bool) -> ProcessLimit:
    """The best this machine allows (``layout``: the cgroups found; ``userns``: the server is not root)."""
    if layout is not None and layout.bases and layout.pids:
        return ProcessLimit(None, f"a pids cgroup (pids.max {MAX_PROCESSES})")
    if userns:
        return ProcessLimit(
            MAX_PROCESSES,
            f"RLIMIT_NPROC {MAX_PROCESSES} in the environment's own user namespace, not a pids cgroup "
            "(the kernel counts that user's processes and threads in that namespace only)",
        )
    why = layout.off.get("pids", "no cgroup") if layout is not None else "no cgroup"
    return ProcessLimit(
        MAX_PROCESSES,
        f"RLIMIT_NPROC {MAX_PROCESSES} per uid, shared by the environments running as the same uid",
        off=f"{why}; RLIMIT_NPROC {MAX_PROCESSES} is shared by the environments running as the same uid",
    )


def apply(limit: int) -> None:
    """Child side, between fork and exec: set ``RLIMIT_NPROC`` (the Python path of the sandbox)."""
    resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
