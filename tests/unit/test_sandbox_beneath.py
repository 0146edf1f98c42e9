"""localaws.lambda_engine.sandbox.beneath and .confined: folders reached, and archives written, without a
link ever leading out (the pieces under tests/local/test_isolation_*.py's end-to-end attacks)."""

from __future__ import annotations

import io
import os
import zipfile

import pytest

from localaws.lambda_engine import unzip
from localaws.lambda_engine.sandbox import beneath, confined


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


def test_open_dir_and_make_dirs_refuse_a_link_anywhere_on_the_way(root, tmp_path):
    (root / "real" / "deeper").mkdir(parents=True)
    (root / "escape").symlink_to(tmp_path)
    (root / "real" / "up").symlink_to("..")
    os.close(beneath.open_dir(root, ["real", "deeper"]))
    for names in (["escape"], ["real", "up"], ["real", "up", "real"]):
        with pytest.raises(OSError):
            os.close(beneath.open_dir(root, names))
        with pytest.raises(OSError):
            beneath.make_dirs(root, [*names, "new"], owner=None, mode=0o700)
    assert not (tmp_path / "new").exists() and not (root / "new").exists()


def test_make_dirs_gives_only_the_folder_it_creates_the_creation_info(root):
    assert beneath.make_dirs(root, ["a", "b"], owner=None, mode=0o701)
    assert oct((root / "a" / "b").stat().st_mode & 0o777) == "0o701"
    assert not beneath.make_dirs(root, ["a", "b"], owner=None, mode=0o700)  # there already: left as it is
    assert oct((root / "a" / "b").stat().st_mode & 0o777) == "0o701"


@pytest.mark.parametrize("relative", ["", ".", "..", "a/../b", "a//b", "a/./b", "a\x00b"])
def test_parts_refuses_what_is_not_a_plain_name(relative):
    if relative == "":
        assert beneath.parts(relative) == []
        return
    with pytest.raises(ValueError):
        beneath.parts(relative)


def test_leaves_root_resolves_links_as_the_kernel_does_not_by_spelling(root, tmp_path):
    with beneath.Tree(root) as tree:
        tree.write(["file.txt"], [b"x"])
        tree.symlink(["inside"], "file.txt")
        tree.symlink(["dangling"], "nothing/here")
        tree.symlink(["absolute"], str(root / "file.txt"))
        tree.symlink(["here"], ".")
        tree.symlink(["spelled-inside"], "here/here/../../" + str(tmp_path).lstrip("/"))
        tree.symlink(["loop"], "loop")
        tree.folder(["sub"])
        tree.symlink(["sub", "up"], "../..")
        verdicts = {
            name: tree.leaves_root([name])
            for name in ("inside", "dangling", "absolute", "here", "spelled-inside", "loop")
        }
        verdicts["sub/up"] = tree.leaves_root(["sub", "up"])
    assert verdicts == {
        "inside": False,
        "dangling": False,
        "absolute": True,
        "here": False,
        "spelled-inside": True,
        "loop": True,
        "sub/up": True,
    }


def test_a_tree_never_writes_through_a_link_and_replaces_one_only_when_asked(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    with beneath.Tree(root) as tree:
        tree.symlink(["data"], str(outside))
        with pytest.raises(beneath.TreeError):
            tree.write(["data", "x.txt"], [b"x"])
        tree.write(["data"], [b"a file now"])  # a file replaces a link (never written through)
    assert list(outside.iterdir()) == [] and (root / "data").read_bytes() == b"a file now"
    with beneath.Tree(root, replace=True) as tree:
        tree.symlink(["more"], str(outside))
        tree.write(["more", "x.txt"], [b"x"])
    assert list(outside.iterdir()) == [] and (root / "more" / "x.txt").read_bytes() == b"x"


def _zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def test_unzip_handles_deep_and_wide_archives_without_running_out_of_descriptors(root):
    deep = "/".join(["d"] * 300) + "/f.txt"  # deeper than the descriptors kept; shutil.rmtree still copes
    wide = {f"pkg{i % 300}/sub{i % 7}/m{i}.py": str(i) for i in range(1200)}
    before = len(os.listdir("/proc/self/fd"))
    unzip.extract(_zip({deep: "deep", **wide, "d/x.txt": "x"}), root)
    assert len(os.listdir("/proc/self/fd")) == before
    assert (root / deep).read_text() == "deep" and (root / "pkg7/sub0/m7.py").read_text() == "7"


@pytest.mark.skipif(confined.unavailable() is not None, reason=confined.unavailable() or "")
def test_confined_work_runs_as_lambdas_user_inside_its_folder_only(root, tmp_path):
    def work(where: str) -> dict:
        seen = {"root": where, "uid": os.getuid(), "listing": sorted(os.listdir("/"))}
        try:
            open(str(tmp_path / "outside.txt"), "w").close()
            seen["outside"] = "written"
        except OSError as exc:
            seen["outside"] = exc.strerror
        open("/inside.txt", "w").close()
        return seen

    (root / "existing").mkdir()
    seen = confined.run(root, work)
    assert seen == {"root": "/", "uid": 993, "listing": ["existing"], "outside": "No such file or directory"}
    assert (root / "inside.txt").stat().st_uid == 993
    assert os.getuid() == 0 and os.getcwd() != "/", "the server's own thread is untouched"
