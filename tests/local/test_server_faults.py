"""The local server under faults: restarts on the same port, cleanup twice, concurrent deploys, stale EFS.

See ``localaws/server.py``, ``localaws/app.py`` and ``localaws/patches/cloudformation_serial.py``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections import Counter

import botocore.parsers
import pytest
from botocore.exceptions import ClientError

from localaws import guard, server
from localaws.service_errors import Service
from tests.conftest import LocalAWSHandle, free_port, lambda_zip, start_local_aws, workshop_pointed_at


def _restart_port() -> int:
    """A free port below the ephemeral range: a port a client connection can take as its source port
    would make "start again on the same port" fail for a reason that is not the server's."""
    for _ in range(200):
        port = random.randrange(20000, 32000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    return free_port()


def _handle(state_dir, port: int) -> LocalAWSHandle:
    return LocalAWSHandle(url=server.ensure_running(state_dir, port), state_dir=state_dir, port=port)


def _use(handle: LocalAWSHandle) -> None:
    """Requests over kept-alive connections, so that the server closes sockets when it stops."""
    s3 = handle.client("s3")
    for _ in range(3):
        s3.list_buckets()
    handle.client("sts").get_caller_identity()


def test_start_stop_start_in_a_row_on_one_port(tmp_path):
    port = _restart_port()
    state = tmp_path / "state"
    try:
        for _ in range(3):
            handle = _handle(state, port)
            _use(handle)
            assert server.stop(state) is True
    finally:
        server.stop(state)


def test_a_crashed_server_is_replaced_at_once_on_the_same_port(tmp_path):
    port = _restart_port()
    state = tmp_path / "state"
    try:
        handle = _handle(state, port)
        _use(handle)
        pid = server.status(state)["pid"]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while server.pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        again = _handle(state, port)
        assert server.status(state)["pid"] != pid
        _use(again)
    finally:
        server.stop(state)


def _cleanup_notebook(settings) -> dict:
    """What 99_cleanup.ipynb runs, cell after cell."""
    from helpers import cleanup

    deleted = cleanup.delete_stacks(settings, echo=None)
    assert not [name for name, outcome in deleted.items() if outcome.startswith("FAILED")], deleted
    cleanup.delete_log_groups(settings)
    left = cleanup.leftovers(settings)
    assert not any(left.values()), left
    return cleanup.stop_local(settings)


def test_99_cleanup_twice_in_a_row_never_fails_nor_leaves_server_lock(tmp_path):
    port = _restart_port()
    handle = LocalAWSHandle(url=f"http://127.0.0.1:{port}", state_dir=tmp_path / "state", port=port)
    try:
        _handle(handle.state_dir, port)
        with workshop_pointed_at(handle) as settings:
            for _ in range(2):
                local = _cleanup_notebook(settings)
                assert not local["server running now"] and not local["state folder left"], local
                assert not (handle.state_dir / "server.lock").exists()
    finally:
        server.stop(handle.state_dir)


# --- concurrent clients --------------------------------------------------------------------------


def _stack_template(role: str, name: str) -> str:
    return json.dumps(
        {
            "Resources": {
                "Fn": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "FunctionName": name,
                        "Runtime": "python3.12",
                        "Handler": "index.handler",
                        "Role": role,
                        "Code": {"ZipFile": "def handler(event, context):\n    return 1\n"},
                    },
                },
                "Version": {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": {"Ref": "Fn"}}},
                "Alias": {
                    "Type": "AWS::Lambda::Alias",
                    "Properties": {
                        "FunctionName": {"Ref": "Fn"},
                        "Name": "live",
                        "FunctionVersion": {"Fn::GetAtt": ["Version", "Version"]},
                    },
                },
            },
            "Outputs": {"Alias": {"Value": {"Ref": "Alias"}}},
            # Large enough that parsing it takes moto a while: two CreateStack calls then overlap.
            "Metadata": {"Padding": [f"item {i}" for i in range(4000)]},
        }
    )


