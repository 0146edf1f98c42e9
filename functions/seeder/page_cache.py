"""The seeder's page-cache work: drop files' pages with ``posix_fadvise(POSIX_FADV_DONTNEED)`` and count
what a file has cached with ``mincore(2)``, which faults nothing in (see ``app``'s ``evict`` action).

The kernel drops only pages that no process maps, and answers ``mincore`` for a file's cached pages
only to its owner or to a caller that may write it; what cannot be counted is said, not guessed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import mmap
import os
import stat
import time
from pathlib import Path

log = logging.getLogger(__name__)

_LIBC = None
_LOW_BIT = bytes(b & 1 for b in range(256))


def _libc():
    global _LIBC
    if _LIBC is None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)  # fmt: skip
        libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
        libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte))
        _LIBC = libc
    return _LIBC


def resident_bytes(fd: int, size: int) -> int:
    """Bytes of the open file ``fd`` held in the page cache: ``mincore(2)`` on a read-only shared mapping,
    which faults nothing in. Linux answers for the file's cached pages only to its owner or to a caller
    that may write it; to anyone else it reports only the pages mapped by the caller, that is none."""
    if size == 0:
        return 0
    libc = _libc()
    address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    if address is None or address == ctypes.c_void_p(-1).value:
        raise OSError(ctypes.get_errno(), f"mmap: {os.strerror(ctypes.get_errno())}")
    try:
        pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
        vector = (ctypes.c_ubyte * pages)()
        if libc.mincore(address, size, vector) != 0:
            raise OSError(ctypes.get_errno(), f"mincore: {os.strerror(ctypes.get_errno())}")
        return min(bytes(vector).translate(_LOW_BIT).count(1) * mmap.PAGESIZE, size)
    finally:
        libc.munmap(address, size)


def _counted(fd: int, size: int, countable: bool, uncounted: list[str]) -> int:
    """``resident_bytes`` where it can answer; 0 where it cannot, with the reason kept in ``uncounted``
    (a platform whose seccomp filter refuses mmap or mincore still gets its pages dropped)."""
    if not countable or uncounted:
        return 0
    try:
        return resident_bytes(fd, size)
    except OSError as exc:
        uncounted.append(f"mincore failed ({exc})")
        return 0


def drop(roots: list[tuple[str, Path]], not_seeded: list[str]) -> dict:
    """Drop every file under each ``(name, folder)`` of ``roots`` from the page cache (see ``app``'s
    ``evict`` action); ``not_seeded`` is passed through into the answer."""
    started = time.monotonic()
    result = {
        "files": 0,
        "bytes": 0,
        "resident_before_bytes": 0,
        "resident_after_bytes": 0,
        "resident_files": 0,
    }
    result |= {"unverified_bytes": 0, "skipped_links": [], "not_seeded": not_seeded, "still_cached": {}}
    still: dict[str, int] = {}
    uncounted: list[str] = []  # why mincore could not answer, once it failed (then it is not asked again)
    for name, folder in roots:
        for directory, folders, files in os.walk(folder):  # links to folders are listed, never followed
            for entry in sorted(files) + [f for f in folders if os.path.islink(os.path.join(directory, f))]:
                path = os.path.join(directory, entry)
                rel = f"{name}/{os.path.relpath(path, folder)}"
                if os.path.islink(path):
                    result["skipped_links"].append(rel)
                    continue
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    info = os.fstat(fd)
                    if not stat.S_ISREG(info.st_mode):
                        continue
                    owned = info.st_uid == os.geteuid() or os.access(path, os.W_OK)  # mincore's rule
                    before = _counted(fd, info.st_size, owned, uncounted)
                    try:  # DONTNEED skips dirty pages: a file seeded moments ago may have some
                        os.fdatasync(fd)
                    except OSError:
                        pass  # nothing to write back where the file system refuses it
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    after = _counted(fd, info.st_size, owned, uncounted)
                    countable = owned and not uncounted
                    before, after = (before, after) if countable else (0, 0)
                finally:
                    os.close(fd)
                result["files"] += 1
                result["bytes"] += info.st_size
                result["resident_before_bytes"] += before
                result["resident_files"] += 1 if before else 0
                result["resident_after_bytes"] += after
                result["unverified_bytes"] += 0 if countable else info.st_size
                if after:
                    still[rel] = after
    result["still_cached"] = dict(sorted(still.items(), key=lambda item: -item[1])[:5])
    result["seconds"] = round(time.monotonic() - started, 3)
    notes = []
    if result["resident_after_bytes"]:
        notes.append(
            f"{result['resident_after_bytes'] / 1e6:.1f} MB stayed in the page cache: the kernel keeps the "
            "pages a live process maps (an execution environment that imported this bundle), so the next "
            "cold start still finds them there; end those environments first."
        )
    if result["unverified_bytes"]:
        why = uncounted[0] if uncounted else "mincore answers only to a file's owner or writer"
        notes.append(f"{result['unverified_bytes'] / 1e6:.1f} MB could not be counted: {why}.")
    result["note"] = " ".join(notes)
    log.info(json.dumps(result))
    return result
