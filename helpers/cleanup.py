"""Delete everything the workshop created, and prove that nothing is left.

Stacks go in reverse dependency order (the function and the seeder import the storage stack's
exports). Each step runs on its own, so one failure does not hide the others, and every step is safe
to run twice. ``leftovers`` looks for anything named with the workshop's prefix, through each
service's own API rather than through CloudFormation, which could be wrong about what it deleted.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable

from botocore.exceptions import ClientError

from helpers import session, stacks
from helpers.config import Settings, load_settings

log = logging.getLogger(__name__)

# Dependants first: both import the storage stack's exports.
STACK_SUFFIXES = ("function", "seeder", "storage")


def stack_names(cfg: Settings | None = None) -> list[str]:
    cfg = cfg or load_settings()
    return [cfg.name(suffix) for suffix in STACK_SUFFIXES]


def delete_stacks(cfg: Settings | None = None, echo: Callable[[str], None] | None = print) -> dict[str, str]:
    """Delete the workshop's stacks in dependency order; return ``{stack: outcome}``."""
    outcome = {}
    for name in stack_names(cfg):
        try:
            outcome[name] = "deleted" if stacks.delete(name, echo=echo) else "not there"
        except (stacks.StackError, ClientError, TimeoutError) as exc:
            outcome[name] = f"FAILED: {exc}"
            log.warning("could not delete %s: %s", name, exc)
    return outcome


def delete_log_groups(cfg: Settings | None = None) -> list[str]:
    """Delete ``/aws/lambda/<prefix>-*`` log groups (Lambda creates some outside any stack)."""
    cfg = cfg or load_settings()
    logs = session.client("logs")
    deleted = []
    for group in _log_groups(cfg):
        try:
            logs.delete_log_group(logGroupName=group)
            deleted.append(group)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
    return deleted


def _log_groups(cfg: Settings) -> list[str]:
    pages = (
        session.client("logs")
        .get_paginator("describe_log_groups")
        .paginate(logGroupNamePrefix=f"/aws/lambda/{cfg.prefix}-")
    )
    return [g["logGroupName"] for page in pages for g in page["logGroups"]]


def leftovers(cfg: Settings | None = None) -> dict[str, list[str]]:
    """Everything that still carries the workshop's prefix, by kind. Empty lists mean clean."""
    cfg = cfg or load_settings()
    prefix = f"{cfg.prefix}-"
    cfn, s3, efs, ec2, lam = (session.client(s) for s in ("cloudformation", "s3", "efs", "ec2", "lambda"))
    live = [
        s["StackName"]
        for page in cfn.get_paginator("list_stacks").paginate()
        for s in page["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE" and s["StackName"].startswith(prefix)
    ]
    buckets = [b["Name"] for b in s3.list_buckets().get("Buckets", []) if b["Name"].startswith(prefix)]
    file_systems = [
        fs["FileSystemId"]
        for fs in efs.describe_file_systems()["FileSystems"]
        if any(t["Key"] == "Name" and t["Value"].startswith(prefix) for t in fs.get("Tags", []))
    ]
    vpcs = [
        v["VpcId"]
        for v in ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"{prefix}*"]}])["Vpcs"]
    ]
    functions = [
        f["FunctionName"]
        for page in lam.get_paginator("list_functions").paginate()
        for f in page["Functions"]
        if f["FunctionName"].startswith(prefix)
    ]
    return {
        "stacks": live,
        "buckets": buckets,
        "file systems": file_systems,
        "VPCs": vpcs,
        "functions": functions,
        "log groups": _log_groups(cfg),
    }


def stop_local(cfg: Settings | None = None) -> dict[str, bool]:
    """On the local backend: stop the server (ending every function process) and remove the state folder."""
    cfg = cfg or load_settings()
    if not cfg.is_local:
        return {}
    was_running = session.stop_local_server(cfg)
    shutil.rmtree(cfg.state_dir, ignore_errors=True)
    return {
        "server was running": was_running,
        "server running now": session.local_server_started_at(cfg) is not None,
        "state folder left": cfg.state_dir.exists(),
    }