def test_clients_creating_the_same_stack_at_once_get_one_stack_and_already_exists(local_aws):
    role = local_aws.lambda_role()
    clients = 4
    for _ in range(6):
        name = f"twice-{uuid.uuid4().hex[:8]}"
        template = _stack_template(role, name)
        barrier, outcomes = threading.Barrier(clients), []

        def deploy(template=template, name=name, barrier=barrier, outcomes=outcomes) -> None:
            cfn = local_aws.client("cloudformation")
            barrier.wait()
            try:
                cfn.create_stack(StackName=name, TemplateBody=template)
                outcomes.append("created")
            except ClientError as exc:
                outcomes.append(exc.response["Error"]["Code"])

        threads = [threading.Thread(target=deploy) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        cfn = local_aws.client("cloudformation")
        try:
            assert sorted(outcomes) == ["AlreadyExistsException"] * (clients - 1) + ["created"], outcomes
            [stack] = cfn.describe_stacks(StackName=name)["Stacks"]
            assert stack["StackStatus"] == "CREATE_COMPLETE"
            alias = local_aws.client("lambda").get_alias(FunctionName=name, Name="live")
            assert stack["Outputs"][0]["OutputValue"] == alias["AliasArn"]
        finally:
            cfn.delete_stack(StackName=name)


def test_concurrent_requests_of_two_services_only_get_their_own_answers(local_aws):
    """Lambda conflicts (JSON errors) hammered beside CloudFormation reads (XML): never crossed."""
    lam, role = local_aws.client("lambda"), local_aws.lambda_role()
    name = f"cross-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": lambda_zip("def handler(e, c):\n    return 1\n")},
    )
    stack = f"cross-{uuid.uuid4().hex[:8]}"
    cfn = local_aws.client("cloudformation")
    cfn.create_stack(
        StackName=stack, TemplateBody=json.dumps({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}})
    )
    wrong: list[str] = []
    seen: Counter = Counter()
    stop = time.monotonic() + 8

    def conflicts() -> None:
        client = local_aws.client("lambda")
        while time.monotonic() < stop:
            try:
                client.create_function(
                    FunctionName=name,
                    Runtime="python3.12",
                    Role=role,
                    Handler="app.handler",
                    Code={"ZipFile": lambda_zip("x = 1\n")},
                )
                wrong.append("a duplicate function was created")
            except ClientError as exc:
                seen["lambda"] += 1
                if exc.response["Error"]["Code"] != "ResourceConflictException":
                    wrong.append(f"lambda got {exc.response['Error']}")
            except Exception as exc:  # noqa: BLE001 - anything else is what this test looks for
                wrong.append(f"lambda: {exc!r}")

    def reads() -> None:
        client = local_aws.client("cloudformation")
        while time.monotonic() < stop:
            try:
                [found] = client.describe_stacks(StackName=stack)["Stacks"]
                seen["cloudformation"] += 1
                if found["StackName"] != stack:
                    wrong.append(f"cloudformation got {found}")
            except Exception as exc:  # noqa: BLE001 - anything else is what this test looks for
                wrong.append(f"cloudformation: {exc!r}")

    threads = [threading.Thread(target=conflicts) for _ in range(3)] + [
        threading.Thread(target=reads) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cfn.delete_stack(StackName=stack)
    lam.delete_function(FunctionName=name)
    assert not wrong, wrong[:5]
    assert seen["lambda"] > 10 and seen["cloudformation"] > 10, seen


def test_another_services_error_escaping_a_cloudformation_call_is_answered_as_cloudformation():
    def lambda_like(environ, start_response):
        body = json.dumps({"__type": "ConflictException", "message": "Alias already exists: live"}).encode()
        start_response(
            "409 CONFLICT", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    captured = {}
    cloudformation = Service("cloudformation", "us-east-1", "query")
    body = b"".join(
        guard.call_moto(
            lambda_like,
            {},
            lambda status, headers: captured.update(status=status, headers=dict(headers)),
            cloudformation,
        )
    )
    assert captured["status"].startswith("409") and captured["headers"]["Content-Type"] == "text/xml"
    parsed = botocore.parsers.QueryParser().parse({"status_code": 409, "headers": {}, "body": body}, None)
    assert parsed["Error"] == {
        "Type": "Sender",
        "Code": "ConflictException",
        "Message": "Alias already exists: live",
    }


# --- EFS folders of a previous server life ----------------------------------------------------------


def test_efs_folders_of_a_previous_server_are_removed_at_start_and_nothing_else(tmp_path):
    state = tmp_path / "state"
    efs = state / "efs"
    (efs / "fs-0123abcd" / "model").mkdir(parents=True)
    (efs / "fs-0123abcd" / "model" / "weights.pt").write_bytes(b"old")
    (efs / "notes.txt").write_text("not ours")
    (efs / "my-folder").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("never follow links")
    (efs / "fs-89abcdef").symlink_to(outside, target_is_directory=True)
    (efs / "fs-fedcba98").mkdir()
    (efs / "fs-fedcba98" / "link").symlink_to(outside, target_is_directory=True)
    try:
        start_local_aws(state)
        assert sorted(p.name for p in efs.iterdir()) == ["my-folder", "notes.txt"]
        assert (outside / "keep.txt").read_text() == "never follow links"
    finally:
        server.stop(state)


@pytest.mark.parametrize("layout", ["efs-is-a-file", "no-efs"])
def test_a_state_folder_without_our_efs_layout_starts_fine(tmp_path, layout):
    state = tmp_path / "state"
    state.mkdir()
    if layout == "efs-is-a-file":
        (state / "efs").write_text("odd")
    try:
        start_local_aws(state)
    finally:
        server.stop(state)
