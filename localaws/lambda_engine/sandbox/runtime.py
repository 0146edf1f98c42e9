"""Guarantee 2, interpreter and packages: only what Lambda's Python runtime ships is importable.

Lambda's Python runtime has the standard library, the runtime interface client and boto3/botocore with
their dependencies in ``/var/runtime`` (``LAMBDA_RUNTIME_DIR``, the default ``PYTHONPATH``); a
function adds its code (``/var/task``), its layers (``/opt/python``) and its own ``PYTHONPATH``.
Here:

- ``/var/lang`` is this machine's base interpreter (the prefix of ``sys.base_prefix``), its
  site-packages masked empty, so nothing the server's virtualenv or the host's Python has installed
  is importable: a handler importing numpy, torch or requests without bundling them fails init with
  ``Runtime.ImportModuleError``, as on AWS;
- ``/var/runtime`` holds a copy (hard links) of exactly the distributions ``awslambdaric`` and
  ``boto3`` need, found from their metadata, and ``bootstrap.py``, which sets ``sys.path`` in AWS's
  order and starts the runtime client;
- the environment variables are AWS's and nothing from the host:
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime

Honest gap: the interpreter is this machine's Python (``INIT_START`` says which when the function's
``Runtime`` or architecture differs).
"""

from __future__ import annotations

import compileall
import hashlib
import importlib.metadata
import logging
import os
import platform
import re
import shutil
import sys
import tempfile
from pathlib import Path

from localaws.lambda_engine.sandbox.filesystem import LANG_DIR, OPT_DIR, RUNTIME_DIR, TASK_ROOT
from localaws.lambda_engine.sandbox.identity import HOME

log = logging.getLogger(__name__)

ROOTS = ("awslambdaric", "boto3")  # what Lambda's Python runtime ships beside the standard library
VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
PYTHON = f"{LANG_DIR}/bin/python{VERSION}"
BUILTIN_CLIENT = "localaws_bootstrap.py"

BOOTSTRAP = '''"""Start the runtime client with sys.path in Lambda's order (written by localaws)."""
import os
import sys

VERSION = "python%d.%d" % sys.version_info[:2]
paths = [os.environ["LAMBDA_TASK_ROOT"], "/opt/python/lib/%s/site-packages" % VERSION, "/opt/python"]
for path in sys.path:  # then this folder (/var/runtime), PYTHONPATH and the standard library
    if path not in paths:
        paths.append(path)
sys.path[:] = paths
handler = os.environ["_HANDLER"]
if os.environ.get("LOCALAWS_BUILTIN_CLIENT"):
    sys.argv = [sys.argv[0], handler]
    import localaws_bootstrap
    localaws_bootstrap.main()
else:
    from awslambdaric.__main__ import main
    main([sys.argv[0], handler])
'''


def _requirements(dist: importlib.metadata.Distribution) -> list[str]:
    names = []
    for requirement in dist.requires or []:
        spec, _, marker = requirement.partition(";")
        if "extra ==" in marker:
            continue
        if marker.strip() and not _marker_holds(marker):
            continue
        names.append(re.split(r"[<>=!~\[ (]", spec.strip(), maxsplit=1)[0])
    return names


def _marker_holds(marker: str) -> bool:
    try:
        from packaging.markers import Marker
    except ImportError:  # without packaging, keep the dependency (a copy too many is harmless)
        return True
    return Marker(marker).evaluate()


