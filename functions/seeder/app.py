"""Seed Amazon EFS from S3: unpack a verified archive into a new folder, then switch a pointer.

Layout on the mount (``EFS_MOUNT``, e.g. ``/mnt/ml``)::

    <name>/versions/<version>/...    one folder per content version (name: "model" or "framework")
    <name>/current -> versions/<v>   a relative symlink, replaced atomically

Actions (the event's ``action``):

- ``seed`` (``name``, ``bucket``, ``key``): stream the archive from S3, refuse any member that is not a
  plain file or folder inside the target (``..``, absolute paths, links, devices), verify every file's
  sha256 and size against the archive's ``manifest.json``, precompile its Python files (below), then
  rename the folder into place and switch ``current``. A corrupted archive, a checksum mismatch or a refused member fails with a clear
  error and leaves the previous ``current`` untouched. When ``current`` already holds the same
  manifest (known from the object's ``manifest-sha256`` metadata), nothing is downloaded.
- ``inspect``: what is on EFS: current version, all versions, manifest, files and sizes (the manifest's
  files; the generated ``__pycache__`` is counted apart), free space.
- ``clean`` (``keep``, default 1): remove all but the ``keep`` newest versions (never ``current``)
  and leftovers of interrupted seeds.
- ``evict`` (``names``, default both): drop the files of each name's ``current`` version from this
  machine's page cache (``posix_fadvise(POSIX_FADV_DONTNEED)``, no root needed), so that the next
  reader reads them from the file system again; answer files, bytes, seconds, and the bytes still
  cached before and after, counted with ``mincore(2)`` on a mapping of each file (which faults nothing
  in). The kernel drops only pages that no process maps: while an execution environment that imported
  torch from the bundle lives, its pages of ``libtorch_cpu.so`` stay, and ``resident_after_bytes``
  says so instead of pretending. On an NFS mount such as EFS, DONTNEED drops this client's cache only:
  on Lambda each execution environment reads EFS through a cache of its own, so a new environment's
  cache is cold whatever this does. Links are not followed, and a ``current`` that points outside its
  ``versions`` folder is refused. With ``copy`` (a label), the files of ``<name>/copies/<label>``.
- ``copy`` (``as``, a label such as ``cold-cache``; ``names``, default both): copy each name's
  ``current`` version to ``<name>/copies/<label>``, replacing an older copy. The copy's files are new
  files, so their pages are in nobody's mapping: a function pointed at the copy, after ``evict`` of
  it, reads every byte from the file system, whatever live environments keep of ``current``. A name
  not seeded is listed under ``not_seeded``.
  ``drop_copy`` (``as``) removes the copies again; ``clean`` removes interrupted ones.

Precompiling: before the switch, every ``.py`` of the new version is compiled with this function's own
interpreter (``sys.executable``: the python3.12 runtime the inference function shares, so the cache
tag matches), so no cold start compiles from EFS and no environment writes ``.pyc`` there. The
``.pyc`` files are ``UNCHECKED_HASH`` (PEP 552): the importer uses them without comparing the source's
mtime, which EFS does not keep reliably across clients, and the versions are immutable anyway. It runs
in this process, one file after another: ``compileall``'s workers (a ProcessPoolExecutor) need
multiprocessing's semaphores in ``/dev/shm``, which Lambda's execution environment lacks, so they fail
with ``OSError: [Errno 38] Function not implemented`` (AWS Compute Blog, "Parallel Processing in
Python with AWS Lambda":
https://aws.amazon.com/blogs/compute/parallel-processing-in-python-with-aws-lambda/). A file this
interpreter cannot compile (torch ships one test helper in 3.12-only syntax, which 3.11 refuses)
cannot be imported by it either: it is listed in the answer, not fatal. The manifest check runs before, on the
unpacked files only, so the generated ``__pycache__`` never counts against it.
"""

from __future__ import annotations

