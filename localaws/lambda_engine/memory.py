"""Memory of an environment's process tree, read from ``/proc``: what ``Max Memory Used`` reports.

With the sandbox's memory cgroup the kernel enforces ``MemorySize``; without it the engine's watchdog
samples the tree's resident memory and ends an environment that goes above it, as Lambda would.
"""

from __future__ import annotations

import os
from pathlib import Path


def _read(path: str) -> bytes:
    """A /proc file's bytes: os.open/os.read, a third of pathlib's cost (every REPORT reads the tree's)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 1 << 16)
    finally:
        os.close(fd)


def read_kb(pid: int, field_name: str) -> int:
    """A ``/proc/<pid>/status`` field in kB (VmRSS, VmHWM), 0 if the process is gone."""
    try:
        status = _read(f"/proc/{pid}/status")
        start = status.find(f"\n{field_name}:".encode())
        if start >= 0:
            return int(status[start + len(field_name) + 2 : status.index(b"kB", start)])
    except (OSError, ValueError):
        pass
    return 0


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (via /proc/<pid>/task/*/children)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                todo.extend(int(c) for c in _read(f"/proc/{current}/task/{task}/children").split())
        except (OSError, ValueError):
            pass
    return pids


def rss_kb(pid: int) -> int:
    return sum(read_kb(p, "VmRSS") for p in tree(pid))


def peak_kb(pid: int) -> int:
    """The largest resident size each process of the tree reached, summed (an upper bound of the peak)."""
    return sum(read_kb(p, "VmHWM") for p in tree(pid))


def kill_pending(pid: int) -> bool:
    """Whether SIGKILL is pending for any process of the tree (a frozen process dies only once thawed)."""
    for member in tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith(("ShdPnd:", "SigPnd:")) and int(line.split()[1], 16) & (1 << 8):
                    return True
        except (OSError, ValueError, IndexError):
            continue
    return False
