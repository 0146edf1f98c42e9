"""Function zips are deterministic and hold only the function's source."""

from __future__ import annotations

import io
import os
import zipfile

from helpers.functions import build_zip


def make_source(root):
    (root / "pkg").mkdir(parents=True)
    (root / "app.py").write_text("def handler(event, context):\n    return event\n")
    (root / "pkg" / "util.py").write_text("X = 1\n")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"junk")
    return root


def test_the_same_source_gives_the_same_bytes_whatever_the_file_times(tmp_path):
    src = make_source(tmp_path / "fn")
    first = build_zip("fn", src)
    os.utime(src / "app.py", (1, 1))
    assert build_zip("fn", src).sha256 == first.sha256


def test_a_change_in_the_source_changes_the_key(tmp_path):
    src = make_source(tmp_path / "fn")
    before = build_zip("fn", src)
    (src / "app.py").write_text("def handler(event, context):\n    return 1\n")
    after = build_zip("fn", src)
    assert before.key != after.key and after.key.startswith("functions/fn-")


def test_the_zip_holds_the_source_tree_without_bytecode(tmp_path):
    bundle = build_zip("fn", make_source(tmp_path / "fn"))
    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        assert sorted(archive.namelist()) == ["app.py", "pkg/util.py"]
        assert all((info.external_attr >> 16) & 0o777 == 0o644 for info in archive.infolist())