def distributions(roots: tuple[str, ...] = ROOTS) -> list[importlib.metadata.Distribution]:
    """``roots`` and everything they require, as installed for this interpreter."""
    seen: dict[str, importlib.metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            if name in roots:
                raise
            continue  # an optional dependency that is not installed
        seen[key] = dist
        todo += _requirements(dist)
    return sorted(seen.values(), key=lambda d: d.metadata["Name"].lower())


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def build_runtime_dir(parent: Path, builtin_client: Path) -> Path:
    """``parent/<key>``: the runtime's packages and bootstrap, built once per set of versions."""
    dists = distributions()
    key = hashlib.sha256(
        repr(
            [(d.metadata["Name"], d.version) for d in dists] + [BOOTSTRAP, builtin_client.read_bytes()]
        ).encode()
    ).hexdigest()[:16]
    target = Path(parent) / key
    if target.is_dir():
        return target
    Path(parent).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the sandbox user must read it
    try:
        for dist in dists:
            for file in dist.files or []:
                source = Path(dist.locate_file(file))
                if source.is_file() and "__pycache__" not in file.parts and not str(file).startswith(".."):
                    _link_or_copy(source, staging / file)
        (staging / "bootstrap.py").write_text(BOOTSTRAP)
        shutil.copy2(builtin_client, staging / BUILTIN_CLIENT)
        # Bytecode, as Lambda's /var/runtime ships it: the folder is read-only in the sandbox, so without it
        # every cold start would compile awslambdaric and boto3 again.
        compileall.compile_dir(staging, quiet=1, workers=1)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("runtime folder %s: %s", target, ", ".join(f"{d.metadata['Name']} {d.version}" for d in dists))
    return target


def lang_prefix() -> Path:
    return Path(sys.base_prefix)


def lang_masks(prefix: Path | None = None) -> list[str]:
    """Folders under the interpreter's prefix that hold installed packages (masked empty)."""
    prefix = prefix or lang_prefix()
    candidates = [
        f"lib/python{VERSION}/site-packages",
        f"lib/python{VERSION}/dist-packages",
        "lib/python3/dist-packages",
        f"local/lib/python{VERSION}/dist-packages",
        f"local/lib/python{VERSION}/site-packages",
    ]
    return [c for c in candidates if (prefix / c).is_dir()]


def interpreter_available() -> str | None:
    """Why this machine's base interpreter cannot run in the sandbox, or None if it can."""
    if not (lang_prefix() / "bin" / f"python{VERSION}").exists():
        return f"there is no {lang_prefix()}/bin/python{VERSION} to mount as /var/lang"
    return None


COMMAND = [PYTHON, f"{RUNTIME_DIR}/bootstrap.py"]


def variables(spec_runtime: str, user: dict[str, str], *, builtin: bool) -> dict[str, str]:
    """The environment as Lambda sets it for a Python function (``user`` = the function's variables)."""
    runtime = spec_runtime if spec_runtime.startswith("python") else f"python{VERSION}"
    base = {
        "PATH": f"{LANG_DIR}/bin:/usr/local/bin:/usr/bin/:/bin:{OPT_DIR}/bin",
        "LD_LIBRARY_PATH": (
            f"{LANG_DIR}/lib:/lib64:/usr/lib64:{RUNTIME_DIR}:{RUNTIME_DIR}/lib:{TASK_ROOT}:{TASK_ROOT}/lib:{OPT_DIR}/lib"
        ),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": HOME,
        "PYTHONPATH": RUNTIME_DIR,
        "LAMBDA_TASK_ROOT": TASK_ROOT,
        "LAMBDA_RUNTIME_DIR": RUNTIME_DIR,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
    }
    merged = {**base, **user}  # PATH, LD_LIBRARY_PATH, PYTHONPATH, LANG, TZ... are the function's to change
    if builtin:
        merged["LOCALAWS_BUILTIN_CLIENT"] = "1"
    return merged


def describe_interpreter(spec_runtime: str, architectures: list[str]) -> str | None:
    """A sentence when the function asks for another Python or architecture than what runs it."""
    wanted = spec_runtime.removeprefix("python")
    machine = platform.machine()
    arch = (architectures or ["x86_64"])[0]
    host_arch = {"aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    differences = []
    if spec_runtime.startswith("python") and wanted != VERSION:
        differences.append(f"Python {wanted}")
    if arch != host_arch:
        differences.append(arch)
    if not differences:
        return None
    return (
        f"the function asks for {' on '.join(differences)}; this machine's CPython {platform.python_version()} "
        f"{host_arch} runs it"
    )
