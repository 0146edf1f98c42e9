"""Folders inside a root, reached and written without ever following a link out of it.

Everything a tenant controls on disk (an EFS file system that functions write to, a function zip, a
layer, a SageMaker model archive) may hold symbolic links, and a link resolved by the server would lead
it onto the host: an access point whose path is ``/escape`` where a function created ``escape -> /``, or
the public proof of concept of CVE-2025-4517, whose chain of links defeats the spelling checks of
``tarfile``'s ``data`` filter (which resolve with ``os.path.realpath``, bounded by PATH_MAX) on this
machine's Python 3.11.7. So nothing here resolves a path as a string:

- :func:`open_dir` walks one component at a time from the root's file descriptor with ``O_NOFOLLOW``
  and ``O_DIRECTORY`` (a link, or anything that is not a directory, ends the walk with an error);
  the sandbox then mounts the descriptor it opened (``/proc/self/fd/N``), so what is mounted is what
  was checked, whatever is renamed meanwhile; :func:`make_dirs` creates a missing access point folder
  the same way (``mkdir`` under the parent's descriptor, ownership and mode set on the new folder's own
  descriptor), as EFS creates an access point's root directory from its ``CreationInfo``
  (https://docs.aws.amazon.com/efs/latest/ug/efs-access-points.html#creating-access-points);
- :class:`Tree` writes an archive's entries under a root: every parent reached by the same walk, every
  file created with ``O_CREAT | O_EXCL | O_NOFOLLOW``, links created as links and never followed;
- :meth:`Tree.leaves_root` resolves a link as the kernel would (reading each link on the way, through
  the directories' descriptors, up to the kernel's 40 links), not by its spelling, and says whether it
  lands outside the root.

Components are plain names: an empty one, ``.`` or ``..`` is refused (:func:`parts`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

O_PATH = getattr(os, "O_PATH", 0)
_WALK = O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_LINKS = 40  # the kernel's MAXSYMLINKS: more links than this in one resolution is ELOOP
_KEEP = 128  # folder descriptors a Tree keeps open between members


def parts(relative: str) -> list[str]:
    """``"ml/model"`` -> ``["ml", "model"]``; ValueError for ``.``, ``..`` or an empty component."""
    names = [p for p in relative.strip("/").split("/")] if relative.strip("/") else []
    bad = [p for p in names if p in ("", ".", "..") or "\x00" in p]
    if bad:
        raise ValueError(f"{relative!r} holds a component that is not a plain name")
    return names


def open_dir(root: str | Path, names: Iterable[str], *, flags: int = _WALK) -> int:
    """A descriptor of ``root/names...``, every component a real directory (OSError otherwise:
    ENOTDIR or ELOOP where one is a link). The caller closes it."""
    fd = os.open(root, flags)
    try:
        for name in names:
            parent, fd = fd, -1
            try:
                fd = os.open(name, flags, dir_fd=parent)
            finally:
                os.close(parent)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
    return fd


def make_dirs(root: str | Path, names: list[str], *, owner: tuple[int, int] | None, mode: int | None) -> bool:
    """Create what is missing of ``root/names...`` without following a link; the last folder, when this
    call creates it, gets ``owner`` and ``mode`` (where this process may set them). True if it created it."""
    fd = os.open(root, _WALK)
    created = False
    try:
        for index, name in enumerate(names):
            last = index == len(names) - 1
            try:
                child = os.open(name, _WALK, dir_fd=fd)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):  # another environment created it first
                    os.mkdir(name, 0o755, dir_fd=fd)
                    created = last
                child = os.open(name, _OPEN_DIR if created else _WALK, dir_fd=fd)
                if created:
                    with contextlib.suppress(OSError):  # a server that is not root keeps its own
                        if owner is not None:
                            os.fchown(child, *owner)
                        if mode is not None:
                            os.fchmod(child, mode)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)
    return created


def _kind(name: str, dir_fd: int) -> int | None:
    try:
        return stat.S_IFMT(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return None


class TreeError(OSError):
    """An entry cannot be written without following a link or replacing a folder."""


class Tree:
    """Writes entries under ``root`` (an existing, empty folder) without following any link.

    ``replace``: a later entry replaces what stands in its way (a file or link where a folder is needed,
    a folder where a file goes), as a later Lambda layer overrides an earlier one; otherwise that is a
    :class:`TreeError`. A file or link replaces a file or link of the same name in both modes."""

    def __init__(self, root: str | Path, *, replace: bool = False):
        self.root_fd = os.open(root, _OPEN_DIR)
        self.replace = replace
        self._dirs: dict[tuple[str, ...], int] = {}  # descriptors of the folders reached so far

    def close(self) -> None:
        self._forget()
        os.close(self.root_fd)

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _forget(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()

    def _clear(self, names: list[str], dir_fd: int, *, keep_dirs: bool) -> None:
        """Make room for ``names``: remove a file or link there; a folder only in ``replace`` mode."""
        name = names[-1]
        kind = _kind(name, dir_fd)
        if kind is None or (kind == stat.S_IFDIR and keep_dirs):
            return
        if kind == stat.S_IFDIR:
            if not self.replace:
                raise TreeError(errno.EISDIR, f"{name} is a folder")
            gone = tuple(names)
            for key in [k for k in self._dirs if k[: len(gone)] == gone]:  # never reuse a removed folder's
                os.close(self._dirs.pop(key))
            shutil.rmtree(name, dir_fd=dir_fd)
        elif keep_dirs and not self.replace:  # a folder is needed where a file or a link stands
            raise TreeError(errno.ENOTDIR, f"{name} is not a folder")
        else:
            os.unlink(name, dir_fd=dir_fd)

    def _open_folder(self, names: list[str], parent: int) -> int:
        name = names[-1]
        try:
            return os.open(name, _OPEN_DIR, dir_fd=parent)
        except FileNotFoundError:
            pass
        except OSError as exc:  # ENOTDIR or ELOOP: a file or a link stands there
            if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            self._clear(names, parent, keep_dirs=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=parent)
        try:
            return os.open(name, _OPEN_DIR, dir_fd=parent)
        except OSError as exc:  # a link raced in: never followed
            raise TreeError(exc.errno or errno.ELOOP, f"{name} is not a folder") from None

    def folder(self, names: list[str]) -> int:
        """The descriptor of folder ``names`` (created as needed; owned by this Tree, do not close).

        Folders reached are kept open for the next members (at most ``_KEEP``, so a deep or wide archive
        never runs out of descriptors); a deeper path is walked with the intermediate ones closed."""
        if not names:
            return self.root_fd
        key = tuple(names)
        if key in self._dirs:
            return self._dirs[key]
        if len(self._dirs) + len(names) > _KEEP:
            self._forget()
        depth = len(names) - 1
        while depth and tuple(names[:depth]) not in self._dirs:
            depth -= 1
        parent = self._dirs[tuple(names[:depth])] if depth else self.root_fd
        keep = len(names) <= _KEEP // 2
        for index in range(depth, len(names)):
            child = self._open_folder(names[: index + 1], parent)
            if not keep and parent != self.root_fd and tuple(names[:index]) not in self._dirs:
                os.close(parent)  # an intermediate folder of a deep path: not kept
            if keep or index == len(names) - 1:
                self._dirs[tuple(names[: index + 1])] = child
            parent = child
        return parent

    def write(self, names: list[str], chunks: Iterable[bytes], mode: int = 0o644) -> None:
        parent = self.folder(names[:-1])
        try:
            fd = os.open(names[-1], _NEW_FILE, mode, dir_fd=parent)
        except FileExistsError:
            self._clear(names, parent, keep_dirs=False)
            fd = os.open(names[-1], _NEW_FILE, mode, dir_fd=parent)
        try:
            os.fchmod(fd, mode)  # whatever the umask
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def symlink(self, names: list[str], target: str) -> None:
        parent = self.folder(names[:-1])
        try:
            os.symlink(target, names[-1], dir_fd=parent)
        except FileExistsError:
            self._clear(names, parent, keep_dirs=False)
            os.symlink(target, names[-1], dir_fd=parent)

    def leaves_root(self, names: list[str]) -> bool:
        """Whether the path ``names`` (under the root), resolved as the kernel resolves it, lands outside
        the root: through an absolute link, ``..`` above it, or more than 40 links (refused as outside)."""
        pending = list(reversed(names))
        stack: list[int] = []  # descriptors of the real folders reached below the root
        hops = 0
        try:
            while pending:
                name = pending.pop()
                if name in ("", "."):
                    continue
                if name == "..":
                    if not stack:
                        return True
                    os.close(stack.pop())
                    continue
                here = stack[-1] if stack else self.root_fd
                kind = _kind(name, here)
                if kind is None:
                    return False  # dangling inside the root: it names nothing outside
                if kind == stat.S_IFLNK:
                    hops += 1
                    target = os.readlink(name, dir_fd=here)
                    if hops > MAX_LINKS or target.startswith("/"):
                        return True
                    pending.extend(reversed(target.split("/")))
                elif kind == stat.S_IFDIR:
                    stack.append(os.open(name, _WALK, dir_fd=here))
                elif pending:  # a file in the middle of a path: ENOTDIR, names nothing
                    return False
            return False
        finally:
            for fd in stack:
                os.close(fd)
