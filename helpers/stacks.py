"""Deploy, inspect and delete CloudFormation stacks, the same way on real AWS and the local backend.

``deploy`` creates a stack or updates it when it exists ("no updates" is success), prints the stack's
events as they arrive, and returns the outputs. A stack still in progress (a deploy whose cell timed
out) is waited on, never updated: CloudFormation refuses UpdateStack on a stack in an *_IN_PROGRESS
state. ``delete`` empties every object version of the stack's buckets first, because CloudFormation
cannot delete a bucket that holds objects, refuses while another stack still imports one of its exports
(ListImports tells which), and waits as long as AWS needs: a VPC function's network interfaces take
20 to 45 minutes to release after the function is deleted.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from botocore.exceptions import ClientError

from helpers import session
from helpers.config import REPO_ROOT, load_settings

log = logging.getLogger(__name__)

TEMPLATES = REPO_ROOT / "cloudformation"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
TERMINAL_FAILED = {
    "CREATE_FAILED",
    "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED",
    "DELETE_FAILED",
    "UPDATE_ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_FAILED",
    "UPDATE_FAILED",
    "IMPORT_ROLLBACK_COMPLETE",
}
TERMINAL_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE", "IMPORT_COMPLETE"}
# AWS: "VPC ENIs ... can take up to 20 minutes", learners report 35-45: a delete gets an hour.
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html
DELETE_TIMEOUT_S = 3600
HEARTBEAT_S = 60.0  # a line this often while nothing happens, so a long wait never looks hung

Printer = Callable[[str], None]


class StackError(RuntimeError):
    """A stack operation failed; the message carries the failing resources and their reasons."""


class StackInUse(StackError):
    """Another stack still imports one of this stack's exports; ``importers`` names them."""

    def __init__(self, message: str, importers: list[str]):
        super().__init__(message)
        self.importers = importers


def _cfn():
    return session.client("cloudformation")


def template_path(name: str) -> Path:
    """``cloudformation/<name>.yaml`` (``name`` may also be a path)."""
    path = Path(name)
    if not path.suffix:
        path = TEMPLATES / f"{name}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"No template at {path}: check the name (templates live in {TEMPLATES}).")
    return path


def template_resources(template: str | Path) -> dict[str, str]:
    """``{logical id: resource type}`` of a template, in the order the template lists them."""
    from cfnlint.decode import decode_str

    body, problems = decode_str(template_path(str(template)).read_text())
    if problems:
        raise ValueError(f"{template} is not a valid template: {problems[0]}")
    return {logical: res["Type"] for logical, res in body["Resources"].items()}


def describe(stack_name: str) -> dict | None:
    """The stack's description, or None when there is no such (live) stack."""
    try:
        stacks = _cfn().describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    stack = stacks[0] if stacks else None
    if stack and stack["StackStatus"] == "DELETE_COMPLETE":
        return None
    return stack


def exists(stack_name: str) -> bool:
    return describe(stack_name) is not None


def deploy(
    stack_name: str,
    template: str | Path,
    parameters: dict[str, str] | None = None,
    *,
    timeout: float = 1800,
    echo: Printer | None = print,
) -> dict[str, str]:
    """Create or update ``stack_name`` from ``template`` and return its outputs.

    Prints each stack event as it arrives (pass ``echo=None`` to stay quiet). A stack left in
    ROLLBACK_COMPLETE by a failed first create is deleted and created again.
    """
    body = template_path(str(template)).read_text()
    params = [{"ParameterKey": k, "ParameterValue": str(v)} for k, v in (parameters or {}).items()]
    cfn = _cfn()
    current = describe(stack_name)
    if current and current["StackStatus"].endswith("_IN_PROGRESS"):
        # An earlier deploy (or delete) whose cell timed out: UpdateStack would be refused. Wait for it.
        _say(
            echo,
            f"{stack_name} is still {current['StackStatus']} from an earlier run: waiting for it to finish",
        )
        wait(stack_name, since=datetime.now(UTC), timeout=timeout, echo=echo)
        current = describe(stack_name)
    if current and current["StackStatus"] == "ROLLBACK_COMPLETE":
        _say(echo, f"{stack_name} is in ROLLBACK_COMPLETE after a failed create: deleting it first")
        delete(stack_name, echo=echo)
        current = None
    started = datetime.now(UTC)
    try:
        if current is None:
            _say(echo, f"creating stack {stack_name}")
            cfn.create_stack(
                StackName=stack_name, TemplateBody=body, Parameters=params, Capabilities=CAPABILITIES
            )
        else:
            _say(echo, f"updating stack {stack_name}")
            cfn.update_stack(
                StackName=stack_name, TemplateBody=body, Parameters=params, Capabilities=CAPABILITIES
            )
    except ClientError as exc:
        if "No updates are to be performed" in str(exc):
            _say(echo, f"{stack_name} is up to date: nothing to change")
            _remember(stack_name)
            return outputs(stack_name)
        raise StackError(f"CloudFormation refused {stack_name}: {exc.response['Error']['Message']}") from exc
    status = wait(stack_name, since=started, timeout=timeout, echo=echo)
    if status not in TERMINAL_OK:
        raise StackError(f"Stack {stack_name} ended in {status}. " + _failure_summary(stack_name, started))
    _remember(stack_name)
    return outputs(stack_name)


