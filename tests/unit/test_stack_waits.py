"""Stack waits as AWS needs them, with botocore's Stubber standing in for CloudFormation.

- UpdateStack on a stack in an *_IN_PROGRESS state is refused by AWS, so a deploy that finds one (a cell
  that timed out) waits for it and never calls UpdateStack first.
- A delete waits as long as a VPC function's network interfaces need (20-45 min), prints a line while
  nothing happens, and a timed-out delete is waited on again, not deleted again.
- A stack whose exports are still imported (ListImports) is not deleted.
- S3 answers HeadObject with 403 for a missing key when the caller lacks s3:ListBucket.
"""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from botocore.stub import ANY, Stubber

from helpers import functions, stacks

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def stack(status: str, outputs: list | None = None) -> dict:
    return {
        "Stacks": [
            {
                "StackName": "ws-function",
                "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/ws-function/1",
                "CreationTime": NOW,
                "StackStatus": status,
                "Outputs": outputs or [],
            }
        ]
    }


NO_EVENTS = {"StackEvents": []}


class Clock:
    """time.monotonic and time.sleep for the waits: each sleep advances the clock."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def cfn(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKSHOP_STATE_DIR", str(tmp_path))
    client = boto3.client(
        "cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    monkeypatch.setattr(stacks, "_cfn", lambda: client)
    clock = Clock()
    monkeypatch.setattr(stacks.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(stacks.time, "sleep", clock.sleep)
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def poll(stubber: Stubber, status: str, name: str = "ws-function") -> None:
    """One round of stacks.wait: new events, then the stack's status."""
    stubber.add_response("describe_stack_events", NO_EVENTS, {"StackName": name})
    stubber.add_response("describe_stacks", stack(status), {"StackName": name})


def test_a_deploy_that_finds_its_stack_in_progress_waits_instead_of_updating(cfn):
    cfn.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": "ws-function"})
    poll(cfn, "UPDATE_IN_PROGRESS")
    poll(cfn, "UPDATE_COMPLETE")
    cfn.add_response("describe_stack_events", NO_EVENTS, {"StackName": "ws-function"})
    cfn.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": "ws-function"})
    # Only now, with the earlier update finished, may UpdateStack be called (the Stubber enforces the order).
    cfn.add_client_error(
        "update_stack",
        "ValidationError",
        "No updates are to be performed.",
        expected_params={
            "StackName": "ws-function",
            "TemplateBody": ANY,
            "Parameters": ANY,
            "Capabilities": ANY,
        },
    )
    out = [{"OutputKey": "FunctionName", "OutputValue": "ws-inference"}]
    cfn.add_response("describe_stacks", stack("UPDATE_COMPLETE", out), {"StackName": "ws-function"})
    said: list[str] = []
    assert stacks.deploy("ws-function", "function", {"StorageStackName": "ws-storage"}, echo=said.append) == {
        "FunctionName": "ws-inference"
    }
    assert "still UPDATE_IN_PROGRESS from an earlier run: waiting" in said[0]


def test_a_long_delete_says_it_is_still_waiting_and_what_still_bills(cfn):
    cfn.add_response("describe_stacks", stack("DELETE_IN_PROGRESS"), {"StackName": "ws-function"})
    for _ in range(40):  # 40 polls of 2 s: 80 s without an event
        poll(cfn, "DELETE_IN_PROGRESS")
    cfn.add_response("describe_stack_events", NO_EVENTS, {"StackName": "ws-function"})
    cfn.add_client_error("describe_stacks", "ValidationError", "Stack with id ws-function does not exist")
    cfn.add_response("describe_stack_events", NO_EVENTS, {"StackName": "ws-function"})
    said: list[str] = []
    assert stacks.delete("ws-function", echo=said.append, meanwhile="EFS keeps billing.") is True
    assert said[0] == "ws-function is already being deleted: waiting for it"  # not deleted a second time
    assert any(
        line.startswith("... ws-function still DELETE_IN_PROGRESS after 1 min. EFS keeps billing.")
        for line in said
    )


