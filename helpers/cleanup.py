"""Delete everything the workshop created, and prove that nothing is left.

Stacks go in reverse dependency order (the function and the seeder import the storage stack's
exports), and the storage stack is deleted only once ListImports says nothing imports it any more.
Each step runs on its own, so one failure does not hide the others, and every step is safe to run
twice: a delete still in progress (a cell that timed out) is waited on again. ``leftovers`` looks for
the workshop's resources through each service's own API rather than through CloudFormation, which
could be wrong about what it deleted.

Only this prefix's resources, by exact name: with the prefix ``lambda-efs`` nothing of a colleague's
``lambda-efs-alice`` is ever deleted or reported (a bare ``startswith`` would catch both).
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable

from botocore.exceptions import ClientError

from helpers import serverless, session, stacks
from helpers.config import Settings, load_settings

log = logging.getLogger(__name__)

# Dependants first: both import the storage stack's exports; the SageMaker role stack (05) stands alone.
STACK_SUFFIXES = ("sagemaker", "function", "seeder", "storage")
FUNCTION_SUFFIXES = ("inference", "seeder")


def stack_names(cfg: Settings | None = None) -> list[str]:
    cfg = cfg or load_settings()
    return [cfg.name(suffix) for suffix in STACK_SUFFIXES]


def function_names(cfg: Settings | None = None) -> list[str]:
    cfg = cfg or load_settings()
    return [cfg.name(suffix) for suffix in FUNCTION_SUFFIXES]


def still_billing(cfg: Settings | None = None) -> str:
    """One sentence: what keeps costing money while the function stacks are being deleted."""
    from helpers import cost

    prices = cost.load_prices()
    return (
        f"Meanwhile only the storage stack bills: EFS storage at ${prices.efs.storage_gb_month:.2f} per GB-month "
        f"and the artifact bucket at ${prices.s3.storage_gb_month:.3f} per GB-month (a few cents a day for "
        "this workshop); the network interfaces being released cost nothing."
    )


def delete_stacks(
    cfg: Settings | None = None,
    echo: Callable[[str], None] | None = print,
    timeout: float = stacks.DELETE_TIMEOUT_S,
) -> dict[str, str]:
    """Delete the workshop's stacks in dependency order; return ``{stack: outcome}``.

    Each delete waits up to ``timeout`` (an hour by default: a VPC function's network interfaces take
    20-45 minutes to release). The storage stack goes only when nothing imports it any more; if a
    dependant failed or is still being deleted, its outcome says so and the storage stack is kept.
    """
    cfg = cfg or load_settings()
    outcome = {}
    meanwhile = still_billing(cfg) if not cfg.is_local else ""
    for name in stack_names(cfg):
        try:
            outcome[name] = (
                "deleted"
                if stacks.delete(name, echo=echo, timeout=timeout, meanwhile=meanwhile)
                else "not there"
            )
        except stacks.StackInUse as exc:
            outcome[name] = f"FAILED: {exc}"
            log.warning("kept %s: %s", name, exc)
        except (stacks.StackError, ClientError, TimeoutError) as exc:
            outcome[name] = f"FAILED: {exc}"
            log.warning("could not delete %s: %s", name, exc)
    return outcome


def log_group_names(cfg: Settings | None = None) -> list[str]:
    """The log groups the workshop's functions write to: ``/aws/lambda/<function name>``, exactly."""
    return [f"/aws/lambda/{name}" for name in function_names(cfg)]


def sagemaker_resources(cfg: Settings | None = None) -> dict[str, list[str]]:
    """05's SageMaker endpoints, endpoint configurations and models that exist, by exact name."""
    cfg = cfg or load_settings()
    sm = session.client("sagemaker")
    endpoint, config = serverless.endpoint_pattern(cfg), serverless.config_pattern(cfg)
    model = serverless.names(cfg).model
    prefix = {"NameContains": model}
    return {
        "SageMaker endpoints": [
            e["EndpointName"]
            for page in sm.get_paginator("list_endpoints").paginate(**prefix)
            for e in page["Endpoints"]
            if endpoint.match(e["EndpointName"])
        ],
        "SageMaker endpoint configs": [
            c["EndpointConfigName"]
            for page in sm.get_paginator("list_endpoint_configs").paginate(**prefix)
            for c in page["EndpointConfigs"]
            if config.match(c["EndpointConfigName"])
        ],
        "SageMaker models": [
            m["ModelName"]
            for page in sm.get_paginator("list_models").paginate(**prefix)
            for m in page["Models"]
            if m["ModelName"] == model
        ],
    }