import compileall
import hashlib
import json
import logging
import os
import py_compile
import re
import shutil
import sys
import tarfile
import time
import uuid
import zlib
from pathlib import Path, PurePosixPath

import boto3
import page_cache  # beside this file (the function's code folder is on sys.path)
from botocore.exceptions import ClientError

log = logging.getLogger()
log.setLevel(logging.INFO)

EFS_MOUNT = Path(os.environ.get("EFS_MOUNT", "/mnt/ml"))
NAMES = ("model", "framework")
COPIES = "copies"  # <name>/copies/<label>: see the copy action
_LABEL = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
MANIFEST = "manifest.json"
PYCACHE = "__pycache__"
CHUNK = 1024 * 1024


class SeedError(Exception):
    """The request or the archive is wrong; the message says what and how to fix it."""


def handler(event: dict, context: object) -> dict:
    """Validate the event, then run its action (see the module docstring); bad events raise SeedError."""
    if not isinstance(event, dict):
        raise SeedError('The event must be a JSON object such as {"action": "inspect"}.')
    action = event.get("action")
    if action == "seed":
        missing = [k for k in ("name", "bucket", "key") if not event.get(k)]
        if missing:
            raise SeedError(f"A seed needs {', '.join(missing)}: send name, bucket and key.")
        return seed(event["name"], event["bucket"], event["key"])
    if action == "inspect":
        return inspect()
    if action == "clean":
        keep = event.get("keep", 1)
        if not isinstance(keep, int) or isinstance(keep, bool):
            raise SeedError(f"keep must be a whole number of versions to keep, such as 1, not {keep!r}.")
        return clean(keep)
    if action == "evict":
        return evict(_names(event), copy=_label(event["copy"]) if "copy" in event else None)
    if action == "copy":
        return copy(_label(event.get("as")), _names(event))
    if action == "drop_copy":
        return drop_copy(_label(event.get("as")))
    raise SeedError(
        f"Unknown action {action!r}: use 'seed', 'inspect', 'clean', 'evict', 'copy' or 'drop_copy'."
    )


def _names(event: dict) -> list[str]:
    """The event's ``names``: a non-empty list of NAMES, both when left out."""
    names = event.get("names", list(NAMES))
    if not isinstance(names, list) or not names or not all(n in NAMES for n in names):
        raise SeedError(
            f"names must be a list of {' and '.join(NAMES)} (or left out for both), not {names!r}."
        )
    return names


def _label(value: object) -> str:
    """A copy's label: lower-case letters, digits and dashes (it becomes a folder name)."""
    if not isinstance(value, str) or not _LABEL.fullmatch(value):
        raise SeedError(
            f"A copy needs a label of lower-case letters, digits and dashes, such as 'cold-cache', not {value!r}."
        )
    return value


def _root(name: str) -> Path:
    if name not in NAMES:
        raise SeedError(f"Unknown name {name!r}: use one of {', '.join(NAMES)}.")
    return EFS_MOUNT / name


def _current_version(root: Path) -> str | None:
    link = root / "current"
    return PurePosixPath(os.readlink(link)).name if link.is_symlink() else None


def _manifest_sha(folder: Path) -> str | None:
    try:
        return hashlib.sha256((folder / MANIFEST).read_bytes()).hexdigest()
    except OSError:
        return None


