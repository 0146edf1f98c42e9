"""Task roots: each function zip extracted once under ``<state>/lambda/code/<sha256>``, shared by its environments.

Extraction is :func:`.unzip.extract`: never through a link, in a thread confined to the new folder as an
unprivileged user, into a staging folder renamed into place only when complete, so a zip that cannot be
unzipped leaves nothing behind and answers ``InvalidZipFileException`` (502, "Lambda could not unzip the
deployment package": https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html), never a half-extracted
code folder. Links are kept, as Lambda keeps them, where the sandbox gives each function a root of its
own (``outside_links=True``); on the fallback (host processes) the links that lead out of the task root
are left out, a folder reused from a sandboxed run included, and :func:`left_out_note` says so in
``INIT_START``.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from localaws.lambda_engine import unzip
from localaws.lambda_engine.errors import LambdaServiceError
from localaws.lambda_engine.keyed_locks import KeyedLocks
from localaws.lambda_engine.sandbox import beneath

log = logging.getLogger(__name__)

LEFT_OUT = ".links-left-out"  # beside a task root: the links the fallback left out of it, one a line


def _unzip_failed(what: str, exc: Exception) -> LambdaServiceError:
    detail = exc.detail if isinstance(exc, unzip.UnzipError) else f"{type(exc).__name__}: {exc}"
    log.warning("could not unzip %s: %s", what, detail)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):  # the disk, not the zip
        reason = os.strerror(exc.errno)
        return LambdaServiceError(
            500, "ServiceException", f"The Lambda service encountered an internal error: {reason}."
        )
    return LambdaServiceError(
        502, "InvalidZipFileException", "Lambda could not unzip the deployment package."
    )


def _staged(root: Path, prefix: str, target: Path, fill) -> list[str]:
    """Fill a staging folder under ``root`` and rename it to ``target``; nothing is left on failure."""
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    staging.chmod(0o755)  # mkdtemp makes it private; the function's user must read its code
    try:
        result = fill(staging)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


def _links_leaving(folder: Path) -> list[list[str]]:
    """The links under ``folder`` that resolve outside it (checked by :meth:`.beneath.Tree.leaves_root`)."""
    found = []
    with beneath.Tree(folder) as tree:
        for here, dirs, files in os.walk(folder):
            relative = Path(here).relative_to(folder).parts
            for name in dirs + files:
                if os.path.islink(os.path.join(here, name)) and tree.leaves_root([*relative, name]):
                    found.append([*relative, name])
    return found


def _record_left_out(target: Path, left_out: list[str]) -> None:
    marker = target.with_name(target.name + LEFT_OUT)
    marker.write_text("".join(f"{name}\n" for name in left_out))
    if left_out:
        log.warning(
            "%s: links leading out of the task root left out (no sandbox): %s",
            target.name,
            ", ".join(left_out),
        )


def left_out_note(task_root: Path) -> list[str]:
    """The INIT_START note naming the links the fallback left out of ``task_root`` (none: [])."""
    marker = Path(task_root).with_name(Path(task_root).name + LEFT_OUT)
    names = marker.read_text().split() if marker.exists() else []
    if not names:
        return []
    return [f"links leading out of /var/task left out without the sandbox: {', '.join(names[:5])}"]


class CodeCache:
    """Extracts a zip the first time its hash is seen; later calls return the same folder.

    ``outside_links``: keep links that lead out of the task root (the sandbox); False on the fallback."""

    def __init__(self, root: Path, *, outside_links: bool = True):
        self.root = Path(root)
        self.outside_links = outside_links
        self._locks = KeyedLocks()  # one per hash: extracting one zip never holds up another's
        self._checked: set[str] = set()

    def task_root(self, code_sha256: str, code_bytes: bytes) -> Path:
        target = self.root / code_sha256
        if target.is_dir() and (self.outside_links or code_sha256 in self._checked):
            return target
        with self._locks.hold(code_sha256):
            if target.is_dir():
                if not self.outside_links and code_sha256 not in self._checked:
                    self._neutralise(target)
                    self._checked.add(code_sha256)
                return target
            try:
                left_out = _staged(
                    self.root,
                    ".extract-",
                    target,
                    lambda staging: unzip.extract(code_bytes, staging, outside_links=self.outside_links),
                )
            except (unzip.UnzipError, OSError) as exc:
                raise _unzip_failed(f"code {code_sha256[:12]}", exc) from None
            if not self.outside_links:
                _record_left_out(target, left_out)
                self._checked.add(code_sha256)
            log.info("extracted code %s into %s", code_sha256[:12], target)
        return target

    def _neutralise(self, target: Path) -> None:
        """A task root extracted with its links (by a sandboxed server): remove those leading out."""
        leaving = _links_leaving(target)
        for names in leaving:
            os.unlink(target.joinpath(*names))
        _record_left_out(target, ["/".join(names) for names in leaving])


class LayerCache:
    """``/opt`` for a list of layers: each layer's zip extracted over the previous ones, in order, as Lambda
    merges them (https://docs.aws.amazon.com/lambda/latest/dg/adding-layers.html), built once per list.
    A later layer replaces what an earlier one put in its way (a link included, never followed)."""

    def __init__(self, root: Path, code: CodeCache):
        self.root = Path(root)
        self.code = code
        self._locks = KeyedLocks()

    def opt_dir(self, layers: list[tuple[str, bytes]]) -> Path | None:
        """``layers`` = [(sha256 hex, zip bytes), ...]; None when the function has no layers."""
        if not layers:
            return None
        # "merged/": folders merged by earlier versions (which copied through links) are not reused.
        key = hashlib.sha256(("merged/" + "/".join(sha for sha, _ in layers)).encode()).hexdigest()[:32]
        target = self.root / key
        with self._locks.hold(key):
            if target.is_dir():
                return target
            zips = [data for _, data in layers]
            try:
                _staged(
                    self.root,
                    ".merge-",
                    target,
                    lambda staging: unzip.extract(
                        zips, staging, outside_links=self.code.outside_links, replace=True
                    ),
                )
            except (unzip.UnzipError, OSError) as exc:
                raise _unzip_failed(f"layers {key[:12]}", exc) from None
        return target
