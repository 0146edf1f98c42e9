"""Two kernels packing the same archive at once (two notebooks running 02) each write a temporary file of
their own, so neither trips over the other's rename and the result is whole (issue 23)."""

from __future__ import annotations

import os
import threading

from helpers import archives


def test_each_write_gets_its_own_temporary_name_beside_the_target(tmp_path):
    dest = tmp_path / "model.tar.gz"
    first, second = archives.partial_path(dest), archives.partial_path(dest)
    assert first != second and first.parent == second.parent == tmp_path
    assert str(os.getpid()) in first.name and first.name.endswith(".partial")


def test_concurrent_packs_of_one_folder_both_succeed_and_leave_one_whole_archive(tmp_path):
    src = tmp_path / "model"
    src.mkdir()
    for i in range(40):
        (src / f"f{i}.bin").write_bytes(os.urandom(50_000))
    dest = tmp_path / "out" / "model.tar.gz"
    expected = archives.pack_folder(src, "model", tmp_path / "alone.tar.gz").sha256
    start, errors, results = threading.Barrier(4), [], []

    def pack():
        start.wait()
        try:
            results.append(archives.pack_folder(src, "model", dest).sha256)
        except Exception as exc:  # noqa: BLE001  (any failure is the finding)
            errors.append(exc)

    threads = [threading.Thread(target=pack) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [expected] * 4
    assert archives.file_sha256(dest)[0] == expected
    assert [p.name for p in dest.parent.iterdir()] == ["model.tar.gz"]  # no temporary file left
