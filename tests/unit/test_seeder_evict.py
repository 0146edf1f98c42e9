"""The seeder's ``evict`` action, in-process on a temporary "EFS" folder: it drops the current versions'
pages from the page cache, counts what was cached before and after with mincore, says when a live
mapping keeps pages, validates its input and touches nothing outside its folders."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SIZE = 4 * 1024 * 1024 + 123  # not a whole number of pages


@pytest.fixture
def seeder(tmp_path, monkeypatch):
    monkeypatch.setenv("EFS_MOUNT", str(tmp_path / "efs"))
    monkeypatch.syspath_prepend(str(ROOT / "functions/seeder"))  # its page_cache module
    spec = importlib.util.spec_from_file_location("seeder_evict_app", ROOT / "functions/seeder/app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seeded(efs: Path, name: str, files: dict[str, bytes], version: str = "v1") -> Path:
    """``<name>/versions/<version>`` with ``files`` and ``current`` pointing at it, as a seed leaves it."""
    folder = efs / name / "versions" / version
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    (efs / name / "current").symlink_to(f"versions/{version}")
    return folder


def cached(seeder, path: Path) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return seeder.page_cache.resident_bytes(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def _holding(path: Path) -> subprocess.Popen:
    """A process that maps every page of ``path`` until its stdin closes (a live environment's torch)."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import mmap, sys\n"
            "with open(sys.argv[1], 'rb') as fh:\n"
            "    m = mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ)\n"
            "    sum(m[i] for i in range(0, len(m), mmap.PAGESIZE))\n"  # fault every page in
            "    print('mapped', flush=True)\n"
            "    sys.stdin.read()\n",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "mapped"
    return holder


def test_evict_drops_the_current_files_from_the_page_cache_and_counts_them(seeder, tmp_path):
    efs = tmp_path / "efs"
    folder = seeded(efs, "framework", {"torch/lib/libtorch_cpu.so": os.urandom(SIZE), "a.py": b"x = 1\n"})
    seeded(efs, "model", {"efficientnet_lite0.pt": os.urandom(SIZE)})
    library = folder / "torch/lib/libtorch_cpu.so"
    library.read_bytes()
    assert cached(seeder, library) == SIZE  # just written and read: all in the page cache
    result = seeder.handler({"action": "evict"}, None)
    assert result["files"] == 3 and result["bytes"] == 2 * SIZE + 6
    assert result["resident_before_bytes"] >= SIZE and result["resident_after_bytes"] == 0
    assert result["note"] == "" and result["not_seeded"] == [] and result["seconds"] >= 0
    assert cached(seeder, library) == 0 and cached(seeder, efs / "model/current/efficientnet_lite0.pt") == 0


def test_evict_takes_only_the_names_asked_for_and_says_which_are_not_seeded(seeder, tmp_path):
    efs = tmp_path / "efs"
    seeded(efs, "model", {"efficientnet_lite0.pt": os.urandom(SIZE)})
    result = seeder.handler({"action": "evict", "names": ["framework"]}, None)
    assert result["files"] == 0 and result["not_seeded"] == ["framework"]
    assert cached(seeder, efs / "model/current/efficientnet_lite0.pt") == SIZE  # not asked: left cached


def test_pages_a_live_process_maps_stay_cached_and_the_answer_says_so(seeder, tmp_path):
    """The kernel does not drop mapped pages (an environment that imported torch keeps them)."""
    folder = seeded(tmp_path / "efs", "framework", {"torch/lib/libtorch_cpu.so": os.urandom(SIZE)})
    holder = _holding(folder / "torch/lib/libtorch_cpu.so")
    try:
        result = seeder.evict(["framework"])
        assert result["resident_after_bytes"] == SIZE
        assert result["still_cached"] == {"framework/torch/lib/libtorch_cpu.so": SIZE}
        assert "stayed in the page cache" in result["note"] and "live process maps" in result["note"]
    finally:
        holder.communicate("")
    assert seeder.evict(["framework"])["resident_after_bytes"] == 0  # the mapping is gone: dropped now


@pytest.mark.parametrize(
    "event, message",
    [
        ({"action": "evict", "names": "model"}, "names must be a list of model and framework"),
        ({"action": "evict", "names": []}, "names must be a list"),
        ({"action": "evict", "names": ["model", "../etc"]}, r"not \['model', '../etc'\]"),
    ],
)
def test_bad_evict_events_say_what_to_send(seeder, event, message):
    with pytest.raises(seeder.SeedError, match=message):
        seeder.handler(event, None)


@pytest.mark.parametrize("target", ["/etc", "../../outside", "versions/../../outside"])
def test_a_current_pointing_outside_its_versions_is_refused(seeder, tmp_path, target):
    (tmp_path / "outside").mkdir()
    (tmp_path / "efs" / "model").mkdir(parents=True)
    (tmp_path / "efs" / "model" / "current").symlink_to(target)
    with pytest.raises(seeder.SeedError, match=r"model/current points outside model/versions"):
        seeder.handler({"action": "evict", "names": ["model"]}, None)


def test_links_inside_a_version_are_listed_never_followed(seeder, tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(os.urandom(SIZE))
    (tmp_path / "elsewhere").mkdir()
    folder = seeded(tmp_path / "efs", "model", {"efficientnet_lite0.pt": b"w"})
    (folder / "link.bin").symlink_to(outside)
    (folder / "linked-folder").symlink_to(tmp_path / "elsewhere")
    result = seeder.evict(["model"])
    assert sorted(result["skipped_links"]) == ["model/link.bin", "model/linked-folder"]
    assert result["files"] == 1 and cached(seeder, outside) == SIZE  # the outside file was not touched


def test_files_mincore_cannot_answer_for_are_counted_apart(seeder, tmp_path, monkeypatch):
    """mincore reports another user's read-only file as not cached whatever it holds: not trusted."""
    seeded(tmp_path / "efs", "model", {"efficientnet_lite0.pt": os.urandom(SIZE)})
    monkeypatch.setattr(seeder.os, "geteuid", lambda: 4242)
    monkeypatch.setattr(seeder.os, "access", lambda *args, **kwargs: False)
    result = seeder.evict(["model"])
    assert result["unverified_bytes"] == SIZE and result["resident_before_bytes"] == 0
    assert "could not be counted" in result["note"]


def test_where_mincore_is_refused_the_pages_are_still_dropped_and_the_answer_says_why(
    seeder, tmp_path, monkeypatch
):
    folder = seeded(tmp_path / "efs", "model", {"efficientnet_lite0.pt": os.urandom(SIZE), "b.json": b"[]"})
    calls = []

    def refused(fd, size):
        calls.append(fd)
        raise OSError(1, "Operation not permitted")

    with monkeypatch.context() as patch:
        patch.setattr(seeder.page_cache, "resident_bytes", refused)
        result = seeder.evict(["model"])
    assert len(calls) == 1  # asked once, not once per file
    assert result["unverified_bytes"] == SIZE + 2 and result["resident_after_bytes"] == 0
    assert "could not be counted: mincore failed ([Errno 1] Operation not permitted)" in result["note"]
    assert cached(seeder, folder / "efficientnet_lite0.pt") == 0  # dropped all the same


def test_a_copy_of_current_can_be_evicted_whole_while_current_stays_mapped(seeder, tmp_path):
    """The cold-cache scenario's way around live mappings: a copy is new files, mapped by nobody."""
    efs = tmp_path / "efs"
    library = "torch/lib/libtorch_cpu.so"
    folder = seeded(efs, "framework", {library: os.urandom(SIZE), "torch/__init__.py": b"x = 1\n"})
    seeded(efs, "model", {"efficientnet_lite0.pt": os.urandom(SIZE)})
    holder = _holding(folder / library)
    try:
        copied = seeder.handler({"action": "copy", "as": "cold-cache"}, None)
        assert copied["framework"] == {"path": "framework/copies/cold-cache", "bytes": SIZE + 6}
        assert copied["model"]["path"] == "model/copies/cold-cache"
        copy = efs / "framework/copies/cold-cache"
        assert (copy / library).read_bytes() == (folder / library).read_bytes()
        assert os.stat(copy / library).st_ino != os.stat(folder / library).st_ino  # new files
        assert seeder.evict(["framework"])["resident_after_bytes"] == SIZE  # current: kept by the mapping
        result = seeder.handler({"action": "evict", "copy": "cold-cache"}, None)
        assert result["files"] == 3 and result["resident_after_bytes"] == 0 and result["not_seeded"] == []
        assert cached(seeder, copy / library) == 0
    finally:
        holder.communicate("")
    again = seeder.copy("cold-cache", ["model"])  # a second copy replaces the first
    assert again["model"]["bytes"] == SIZE and sorted(os.listdir(efs / "model/copies")) == ["cold-cache"]
    assert seeder.handler({"action": "drop_copy", "as": "cold-cache"}, None)["removed"] == [
        "model/copies/cold-cache",
        "framework/copies/cold-cache",
    ]
    assert not (efs / "framework/copies/cold-cache").exists() and (folder / library).is_file()
    assert seeder.evict(copy="cold-cache")["not_seeded"] == [
        "model/copies/cold-cache",
        "framework/copies/cold-cache",
    ]


def test_a_copy_that_fails_leaves_no_partial_copy_and_says_how_to_fix_it(seeder, tmp_path, monkeypatch):
    efs = tmp_path / "efs"
    seeded(efs, "model", {"efficientnet_lite0.pt": os.urandom(SIZE)})
    seeder.copy("cold-cache", ["model"])
    real = seeder.shutil.copytree

    def full_disk(src, dst, **kwargs):
        real(src, dst, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(seeder.shutil, "copytree", full_disk)
    with pytest.raises(
        seeder.SeedError, match=r"No space left on device\. The copy needs as much free space"
    ):
        seeder.copy("cold-cache", ["model"])
    assert os.listdir(efs / "model/copies") == ["cold-cache"]  # the older copy stays, no staging left
    monkeypatch.setattr(seeder.shutil, "copytree", real)
    assert seeder.copy("cold-cache") == {
        "not_seeded": ["framework"],
        "model": {"path": "model/copies/cold-cache", "bytes": SIZE},
    }


@pytest.mark.parametrize(
    "event",
    [
        {"action": "copy"},
        {"action": "copy", "as": "../versions"},
        {"action": "copy", "as": "Cold Cache"},
        {"action": "drop_copy", "as": ""},
        {"action": "evict", "copy": "a/b"},
    ],
)
def test_a_copy_label_must_be_a_plain_folder_name(seeder, event):
    with pytest.raises(seeder.SeedError, match="a label of lower-case letters, digits and dashes"):
        seeder.handler(event, None)
