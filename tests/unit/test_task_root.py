"""localaws.lambda_engine.task_root: extraction outcomes the API cannot reach (a zip that got past it, a
task root reused by a server without the sandbox)."""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile

import pytest

from localaws.lambda_engine.errors import LambdaServiceError
from localaws.lambda_engine.task_root import CodeCache, LayerCache, left_out_note


def _zip(files: dict[str, str], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system, info.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def test_a_zip_that_cannot_be_unzipped_is_invalid_zip_file_and_leaves_no_folder(tmp_path):
    data = _zip({"a": "file", "a/b": "under it"})
    sha = hashlib.sha256(data).hexdigest()
    with pytest.raises(LambdaServiceError) as caught:
        CodeCache(tmp_path).task_root(sha, data)
    assert (caught.value.status, caught.value.error_type) == (502, "InvalidZipFileException")
    assert list(tmp_path.iterdir()) == [], "no code folder, whole or in part"


def test_a_task_root_extracted_with_the_sandbox_loses_its_outside_links_without_it(tmp_path):
    data = _zip({"app.py": "x = 1\n"}, {"passwd": "/etc/passwd", "up": "../../x", "app-link": "app.py"})
    sha = hashlib.sha256(data).hexdigest()
    kept = CodeCache(tmp_path).task_root(sha, data)
    assert (kept / "passwd").is_symlink() and left_out_note(kept) == []
    reused = CodeCache(tmp_path, outside_links=False).task_root(sha, data)
    assert reused == kept
    assert sorted(p.name for p in reused.iterdir()) == ["app-link", "app.py"]
    (note,) = left_out_note(reused)  # the order os.walk lists them in
    assert note.startswith("links leading out of /var/task left out without the sandbox: ")
    assert sorted(note.rsplit(": ", 1)[1].split(", ")) == ["passwd", "up"]


def test_layers_merge_in_order_and_a_later_one_replaces_a_link(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    first = _zip({"python/a.py": "A = 1\n"}, {"data": str(outside)})
    second = _zip({"data/b.txt": "b", "python/a.py": "A = 2\n"})
    layers = [(hashlib.sha256(z).hexdigest(), z) for z in (first, second)]
    opt = LayerCache(tmp_path / "opt", CodeCache(tmp_path / "code")).opt_dir(layers)
    assert (opt / "python" / "a.py").read_text() == "A = 2\n"
    assert not (opt / "data").is_symlink() and (opt / "data" / "b.txt").read_text() == "b"
    assert list(outside.iterdir()) == []
