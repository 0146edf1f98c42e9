"""Issue 23, items 1 and 2, attacked through boto3 as a tenant would: access point paths that leave their
file system, and links on a file system that would lead a later mount out of it.

Before the fix, ``RootDirectory.Path="/../../../../.."`` (or an unknown file system) was accepted and a
function mounting it listed the host's folders; a function that wrote ``escape -> <host folder>`` on its
file system, then an access point at ``/data/escape``, gave the next function the host folder, and an
access point with ``CreationInfo`` below such a link created (and chowned) a folder on the host. Each is
checked with the sandbox as root, without it (``LOCALAWS_SANDBOX=off``) and, where this machine allows,
as an unprivileged server in user namespaces.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from localaws import server
from tests.conftest import LocalAWSHandle, free_port
from tests.local.test_lambda_engine import create_function, invoke, unique

CREATION = {"OwnerUid": 1000, "OwnerGid": 1000, "Permissions": "755"}
WRITER = (
    "import os\n\ndef handler(event, context):\n"
    "    for name, target in event['links'].items():\n"
    "        os.symlink(target, os.path.join(os.environ['DATA'], name))\n"
    "    return sorted(os.listdir(os.environ['DATA']))\n"
)
READER = "import os\n\ndef handler(event, context):\n    return sorted(os.listdir(os.environ['DATA']))\n"
DATA = {"Variables": {"DATA": "/mnt/ml"}}  # rewritten to the folder where there is no sandbox


def _access_point(handle: LocalAWSHandle, fs_id: str, path: str, creation: bool = False) -> str:
    root = {"Path": path, **({"CreationInfo": CREATION} if creation else {})}
    efs = handle.client("efs")
    return efs.create_access_point(
        FileSystemId=fs_id, PosixUser={"Uid": 1000, "Gid": 1000}, RootDirectory=root
    )["AccessPointArn"]


def _mounting(handle: LocalAWSHandle, code: str, access_point: str) -> str:
    configs = [{"Arn": access_point, "LocalMountPath": "/mnt/ml"}]
    return create_function(handle, code, FileSystemConfigs=configs, Environment=DATA, Timeout=20)


def _mount_failure(handle: LocalAWSHandle, name: str) -> dict:
    with pytest.raises(ClientError) as caught:
        handle.client("lambda").invoke(FunctionName=name, Payload=b"{}")
    return caught.value.response


def links_never_lead_a_mount_out(handle: LocalAWSHandle, outside: Path) -> None:
    """The attack of item 2 against ``handle``: ``outside`` is a host folder the tenant must never reach."""
    outside.mkdir(mode=0o755)
    (outside / "host-secret.txt").write_text("the host's\n")
    fs_id = handle.client("efs").create_file_system(CreationToken=unique("fs"))["FileSystemId"]
    writer = _mounting(handle, WRITER, _access_point(handle, fs_id, "/data", creation=True))
    links = {"escape": str(outside), "escape-up": "../../../../../../../../..", "made": str(outside)}
    _, written, _ = invoke(handle, writer, {"links": links})
    assert written == sorted(links), written

    for path in ("/data/escape", "/data/escape-up/tmp"):
        reader = _mounting(handle, READER, _access_point(handle, fs_id, path))
        answer = _mount_failure(handle, reader)
        assert answer["Error"]["Code"] == "EFSMountFailureException", answer
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert "couldn't mount the Amazon EFS file system" in answer["Error"]["Message"]

    # CreationInfo below a link: EFS would create the folder inside the file system, never on the host.
    creator = _mounting(handle, READER, _access_point(handle, fs_id, "/data/made/new", creation=True))
    assert _mount_failure(handle, creator)["Error"]["Code"] == "EFSMountFailureException"
    assert sorted(p.name for p in outside.iterdir()) == ["host-secret.txt"], "nothing created on the host"

    # The file system itself still works: a real folder below /data mounts as before.
    ok = _mounting(handle, READER, _access_point(handle, fs_id, "/data/real", creation=True))
    assert invoke(handle, ok)[1] == []


@pytest.mark.parametrize(
    "path",
    ["/../../../../..", "/..", "/data/../..", "/.hidden", "/a/b/c/d/e", "//a", "/a/", "/" + "x" * 100],
)
def test_create_access_point_refuses_a_path_the_efs_api_refuses(local_aws, path):
    efs = local_aws.client("efs")
    fs_id = efs.create_file_system(CreationToken=unique("fs"))["FileSystemId"]
    with pytest.raises(ClientError) as caught:
        efs.create_access_point(FileSystemId=fs_id, RootDirectory={"Path": path, "CreationInfo": CREATION})
    error = caught.value.response
    assert error["Error"]["Code"] == "ValidationException", error
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "validation error detected: Value '" in error["Error"]["Message"]
    assert "at 'rootDirectory.path' failed to satisfy constraint: Member must" in error["Error"]["Message"]
    assert efs.describe_access_points(FileSystemId=fs_id)["AccessPoints"] == []


def test_create_access_point_accepts_what_efs_accepts(local_aws):
    efs = local_aws.client("efs")
    fs_id = efs.create_file_system(CreationToken=unique("fs"))["FileSystemId"]
    for path in ("/", "/ml", "/a/b/c/d", "/a..b/with space"):
        efs.create_access_point(FileSystemId=fs_id, RootDirectory={"Path": path, "CreationInfo": CREATION})
    with pytest.raises(ClientError, match="rootDirectory.creationInfo.permissions"):
        efs.create_access_point(
            FileSystemId=fs_id,
            RootDirectory={"Path": "/p", "CreationInfo": {**CREATION, "Permissions": "999"}},
        )


def test_create_access_point_refuses_an_unknown_file_system_with_efs_error(local_aws):
    with pytest.raises(ClientError) as caught:
        local_aws.client("efs").create_access_point(
            FileSystemId="fs-0123456789abcdef0", RootDirectory={"Path": "/x"}
        )
    error = caught.value.response
    assert error["Error"]["Code"] == "FileSystemNotFound"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert error["Error"]["Message"] == "File system 'fs-0123456789abcdef0' does not exist."


def _stack_failure(handle: LocalAWSHandle, resources: dict) -> str:
    cfn = handle.client("cloudformation")
    name = unique("ap-stack")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps({"Resources": resources}))
    deadline = time.monotonic() + 120
    while (status := cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]).endswith("IN_PROGRESS"):
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status == "ROLLBACK_COMPLETE", status
    events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    return next(e["ResourceStatusReason"] for e in events if e["ResourceStatus"] == "CREATE_FAILED")


def test_cloudformation_refuses_the_same_access_points(local_aws):
    file_system = {"Type": "AWS::EFS::FileSystem", "Properties": {}}
    dotdot = {
        "Type": "AWS::EFS::AccessPoint",
        "Properties": {"FileSystemId": {"Ref": "Fs"}, "RootDirectory": {"Path": "/../../../../.."}},
    }
    reason = _stack_failure(local_aws, {"Fs": file_system, "Ap": dotdot})
    assert "ValidationException" in reason and "rootDirectory.path" in reason
    unknown = {"Type": "AWS::EFS::AccessPoint", "Properties": {"FileSystemId": "fs-0123456789abcdef0"}}
    assert "FileSystemNotFound" in _stack_failure(local_aws, {"Ap": unknown})


def test_create_function_refuses_a_local_mount_path_lambda_refuses(local_aws):
    efs = local_aws.client("efs")
    fs_id = efs.create_file_system(CreationToken=unique("fs"))["FileSystemId"]
    arn = _access_point(local_aws, fs_id, "/ml", creation=True)
    for path in ("/mnt/../../tmp/x", "/etc", "/mnt/a/b", "/mnt/"):
        with pytest.raises(ClientError) as caught:
            create_function(local_aws, READER, FileSystemConfigs=[{"Arn": arn, "LocalMountPath": path}])
        error = caught.value.response["Error"]
        assert error["Code"] == "ValidationException", error
        assert "fileSystemConfigs.1.member.localMountPath" in error["Message"]


def test_an_access_point_whose_file_system_is_gone_is_efs_mount_failure_not_a_500(local_aws):
    efs = local_aws.client("efs")
    fs_id = efs.create_file_system(CreationToken=unique("fs"))["FileSystemId"]
    name = _mounting(local_aws, READER, _access_point(local_aws, fs_id, "/ml", creation=True))
    efs.delete_file_system(FileSystemId=fs_id)
    assert _mount_failure(local_aws, name)["Error"]["Code"] == "EFSMountFailureException"


def test_links_on_a_file_system_never_lead_a_mount_out_in_the_sandbox(local_aws, tmp_path):
    links_never_lead_a_mount_out(local_aws, tmp_path / "outside")


@pytest.fixture(scope="module")
def unsandboxed(tmp_path_factory):
    """A server whose environments are host processes (the fallback)."""
    state = tmp_path_factory.mktemp("isolation-fs-off")
    mp = pytest.MonkeyPatch()
    mp.setenv("LOCALAWS_SANDBOX", "off")
    try:
        url = server.ensure_running(state, free_port())
    finally:
        mp.undo()
    yield LocalAWSHandle(url=url, state_dir=state, port=int(url.rsplit(":", 1)[1]))
    server.stop(state)


def test_links_on_a_file_system_never_lead_a_mount_out_without_the_sandbox(unsandboxed, tmp_path):
    links_never_lead_a_mount_out(unsandboxed, tmp_path / "outside")


def test_links_on_a_file_system_never_lead_a_mount_out_in_user_namespaces(tmp_path):
    from tests.local import test_lambda_sandbox_unprivileged as unprivileged

    if unprivileged.WHY_NOT:
        pytest.skip(unprivileged.WHY_NOT)
    outside = Path("/tmp") / f"isolation-outside-{uuid.uuid4().hex[:8]}"  # the unprivileged user's reach
    try:
        with unprivileged.unprivileged_server() as handle:
            links_never_lead_a_mount_out(handle, outside)
    finally:
        for child in outside.glob("*"):
            child.unlink()
        if outside.exists():
            outside.rmdir()
