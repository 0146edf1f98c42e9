"""How an execution environment's process is started: in the Lambda sandbox, or as a host process.

Both paths set the variables Lambda sets for every function (name, version, memory, region, log group,
credentials; https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime)
and point the AWS SDK at this server (``AWS_ENDPOINT_URL``), so boto3 code in a handler reaches the
local AWS unchanged. The sandbox path (:mod:`.sandbox`) adds Lambda's file system, packages, identity
and limits (as root, or in unprivileged user namespaces for a server that is not root); the host path is the honest fallback: this machine's interpreter with the server's packages,
mount paths rewritten in environment variables, as root if the server is root.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from localaws.lambda_engine import mounts
from localaws.lambda_engine.function_spec import FunctionSpec
from localaws.lambda_engine.sandbox import Launch, Sandbox
from localaws.lambda_engine.sandbox.filesystem import Beneath
from localaws.lambda_engine.task_root import left_out_note

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
CLIENT_SETTING = "LOCALAWS_LAMBDA_RUNTIME_CLIENT"  # "builtin" forces the built-in runtime loop


def use_builtin_client() -> bool:
    """awslambdaric where it is installed; the built-in loop otherwise or when the setting asks for it."""
    return os.environ.get(CLIENT_SETTING) == "builtin" or importlib.util.find_spec("awslambdaric") is None


def lambda_variables(spec: FunctionSpec, url: str) -> dict[str, str]:
    """What Lambda sets for this function, whatever runs it."""
    return {
        "_HANDLER": spec.handler,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }


def sandboxed(
    sandbox: Sandbox,
    spec: FunctionSpec,
    *,
    task_root: Path,
    opt_dir: Path | None,
    efs: list[mounts.EfsMount],
    url: str,
    name: str,
) -> Launch:
    builtin = use_builtin_client()
    launch = sandbox.prepare(
        task_root=task_root,
        opt_dir=opt_dir,
        efs={m.path: Beneath(m.file_system, m.relative) if m.file_system else m.folder for m in efs},
        efs_read_only={m.path for m in efs if m.read_only},
        posix_users=[m.posix_user for m in efs],
        tmp_mb=spec.ephemeral_storage_mb,
        memory_mb=spec.memory_mb,
        runtime_name=spec.runtime,
        architectures=spec.architectures,
        user_variables=spec.variables,
        builtin=builtin,
        name=name,
    )
    launch.env.update(lambda_variables(spec, url))
    return launch


def on_host(spec: FunctionSpec, *, task_root: Path, efs: list[mounts.EfsMount], url: str) -> Launch:
    """The fallback: a host process in the task root, as the server's user, with the server's packages."""
    runtime = spec.runtime if spec.runtime.startswith("python") else "python3.12"
    env = mounts.rewrite_paths(spec.variables, efs)
    env.update(
        {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(task_root),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
        }
    )
    if "LD_LIBRARY_PATH" in os.environ:
        env.setdefault("LD_LIBRARY_PATH", os.environ["LD_LIBRARY_PATH"])
    env.update(lambda_variables(spec, url))
    if use_builtin_client():
        command = [sys.executable, str(BOOTSTRAP), spec.handler]
    else:
        command = [sys.executable, "-m", "awslambdaric", spec.handler]
    notes = ["runs on this machine's interpreter", *left_out_note(task_root)]
    return Launch(command=command, env=env, cwd=str(task_root), notes=notes)
