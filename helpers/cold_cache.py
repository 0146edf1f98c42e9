"""The cold-cache scenario: forced cold starts after the framework's and the model's pages were dropped
from the page cache, set beside the ordinary (warm-cache) cold starts.

The kernel keeps every page a live process maps, and environments that imported torch from the bundle
(the provisioned one, an idle on-demand one) keep the pages of ``libtorch_cpu.so`` they touched. So
the scenario does not read ``current``: the seeder first copies the framework and the model to
``<name>/copies/cold-cache`` on the same file system (``seeding.copy``: new files, mapped by nobody),
and each round publishes a version whose ``FRAMEWORK_DIR`` and ``MODEL_DIR`` point at the copy. Before
each round the seeder runs ``posix_fadvise(POSIX_FADV_DONTNEED)`` on every file of the copy
(``seeding.evict``), so the new environment's init reads PyTorch and the weights from the file system,
as the first cold start after seeding does. Each round's version is deleted as soon as it has
answered, so its environment ends and maps nothing when the next round evicts; every record says how
many bytes stayed cached all the same (``cached_after_evict_bytes``, expected 0). The copies are
removed at the end.

What a cold start reads from the file system is measured the same way: after the round, the seeder
counts the copy's pages in the page cache (``mincore``) before dropping them again. Every one of those
pages was read by that cold start (the copy was empty of them before it), read-ahead included:
``read_bytes`` and ``read_files`` of each record, and :func:`read_per_cold_start` their median. That is
the figure the cost model uses for a cold start's EFS reads.

On Lambda every execution environment runs in a microVM of its own and environments are never shared
across functions (https://docs.aws.amazon.com/whitepapers/latest/security-overview-aws-lambda/lambda-isolation-technologies.html):
the eviction empties the seeder's cache only, and a new environment of the inference function reads
the bundle from EFS anyway. There both scenarios measure a first read; locally only this one does.
"""

from __future__ import annotations

import logging
import posixpath
import time
from collections.abc import Iterable, Mapping
from typing import Any

from helpers import seeding, stats
from helpers.bench import COLD_CACHE, INIT_PHASES, FreshVersions, Progress, record
from helpers.invoke import invoke
from helpers.seeding import SeedFailed

log = logging.getLogger(__name__)

#: The two kinds of cold start compared: the ordinary one (its files cached) and the cold-cache one.
WARM_CACHE = "cold"
#: A difference below this share of the warm-cache median is reported as none (this machine is noisy).
NOTICEABLE = 0.05
#: The label of the seeder's copies the scenario reads (``<name>/copies/cold-cache``).
COPY = "cold-cache"
#: Where the inference function finds the framework and the model (its template's defaults).
DIRECTORIES = {"FRAMEWORK_DIR": "/mnt/ml/framework/current", "MODEL_DIR": "/mnt/ml/model/current"}


def default_rounds(quick: bool, is_local: bool) -> int:
    """How many cold-cache starts 06 runs unless told: 3 locally (1 with ``WORKSHOP_QUICK``); none on AWS,
    where the scenario's copy bills one EFS read and one write of the whole bundle (a line of the README's
    cost table): set ``COLD_CACHE`` in 06 to pay for it."""
    if not is_local:
        return 0
    return 1 if quick else 3


def copy_variables(variables: Mapping[str, str], label: str = COPY) -> dict[str, str]:
    """``FRAMEWORK_DIR`` and ``MODEL_DIR`` pointed at the copies: ``.../framework/current`` becomes
    ``.../framework/copies/<label>``."""
    return {
        key: posixpath.join(posixpath.dirname(variables.get(key, default).rstrip("/")), "copies", label)
        for key, default in DIRECTORIES.items()
    }


def cold_cache_starts(
    function_name: str,
    seeder_name: str,
    rounds: int,
    payload: Any,
    progress: Progress | None = None,
    *,
    settle_s: float = 5.0,
) -> list[dict]:
    """``rounds`` forced cold starts on fresh versions that read the seeder's copies, each right after
    ``seeding.evict`` of the copies.

    Each round's version is deleted once it has answered (its environment ends with it), and the
    eviction is repeated for up to ``settle_s`` while pages stay cached: the previous round's
    environment may still be ending.
    """
    records = []
    with FreshVersions(function_name) as versions:
        seeding.copy(seeder_name, COPY)
        try:
            redirect = copy_variables(versions.variables)
            for index in range(rounds):
                version = versions.publish("cold start, cold cache", variables=redirect)
                evicted = seeding.evict(seeder_name, copy=COPY)
                deadline = time.monotonic() + settle_s
                while evicted["resident_after_bytes"] and time.monotonic() < deadline:
                    time.sleep(0.5)
                    evicted = seeding.evict(seeder_name, copy=COPY)
                if evicted["resident_after_bytes"]:
                    log.info("cold-cache start %d: %s", index, evicted["note"])
                call = invoke(function_name, payload, version, client=versions.lam)
                result = record(COLD_CACHE, index, call)
                result["evicted_bytes"] = evicted["bytes"]
                result["cached_after_evict_bytes"] = evicted["resident_after_bytes"]
                records.append(result)
                versions.retire(version)
                read = seeding.evict(seeder_name, copy=COPY)  # what this cold start brought into the cache
                result["read_bytes"] = read["resident_before_bytes"]
                result["read_files"] = read.get("resident_files")
                if progress:
                    progress.step("cold starts, cold cache")
        finally:
            try:
                seeding.drop_copy(seeder_name, COPY)
            except SeedFailed as exc:  # the records stand; the copies go with 99's file system anyway
                log.warning("the cold-cache copies stay on EFS: %s", exc)
    return records