def seed(name: str, bucket: str, key: str) -> dict:
    """Unpack, verify and switch to the archive at s3://bucket/key, unless ``current`` already holds it."""
    started = time.monotonic()
    root = _root(name)
    where = f"s3://{bucket}/{key}"
    s3 = boto3.client("s3")
    head = _s3_call(s3.head_object, where, Bucket=bucket, Key=key)
    expected = head.get("Metadata", {}).get("manifest-sha256")
    previous = _current_version(root)
    if expected and previous and _manifest_sha(root / "versions" / previous) == expected:
        log.info("%s is already at %s (manifest of %s): nothing to download", name, previous, where)
        return {"status": "unchanged", "name": name, "version": previous, "previous": previous}
    versions = root / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    staging = versions / f".tmp-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    log.info("seeding %s from %s (%d bytes) into %s", name, where, head.get("ContentLength", 0), staging)
    try:
        body = _s3_call(s3.get_object, where, Bucket=bucket, Key=key)["Body"]
        hashes = _unpack(body, staging, where)
        log.info("unpacked %d files in %.1f s", len(hashes), time.monotonic() - started)
        doc = _verify(staging, hashes, name, expected, where)
        version = _manifest_sha(staging)[:16]
        final = versions / version
        if final.exists():  # the same content is already there, verified when it was seeded
            shutil.rmtree(staging)
            compiled = precompile(final) if not any(final.rglob(PYCACHE)) else _NOTHING_COMPILED
        else:
            compiled = precompile(staging)
            os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _switch(root, version)
    log.info("%s/current -> versions/%s (was %s)", name, version, previous)
    files = doc["files"]
    result = {
        "status": "unchanged" if version == previous else "seeded",
        "name": name,
        "version": version,
        "previous": previous,
        "files": len(files),
        "bytes": sum(f["size"] for f in files.values()),
        "compiled": compiled,
        "seconds": round(time.monotonic() - started, 2),
    }
    log.info(json.dumps(result))
    return result