def wait(
    stack_name: str,
    *,
    since: datetime,
    timeout: float = 1800,
    echo: Printer | None = print,
    poll: float = 2.0,
    heartbeat: float = HEARTBEAT_S,
    meanwhile: str = "",
) -> str:
    """Print the stack's new events until it reaches a terminal status; return that status.

    While no event arrives, a line every ``heartbeat`` seconds says how long it has waited (with
    ``meanwhile``, e.g. what is still billing). After ``timeout`` a TimeoutError says what to do; the
    stack's operation goes on in CloudFormation, and running the same cell again waits for it again.
    """
    seen: set[str] = set()
    started = time.monotonic()
    deadline, quiet_since = started + timeout, started
    while True:
        fresh = _new_events(stack_name, since, seen)
        for event in fresh:
            _say(echo, _format_event(event))
        now = time.monotonic()
        if fresh:
            quiet_since = now
        stack = describe(stack_name)
        status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
        if status in TERMINAL_OK or status in TERMINAL_FAILED:
            for event in _new_events(stack_name, since, seen):
                _say(echo, _format_event(event))
            return status
        if now > deadline:
            raise TimeoutError(
                f"Stack {stack_name} is still {status} after {timeout / 60:.0f} min: CloudFormation goes on "
                "without us, so re-run this cell to keep waiting (it waits, it does not start the operation "
                f"again); if a resource looks stuck, read its events (aws cloudformation describe-stack-events "
                f"--stack-name {stack_name})." + (f" {meanwhile}" if meanwhile else "")
            )
        if now - quiet_since >= heartbeat:
            quiet_since = now
            _say(
                echo,
                f"... {stack_name} still {status} after {(now - started) / 60:.0f} min. {meanwhile}".rstrip(),
            )
        time.sleep(poll)


def _new_events(stack_name: str, since: datetime, seen: set[str]) -> list[dict]:
    try:
        pages = _cfn().get_paginator("describe_stack_events").paginate(StackName=stack_name)
        events = [e for page in pages for e in page["StackEvents"]]
    except ClientError:
        return []
    fresh = [e for e in events if e["EventId"] not in seen and e["Timestamp"] >= since.replace(microsecond=0)]
    seen.update(e["EventId"] for e in fresh)
    return sorted(fresh, key=lambda e: e["Timestamp"])


def _format_event(event: dict) -> str:
    reason = f"  {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
    when = event["Timestamp"].strftime("%H:%M:%S")
    return f"{when}  {event['ResourceStatus']:<20} {event['ResourceType']:<34} {event['LogicalResourceId']}{reason}"


def _failure_summary(stack_name: str, since: datetime) -> str:
    failed = [
        f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', 'no reason given')}"
        for e in _new_events(stack_name, since, set())
        if e["ResourceStatus"].endswith("FAILED")
    ]
    return ("Failed resources: " + "; ".join(failed)) if failed else "See the stack events above."


def outputs(stack_name: str, notebook: str | None = None) -> dict[str, str]:
    """The stack's outputs as ``{key: value}``.

    A missing stack is a LookupError that names the notebook which creates it (``notebook``) and, on
    the local backend, says when the server was restarted since the stack was deployed.
    """
    stack = describe(stack_name)
    if stack is None:
        hint = f"run {notebook} first" if notebook else "deploy it first"
        raise LookupError(f"Stack {stack_name} does not exist{_restart_hint(stack_name)}: {hint}.")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def output(stack_name: str, key: str, notebook: str | None = None) -> str:
    """One output of a stack; a missing one is a LookupError naming the notebook to run first."""
    values = outputs(stack_name, notebook)
    if key not in values:
        hint = f"run {notebook} again" if notebook else "re-deploy it"
        raise LookupError(
            f"Stack {stack_name} has no output {key!r} (it has: {', '.join(sorted(values)) or 'none'}): {hint}."
        )
    return values[key]