def test_a_delete_past_its_cap_says_to_rerun_the_cell_to_keep_waiting(cfn):
    cfn.add_response("describe_stacks", stack("DELETE_IN_PROGRESS"), {"StackName": "ws-function"})
    for _ in range(4):
        poll(cfn, "DELETE_IN_PROGRESS")
    with pytest.raises(TimeoutError) as raised:
        stacks.delete("ws-function", echo=None, timeout=5, meanwhile="EFS keeps billing.")
    message = str(raised.value)
    assert "still DELETE_IN_PROGRESS" in message and "re-run this cell to keep waiting" in message
    assert "does not start the operation again" in message and message.endswith("EFS keeps billing.")


def test_the_default_delete_wait_covers_a_vpc_functions_network_interfaces():
    assert stacks.DELETE_TIMEOUT_S >= 45 * 60


def test_a_stack_still_imported_is_not_deleted(cfn):
    exported = stack(
        "CREATE_COMPLETE", [{"OutputKey": "VpcId", "OutputValue": "vpc-1", "ExportName": "ws-storage-VpcId"}]
    )
    cfn.add_response("describe_stacks", exported, {"StackName": "ws-storage"})
    cfn.add_response("describe_stacks", exported, {"StackName": "ws-storage"})
    cfn.add_response("list_imports", {"Imports": ["ws-function"]}, {"ExportName": "ws-storage-VpcId"})
    with pytest.raises(
        stacks.StackInUse, match="still imported by ws-function: delete that stack first"
    ) as raised:
        stacks.delete("ws-storage", echo=None)
    assert raised.value.importers == ["ws-function"]


def test_an_export_no_stack_imports_does_not_block_the_delete(cfn):
    exported = stack(
        "CREATE_COMPLETE", [{"OutputKey": "VpcId", "OutputValue": "vpc-1", "ExportName": "ws-storage-VpcId"}]
    )
    cfn.add_response("describe_stacks", exported, {"StackName": "ws-storage"})
    cfn.add_client_error(
        "list_imports", "ValidationError", "Export 'ws-storage-VpcId' is not imported by any stack."
    )
    assert stacks.importers("ws-storage") == {}


@pytest.fixture
def s3(monkeypatch):
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr(functions.session, "client", lambda service, **kw: client)
    with Stubber(client) as stubber:
        yield stubber


def test_head_object_403_without_list_bucket_is_read_as_missing_with_a_warning(s3, caplog):
    s3.add_client_error("head_object", "403", "Forbidden", http_status_code=403)
    assert functions.object_metadata("bucket", "functions/x.zip") is None
    assert "s3:ListBucket" in caplog.text


def test_head_object_404_is_missing_and_a_found_object_gives_its_metadata(s3):
    s3.add_client_error("head_object", "404", "Not Found", http_status_code=404)
    s3.add_response("head_object", {"Metadata": {"sha256": "abc"}}, {"Bucket": "bucket", "Key": "k"})
    assert functions.object_metadata("bucket", "k") is None
    assert functions.object_metadata("bucket", "k") == {"sha256": "abc"}


def test_other_s3_errors_are_raised(s3):
    s3.add_client_error("head_object", "500", "Internal", http_status_code=500)
    with pytest.raises(Exception, match="500"):
        functions.object_metadata("bucket", "k")


def test_99_on_aws_tells_what_still_bills_while_it_waits_and_nothing_locally(monkeypatch):
    """cleanup.delete_stacks hands each delete the sentence its heartbeat lines repeat, priced from prices.json."""
    from helpers import cleanup, cost
    from helpers.config import load_settings

    monkeypatch.delenv("WORKSHOP_PREFIX", raising=False)
    told = {}
    monkeypatch.setattr(
        cleanup.stacks, "delete", lambda name, **kw: told.setdefault(name, kw["meanwhile"]) is None
    )
    monkeypatch.setenv("WORKSHOP_BACKEND", "aws")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    cleanup.delete_stacks(load_settings(), echo=None)
    prices = cost.load_prices()
    sentence = cleanup.still_billing()
    assert set(told) == set(cleanup.stack_names()) and set(told.values()) == {sentence}
    assert f"${prices.efs.storage_gb_month:.2f} per GB-month" in sentence and "artifact bucket" in sentence
    told.clear()
    monkeypatch.setenv("WORKSHOP_BACKEND", "local")
    cleanup.delete_stacks(load_settings(), echo=None)
    assert set(told.values()) == {""}  # nothing bills on the local backend