def read_per_cold_start(records: Iterable[Mapping[str, Any]]) -> dict[str, float] | None:
    """The median bytes and files one cold-cache start read from the file system (None without any)."""
    rows = [r for r in records if r["scenario"] == COLD_CACHE and not r.get("error") and r.get("read_bytes")]
    if not rows:
        return None
    return {
        "bytes": stats.percentile([float(r["read_bytes"]) for r in rows], 50),
        "files": stats.percentile([float(r.get("read_files") or 0) for r in rows], 50),
        "n": len(rows),
    }


def _init_ms(r: Mapping[str, Any]) -> float | None:
    """The whole init: Init Duration, or the function's own total when init ran inside Duration."""
    value = r.get("init_ms") if r.get("init_ms") is not None else r.get("init_total_ms")
    return float(value) if value is not None else None


def compare(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per kind of cold start (``cold``, ``cold (cold cache)``) with successful records: n, the median
    init and the median of each init phase (ms), and the most bytes any eviction left cached."""
    out: dict[str, dict[str, Any]] = {}
    for scenario in (WARM_CACHE, COLD_CACHE):
        rows = [r for r in records if r["scenario"] == scenario and not r.get("error") and r.get("cold")]
        if not rows:
            continue
        entry: dict[str, Any] = {"n": len(rows)}
        for name, values in (
            ("init", [_init_ms(r) for r in rows]),
            *((phase, [r.get(f"init_{phase}_ms") for r in rows]) for phase in INIT_PHASES),
        ):
            known = [float(v) for v in values if v is not None]
            entry[name] = stats.percentile(known, 50) if known else None
        cached = [int(r["cached_after_evict_bytes"]) for r in rows if r.get("cached_after_evict_bytes")]
        entry["cached_after_evict_bytes"] = max(cached, default=0)
        out[scenario] = entry
    return out


def table(records: Iterable[Mapping[str, Any]]) -> str:
    """The cold-cache starts as a Markdown table: init, ``import torch``, and the MB evicted and left cached."""
    rows = [
        {
            "index": r["index"],
            "init (ms)": _init_ms(r),
            "import torch (ms)": r.get("init_import_torch_ms"),
            "evicted (MB, bytecode included)": (r.get("evicted_bytes") or 0) / 1e6,
            "read by the cold start (MB)": (r.get("read_bytes") or 0) / 1e6,
            "files read": r.get("read_files"),
            "still cached (MB)": (r.get("cached_after_evict_bytes") or 0) / 1e6,
            "error": r.get("error") or "–",
        }
        for r in records
        if r["scenario"] == COLD_CACHE
    ]
    return stats.to_markdown(rows, digits=1) if rows else "_No cold-cache starts in these records._"


def _ms(value: float) -> str:
    return f"{value:,.0f} ms"


def conclusion_line(records: Iterable[Mapping[str, Any]]) -> str | None:
    """One Markdown bullet: the cold-cache init against the warm-cache one (None without both)."""
    both = compare(records)
    warm, cold = both.get(WARM_CACHE), both.get(COLD_CACHE)
    if not (warm and cold and warm["init"] and cold["init"]):
        return None
    gap = cold["init"] - warm["init"]
    cost = (
        f"a first read of the bundle from this disk cost {_ms(gap)}"
        if gap > NOTICEABLE * warm["init"]
        else "a first read of the bundle from this disk made no difference measurable above the noise"
    )
    if cold["cached_after_evict_bytes"]:
        kept = f"{cold['cached_after_evict_bytes'] / 1e6:,.0f} MB stayed cached, mapped by environments still alive"
        cost += f" (an understatement: {kept})" if gap > NOTICEABLE * warm["init"] else f" ({kept})"
    return (
        "- **Cold page cache:** a cold start whose framework and model had first been dropped from the page "
        f"cache took {_ms(cold['init'])} to init at the median ({_torch(cold)}) against {_ms(warm['init'])} "
        f"with them cached ({_torch(warm)}): {cost}; on AWS a new environment starts in a microVM of its "
        "own, without the bundle cached, so its cold start reads it from EFS, over the network."
    )


def _torch(entry: Mapping[str, Any]) -> str:
    torch = f"; `import torch` {_ms(entry['import_torch'])}" if entry.get("import_torch") is not None else ""
    return f"n={entry['n']}{torch}"
