"""Function and layer zips, checked as Lambda unzips them and extracted without leaving their folder.

Lambda unzips a deployment package or a layer when it is uploaded, and refuses one it cannot unzip
(CreateFunction, UpdateFunctionCode, PublishLayerVersion) with ``InvalidParameterValueException``
"Could not unzip uploaded file. Please check your file, then try to upload again." (the answer quoted
in many reports, for example https://github.com/boto/boto3/issues/488). :func:`check` refuses, with that
error, what cannot be unzipped onto a Linux file system: a file that is also a folder (``a`` and
``a/b``), a name component longer than 255 bytes (NAME_MAX) or a path longer than 4,096 (PATH_MAX), an
absolute name or one with ``..``, and a member whose data does not match its CRC-32 (every member is
read, in chunks, so a lying CRC is found before the function exists).

:func:`extract` writes the members with :class:`~.sandbox.beneath.Tree` (never through a link) in a
thread confined to the target folder as Lambda's sandbox user (:mod:`.sandbox.confined`). Symbolic
links (a member whose Unix mode in the zip says ``S_IFLNK``, as ``zip --symlinks`` stores them) are kept
as links, as Lambda keeps them: in the sandbox the function's root is its own, so a link to
``/etc/passwd`` reads the sandbox's file, never the host's. Without the sandbox (host processes) a link
that resolves outside the task root would lead the function onto the host's files: those links are
left out (``outside_links=False``) and listed, so the engine can say so. File modes keep the executable
bit (0755 or 0644), as Lambda keeps the zip's permissions.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from localaws.lambda_engine.sandbox import beneath, confined

NAME_MAX = 255
PATH_MAX = 4096
UNZIP_MESSAGE = "Could not unzip uploaded file. Please check your file, then try to upload again."
_CHUNK = 1 << 16


class UnzipError(ValueError):
    """The zip cannot be unzipped as Lambda unzips it; ``detail`` says why (for the server log)."""

    def __init__(self, detail: str):
        super().__init__(UNZIP_MESSAGE)
        self.detail = detail


@dataclass(frozen=True)
class Member:
    names: tuple[str, ...]
    kind: str  # "dir", "file" or "link"
    info: zipfile.ZipInfo
    mode: int = 0o644


def _kind(info: zipfile.ZipInfo) -> str:
    unix_mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_ISLNK(unix_mode):
        return "link"
    return "dir" if info.is_dir() else "file"


def members(archive: zipfile.ZipFile) -> list[Member]:
    """The zip's members in order, each checked; UnzipError for one Linux could not unzip."""
    found: list[Member] = []
    folders: set[tuple[str, ...]] = set()
    leaves: set[tuple[str, ...]] = set()
    for info in archive.infolist():
        name = info.filename
        names = tuple(p for p in name.split("/") if p not in ("", "."))
        if name.startswith("/") or ".." in names or "\x00" in name:
            raise UnzipError(f"member {name[:300]!r} names a path outside the folder")
        if any(len(p.encode()) > NAME_MAX for p in names) or len(name.encode()) > PATH_MAX:
            raise UnzipError(f"member {name[:300]!r} has a name longer than Linux allows")
        if not names:
            continue
        kind = _kind(info)
        for depth in range(1, len(names) + (kind == "dir")):
            if names[:depth] in leaves:
                raise UnzipError(f"{'/'.join(names[:depth])!r} is both a file and a folder")
            folders.add(names[:depth])
        if kind != "dir":
            if names in folders:
                raise UnzipError(f"{'/'.join(names)!r} is both a file and a folder")
            leaves.add(names)
        executable = (info.external_attr >> 16) & 0o111
        found.append(Member(names, kind, info, 0o755 if executable else 0o644))
    return found


def _chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    with archive.open(info) as stream:
        while chunk := stream.read(_CHUNK):
            yield chunk


def _link_target(archive: zipfile.ZipFile, member: Member) -> str:
    raw = archive.read(member.info)
    if not raw or len(raw) > PATH_MAX or b"\x00" in raw:
        raise UnzipError(f"link {'/'.join(member.names)!r} has no usable target")
    return raw.decode("utf-8", "surrogateescape")


def check(data: bytes) -> None:
    """UnzipError unless Lambda could unzip ``data``: a readable zip whose members fit Linux names and
    whose every member's data matches its CRC-32."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in members(archive):
                if member.kind == "link":
                    _link_target(archive, member)
                elif member.kind == "file":
                    for _ in _chunks(archive, member.info):
                        pass
    except UnzipError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        ValueError,
        EOFError,
        OSError,
    ) as exc:
        raise UnzipError(f"{type(exc).__name__}: {exc}") from None


def _write_all(
    root: str, archive: zipfile.ZipFile, found: list[Member], replace: bool, outside_links: bool
) -> list[str]:
    """In the (confined) extraction thread: write every member under ``root``; the links left out."""
    links = []
    with beneath.Tree(root, replace=replace) as tree:
        for member in found:
            names = list(member.names)
            if member.kind == "dir":
                tree.folder(names)
            elif member.kind == "file":
                tree.write(names, _chunks(archive, member.info), member.mode)
            else:
                tree.symlink(names, _link_target(archive, member))
                links.append(names)
        left_out = []
        if not outside_links:
            for names in links:
                if tree.leaves_root(names):
                    parent = tree.folder(names[:-1])
                    os.unlink(names[-1], dir_fd=parent)
                    left_out.append("/".join(names))
    return left_out


def extract(
    data: bytes | list[bytes], target: Path, *, outside_links: bool = True, replace: bool = False
) -> list[str]:
    """Unzip ``data`` (or several zips in order, later members replacing earlier ones with ``replace``)
    into ``target``, an empty folder; UnzipError if a zip cannot be unzipped, nothing written outside
    ``target`` either way. Returns the links left out (``outside_links=False``) because they lead out."""
    zips = [data] if isinstance(data, bytes) else list(data)
    try:
        archives = [zipfile.ZipFile(io.BytesIO(one)) for one in zips]
        plans = [members(archive) for archive in archives]  # names decoded here, outside the thread
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise UnzipError(f"{type(exc).__name__}: {exc}") from None

    def work(root: str) -> list[str]:
        left_out = []
        for archive, found in zip(archives, plans, strict=True):
            left_out += _write_all(root, archive, found, replace, outside_links)
        return left_out

    try:
        return confined.run(Path(target), work)
    except UnzipError:
        raise
    except (zipfile.BadZipFile, NotImplementedError, EOFError, beneath.TreeError) as exc:
        raise UnzipError(f"{type(exc).__name__}: {exc}") from None
    finally:
        for archive in archives:
            archive.close()