def _s3_call(method, where: str, **kwargs) -> dict:
    try:
        return method(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") in ("403", "AccessDenied", "Forbidden"):  # no s3:ListBucket: missing is 403
            # https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html ("Permissions")
            raise SeedError(
                f"Cannot read {where} (403 Forbidden): most likely it is not uploaded yet (S3 answers 403 for a "
                "missing key when the role lacks s3:ListBucket, as the seeder's does): run 02's upload step "
                "first; if it is there, the seeder's role lacks s3:GetObject on that bucket."
            ) from exc
        raise SeedError(
            f"Cannot read {where} ({error.get('Code')}: {error.get('Message')}): upload the archive there "
            "first, and check that the seeder's role may s3:GetObject in that bucket."
        ) from exc


def _safe_path(member: tarfile.TarInfo, where: str) -> PurePosixPath:
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or not (path.parts or member.isdir()):
        raise SeedError(
            f"{where} has a member that escapes its folder: {member.name!r}. Rebuild the archive."
        )
    if not (member.isfile() or member.isdir()):
        kind = "link" if (member.issym() or member.islnk()) else "special file"
        raise SeedError(
            f"{where} has a {kind} {member.name!r} -> {member.linkname!r}: only plain files are accepted."
        )
    return path


def _unpack(body, staging: Path, where: str) -> dict[str, tuple[str, int]]:
    """Stream the archive into ``staging``; return ``{relative path: (sha256, size)}``."""
    hashes = {}
    try:
        with tarfile.open(fileobj=body, mode="r|gz") as tar:
            for member in tar:
                rel = _safe_path(member, where)
                target = staging.joinpath(*rel.parts)
                if member.isdir():  # "." included: it is the staging folder itself
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                digest, size = hashlib.sha256(), 0
                source = tar.extractfile(member)
                with open(target, "wb") as out:
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                if member.mode & 0o111:  # torch/bin/torch_shm_manager is a program
                    os.chmod(target, 0o755)
                hashes[rel.as_posix()] = (digest.hexdigest(), size)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise SeedError(f"{where} is not a readable .tar.gz ({exc}): upload it again.") from exc
    return hashes


def _verify(staging: Path, hashes: dict, name: str, expected_manifest: str | None, where: str) -> dict:
    """Check the unpacked files against manifest.json: every file listed, matching, and nothing else."""
    if MANIFEST not in hashes:
        raise SeedError(f"{where} has no {MANIFEST}: pack it with helpers.bundle.pack_folder.")
    if expected_manifest and hashes[MANIFEST][0] != expected_manifest:
        raise SeedError(f"{where}'s {MANIFEST} is not the one uploaded (sha256 differs): upload it again.")
    doc = _read_manifest(staging / MANIFEST, where)
    if doc["name"] != name:
        raise SeedError(
            f"{where} holds a {doc['name']!r} archive, not {name!r}: send the key of the {name} archive."
        )
    listed = doc["files"]
    for rel, meta in listed.items():
        got = hashes.get(rel)
        if got is None:
            raise SeedError(f"{where} lacks {rel}, which its manifest lists: rebuild the archive.")
        if got != (meta["sha256"], meta["size"]):
            raise SeedError(
                f"{where}: {rel} does not match its manifest (sha256 or size differs): corrupted, upload again."
            )
    extra = sorted(set(hashes) - set(listed) - {MANIFEST})
    if extra:
        raise SeedError(
            f"{where} holds files its manifest does not list ({', '.join(extra[:5])}): rebuild the archive."
        )
    log.info("verified %d files against %s", len(listed), MANIFEST)
    return doc


def _read_manifest(path: Path, where: str) -> dict:
    try:
        doc = json.loads(path.read_text())
        valid = (
            doc["format"] == 1
            and doc["name"] in NAMES
            and all(
                isinstance(meta["sha256"], str) and isinstance(meta["size"], int)
                for meta in doc["files"].values()
            )
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        valid = False
    if not valid:
        raise SeedError(
            f"{where}'s {MANIFEST} is not a format-1 manifest "
            '({"format": 1, "name": ..., "files": {path: {"sha256": ..., "size": ...}}}): '
            "pack the folder with helpers.bundle.pack_folder."
        )
    return doc


_NOTHING_COMPILED = {"files": 0, "failed": [], "python": sys.executable, "seconds": 0.0}


def precompile(folder: Path) -> dict:
    """Compile every .py under ``folder`` with this interpreter, single process (see the docstring)."""
    started = time.monotonic()
    sources = sorted(p for p in folder.rglob("*.py") if p.is_file())
    failed = [
        p.relative_to(folder).as_posix()
        for p in sources
        if not compileall.compile_file(
            p, quiet=2, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        )
    ]
    seconds = round(time.monotonic() - started, 2)
    log.info("compiled %d of %d Python files with %s in %.1f s", len(sources) - len(failed), len(sources),
             sys.executable, seconds)  # fmt: skip
    return {
        "files": len(sources) - len(failed),
        "failed": failed,
        "python": sys.executable,
        "seconds": seconds,
    }


def _switch(root: Path, version: str) -> None:
    """Point ``current`` at ``versions/<version>`` in one rename: readers see the old or the new."""
    temporary = root / f".current-{uuid.uuid4().hex[:12]}"
    os.symlink(f"versions/{version}", temporary)
    os.replace(temporary, root / "current")


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def inspect() -> dict:
    """Per name: current version, versions, manifest, files with sizes and bytes; the mount's free space."""
    report = {}
    for name in NAMES:
        root = EFS_MOUNT / name
        versions = (
            sorted(p.name for p in (root / "versions").glob("*") if p.is_dir()) if root.exists() else []
        )
        current = _current_version(root)
        entry = {"current": current, "versions": [v for v in versions if not v.startswith(".tmp-")]}
        if current:
            folder = root / "versions" / current
            entry["manifest"] = json.loads((folder / MANIFEST).read_text())
            files = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST]
            entry["files"] = {
                p.relative_to(folder).as_posix(): p.stat().st_size for p in files if PYCACHE not in p.parts
            }
            entry["bytes"] = sum(entry["files"].values())
            entry["compiled_files"] = sum(1 for p in files if PYCACHE in p.parts)
        report[name] = entry
    usage = shutil.disk_usage(EFS_MOUNT) if EFS_MOUNT.exists() else None
    report["free_bytes"] = usage.free if usage else None
    return report


def clean(keep: int = 1) -> dict:
    """Keep ``current`` and the ``keep - 1`` newest other versions; remove the rest and any leftovers."""
    if keep < 1:
        raise SeedError(f"keep must be at least 1 (the current version), not {keep}.")
    removed = []
    for name in NAMES:
        versions = EFS_MOUNT / name / "versions"
        if not versions.exists():
            continue
        current = _current_version(EFS_MOUNT / name)
        for leftover in versions.glob(".tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)
            removed.append(f"{name}/versions/{leftover.name}")
        for pointer in (EFS_MOUNT / name).glob(".current-*"):  # a switch interrupted before its rename
            pointer.unlink()
            removed.append(f"{name}/{pointer.name}")
        for leftover in (EFS_MOUNT / name / COPIES).glob(".tmp-*"):  # a copy interrupted
            shutil.rmtree(leftover, ignore_errors=True)
            removed.append(f"{name}/{COPIES}/{leftover.name}")
        others = sorted(
            (p for p in versions.iterdir() if p.is_dir() and p.name != current),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in others[keep - 1 :]:
            shutil.rmtree(old)
            removed.append(f"{name}/versions/{old.name}")
    log.info("removed %s", ", ".join(removed) or "nothing")
    return {"removed": removed}


def _current_folder(name: str) -> Path | None:
    """``<name>/versions/<v>`` that ``current`` points at (None when not seeded); SeedError when it points
    anywhere else, so that nothing outside the seeder's own folders is touched."""
    root = _root(name)
    link = root / "current"
    if not link.is_symlink():
        return None
    target = (root / os.readlink(link)).resolve()
    if target.parent != (root / "versions").resolve() or not target.is_dir():
        raise SeedError(
            f"{name}/current points outside {name}/versions ({os.readlink(link)!r}): seed {name} again."
        )
    return target


def copy(label: str, names: list[str] | tuple[str, ...] = NAMES) -> dict:
    """Copy each name's ``current`` version to ``<name>/copies/<label>`` (new files: pages no process
    maps), replacing an older copy once the new one is complete; answer each copy's path and bytes, and
    under ``not_seeded`` the names that have no ``current`` to copy."""
    result: dict = {"not_seeded": []}
    for name in names:
        source = _current_folder(name)
        if source is None:
            result["not_seeded"].append(name)
            continue
        copies = _root(name) / COPIES
        copies.mkdir(exist_ok=True)
        staging = copies / f".tmp-{label}-{uuid.uuid4().hex[:8]}"
        try:
            shutil.copytree(source, staging, symlinks=True)  # links copied as links, never followed
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            reason = exc.strerror or str(exc)
            raise SeedError(
                f"Could not copy {name} to {name}/{COPIES}/{label}: {reason}. The copy needs as much free "
                "space as the current version ('inspect' shows both); free some, then retry."
            ) from exc
        target = copies / label
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        result[name] = {"path": f"{name}/{COPIES}/{label}", "bytes": _size(target)}
    log.info("copied %s", result)
    return result


def drop_copy(label: str) -> dict:
    """Remove every ``<name>/copies/<label>``; answer what was removed."""
    removed = []
    for name in NAMES:
        target = _root(name) / COPIES / label
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
            removed.append(f"{name}/{COPIES}/{label}")
    return {"removed": removed}


def _copy_folder(name: str, label: str) -> Path | None:
    target = _root(name) / COPIES / label
    return target if target.is_dir() and not target.is_symlink() else None


def evict(names: list[str] | tuple[str, ...] = NAMES, copy: str | None = None) -> dict:
    """Drop the ``current`` files of ``names`` (or those of their copy labelled ``copy``) from the page
    cache; count what was and still is cached (``page_cache.drop``)."""
    folders, not_seeded = [], []
    for name in names:
        folder = _current_folder(name) if copy is None else _copy_folder(name, copy)
        if folder is None:
            not_seeded.append(name if copy is None else f"{name}/{COPIES}/{copy}")
        else:
            folders.append((name, folder))
    return page_cache.drop(folders, not_seeded)