def delete_sagemaker(
    cfg: Settings | None = None, echo: Callable[[str], None] | None = print
) -> dict[str, list[str]]:
    """Delete 05's endpoints (waiting until they are gone: they bill while they exist), then their
    configurations and the model. Safe to run twice, and when 05 never ran."""
    cfg = cfg or load_settings()
    found = sagemaker_resources(cfg)
    sm = session.client("sagemaker")
    for name in found["SageMaker endpoints"]:
        if echo:
            echo(f"deleting endpoint {name}")
        serverless.delete_endpoint(name, wait=False)
    for name in found["SageMaker endpoints"]:
        sm.get_waiter("endpoint_deleted").wait(
            EndpointName=name, WaiterConfig={"Delay": 1 if cfg.is_local else 15, "MaxAttempts": 240}
        )
    for name in found["SageMaker endpoint configs"]:
        sm.delete_endpoint_config(EndpointConfigName=name)
    for name in found["SageMaker models"]:
        sm.delete_model(ModelName=name)
    return found


def delete_log_groups(cfg: Settings | None = None) -> list[str]:
    """Delete the workshop functions' log groups (Lambda creates them outside any stack) by exact name."""
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
    """Which of the workshop's log groups exist (a prefix query, then exact names only): the functions'
    and those of 05's endpoints (``/aws/sagemaker/Endpoints/<endpoint>``, also of deleted endpoints)."""
    wanted = set(log_group_names(cfg))
    endpoint = serverless.endpoint_pattern(cfg)
    sagemaker_prefix = serverless.log_group(serverless.names(cfg).endpoint)
    logs = session.client("logs")
    found = []
    for group in sorted(wanted) + [sagemaker_prefix]:
        pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=group)
        found += [
            g["logGroupName"]
            for page in pages
            for g in page["logGroups"]
            if g["logGroupName"] in wanted
            or (
                g["logGroupName"].startswith(serverless.log_group(""))
                and endpoint.match(g["logGroupName"].removeprefix(serverless.log_group("")))
            )
        ]
    return sorted(set(found))


def _bucket_pattern(cfg: Settings) -> re.Pattern:
    """CloudFormation names the artifact bucket ``<stack>-<logical id>-<suffix>``, lower-cased."""
    return re.compile(rf"^{re.escape(cfg.name('storage'))}-artifactbucket-[a-z0-9]+$")


def leftovers(cfg: Settings | None = None) -> dict[str, list[str]]:
    """The workshop's resources that still exist, by kind, matched by exact name. Empty lists mean clean."""
    cfg = cfg or load_settings()
    cfn, s3, efs, ec2, lam = (session.client(s) for s in ("cloudformation", "s3", "efs", "ec2", "lambda"))
    stack_set, storage = set(stack_names(cfg)), cfg.name("storage")
    live = [
        s["StackName"]
        for page in cfn.get_paginator("list_stacks").paginate()
        for s in page["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE" and s["StackName"] in stack_set
    ]
    bucket_name = _bucket_pattern(cfg)
    buckets = [b["Name"] for b in s3.list_buckets().get("Buckets", []) if bucket_name.match(b["Name"])]
    # storage.yaml tags the file system and the VPC with Name = the storage stack's name.
    file_systems = [
        fs["FileSystemId"]
        for page in efs.get_paginator("describe_file_systems").paginate()
        for fs in page["FileSystems"]
        if {"Key": "Name", "Value": storage} in fs.get("Tags", [])
    ]
    vpcs = [
        v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [storage]}])["Vpcs"]
    ]
    wanted_functions = set(function_names(cfg))
    functions = [
        f["FunctionName"]
        for page in lam.get_paginator("list_functions").paginate()
        for f in page["Functions"]
        if f["FunctionName"] in wanted_functions
    ]
    return {
        "stacks": live,
        "buckets": buckets,
        "file systems": file_systems,
        "VPCs": vpcs,
        "functions": functions,
        **sagemaker_resources(cfg),
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