def resources(stack_name: str) -> list[dict]:
    """The stack's resources: logical id, type, physical id, status."""
    pages = _cfn().get_paginator("list_stack_resources").paginate(StackName=stack_name)
    return [
        {
            "LogicalResourceId": r["LogicalResourceId"],
            "ResourceType": r["ResourceType"],
            "PhysicalResourceId": r.get("PhysicalResourceId"),
            "ResourceStatus": r["ResourceStatus"],
        }
        for page in pages
        for r in page["StackResourceSummaries"]
    ]


def empty_bucket(bucket: str, echo: Printer | None = print) -> int:
    """Delete every object version and delete marker in ``bucket``; return how many were deleted."""
    s3 = session.client("s3")
    deleted = 0
    try:
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
        for page in pages:
            keys = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            for start in range(0, len(keys), 1000):
                s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True}
                )
                deleted += len(keys[start : start + 1000])
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchBucket":
            return 0
        raise
    if deleted:
        _say(echo, f"emptied bucket {bucket}: {deleted} object versions deleted")
    return deleted


def importers(stack_name: str) -> dict[str, list[str]]:
    """``{export name: [importing stacks]}`` for this stack's exports that another stack imports."""
    cfn = _cfn()
    stack = describe(stack_name)
    if stack is None:
        return {}
    names = [o["ExportName"] for o in stack.get("Outputs", []) if o.get("ExportName")]
    used = {}
    for name in names:
        try:
            found = [
                i
                for page in cfn.get_paginator("list_imports").paginate(ExportName=name)
                for i in page["Imports"]
            ]
        except ClientError as exc:
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ListImports.html
            if "is not imported by any stack" in str(exc) or "No export named" in str(exc):
                continue
            raise
        if found:
            used[name] = found
    return used


def delete(
    stack_name: str, *, timeout: float = DELETE_TIMEOUT_S, echo: Printer | None = print, meanwhile: str = ""
) -> bool:
    """Delete the stack (emptying its buckets first) and wait. Return False when it did not exist.

    A stack already being deleted (a cell that timed out) is waited on again. A stack whose exports are
    still imported is not deleted: StackInUse names the importers (CloudFormation would refuse anyway).
    """
    current = describe(stack_name)
    if current is None:
        _say(echo, f"stack {stack_name} does not exist: nothing to delete")
        _forget(stack_name)
        return False
    started = datetime.now(UTC)
    if current["StackStatus"] != "DELETE_IN_PROGRESS":
        used = importers(stack_name)
        if used:
            users = sorted({user for users in used.values() for user in users})
            raise StackInUse(
                f"{stack_name} is still imported by {', '.join(users)}: delete {'those stacks' if len(users) > 1 else 'that stack'} "
                "first (cleanup.delete_stacks does, in order), then delete this one.",
                users,
            )
        for res in resources(stack_name):
            if res["ResourceType"] == "AWS::S3::Bucket" and res["PhysicalResourceId"]:
                empty_bucket(res["PhysicalResourceId"], echo=echo)
        _say(echo, f"deleting stack {stack_name}")
        _cfn().delete_stack(StackName=stack_name)
    else:
        _say(echo, f"{stack_name} is already being deleted: waiting for it")
    status = wait(stack_name, since=started, timeout=timeout, echo=echo, meanwhile=meanwhile)
    if status != "DELETE_COMPLETE":
        raise StackError(f"Deleting {stack_name} ended in {status}. " + _failure_summary(stack_name, started))
    _forget(stack_name)
    return True


def _say(echo: Printer | None, message: str) -> None:
    log.info(message)
    if echo:
        echo(message)


# The local server keeps everything in memory: after a restart every stack is gone. We remember which
# stacks were deployed on the local backend so that a missing stack can be explained.
def _deployed_file() -> Path | None:
    cfg = load_settings()
    return cfg.state_dir / "deployed-stacks.json" if cfg.is_local else None


def _read_deployed() -> dict:
    path = _deployed_file()
    try:
        return json.loads(path.read_text()) if path else {}
    except (OSError, ValueError):
        return {}


def _remember(stack_name: str) -> None:
    path = _deployed_file()
    if path:
        known = _read_deployed()
        known[stack_name] = time.time()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known, indent=2))


def _forget(stack_name: str) -> None:
    path = _deployed_file()
    known = _read_deployed()
    if path and known.pop(stack_name, None) is not None:
        path.write_text(json.dumps(known, indent=2))


def _restart_hint(stack_name: str) -> str:
    deployed_at = _read_deployed().get(stack_name)
    if deployed_at is None:
        return ""
    if (session.local_server_started_at() or 0) > deployed_at:
        return (
            " (it was deployed before the local AWS server restarted, and the server keeps everything in "
            "memory, so it is gone)"
        )
    return ""
