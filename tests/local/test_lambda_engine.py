"""The local Lambda engine: invocations run for real, cold then warm, with Lambda's logs, EFS and clients.

Shared helpers for the other ``test_lambda_engine_*`` modules live here too: tiny zips built in the
test, functions created against the session's local AWS, and a count of environment processes.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from helpers.reports import Report, parse_report, report_from_log_result
from tests.conftest import lambda_zip

ECHO = """
import os

print("init of echo")


def handler(event, context):
    print("echo", event.get("say"))
    if event.get("sleep"):
        import time
        time.sleep(event["sleep"])
    return {
        "env_id": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],  # one stream per environment
        "event": event,
        "initialization_type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"],
        "env": {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "LAMBDA_", "_HANDLER", "TZ", "GREETING"))},
        "request_id": context.aws_request_id,
    }
"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_function(local_aws, code: str | dict[str, str], name: str | None = None, **kwargs) -> str:
    """A python3.12 function whose ``app.py`` is ``code``; returns its name."""
    name = name or unique("fn")
    kwargs.setdefault("Timeout", 5)
    lam = local_aws.client("lambda")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=local_aws.lambda_role(),
        Handler=kwargs.pop("Handler", "app.handler"),
        Code={"ZipFile": lambda_zip(code)},
        **kwargs,
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    return name


def invoke(local_aws, name: str, event: dict | None = None, **kwargs) -> tuple[dict, object, Report]:
    """(raw response, decoded payload, parsed REPORT) of a RequestResponse invocation with a log tail."""
    response = local_aws.client("lambda").invoke(
        FunctionName=name, Payload=json.dumps(event or {}), LogType="Tail", **kwargs
    )
    payload = json.loads(response["Payload"].read() or b"null")
    return response, payload, report_from_log_result(response["LogResult"])


def tail_text(response: dict) -> str:
    return base64.b64decode(response["LogResult"]).decode()


def _live_with(variable: bytes) -> list[int]:
    """Live (not zombie) processes whose environment holds ``variable`` (``NAME=value``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if variable in (entry / "environ").read_bytes().split(b"\0"):
                stat = (entry / "stat").read_text()
                if stat.rsplit(")", 1)[-1].split()[0] != "Z":
                    pids.append(int(entry.name))
        except OSError:
            continue
    return pids


_URLS: dict[Path, str] = {}  # state folder -> its server's URL, remembered past the server's end


def environment_pids(state_dir: Path) -> list[int]:
    """One process per live environment of the server of ``state_dir``: those whose AWS_ENDPOINT_URL is
    that server's, each the leader of its process group (in the sandbox the runtime runs under util-linux
    unshare, in the same group)."""
    folder = Path(state_dir).resolve()
    if folder not in _URLS:
        _URLS[folder] = json.loads((folder / "server.json").read_text())["url"]
    leaders = []
    for pid in _live_with(f"AWS_ENDPOINT_URL={_URLS[folder]}".encode()):
        try:
            if os.getpgid(pid) == pid:
                leaders.append(pid)
        except ProcessLookupError:
            continue
    return leaders


def host_pids(env_id: str) -> list[int]:
    """The host's process ids of one environment (``env_id`` = its log stream, as the handlers return it)."""
    return _live_with(f"AWS_LAMBDA_LOG_STREAM_NAME={env_id}".encode())


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


@pytest.fixture(scope="module")
def echo_fn(local_aws) -> str:
    return create_function(local_aws, ECHO, Environment={"Variables": {"GREETING": "hi"}})


def test_cold_then_warm_invocations_share_one_environment(local_aws):
    name = create_function(local_aws, ECHO)
    first, cold, cold_report = invoke(local_aws, name, {"say": "one"})
    second, warm, warm_report = invoke(local_aws, name, {"say": "two"})
    assert first["StatusCode"] == 200 and "FunctionError" not in first
    assert cold["event"] == {"say": "one"} and warm["event"] == {"say": "two"}
    assert warm["env_id"] == cold["env_id"]
    assert cold_report.init_duration_ms is not None and cold_report.init_duration_ms > 0
    assert warm_report.init_duration_ms is None
    assert cold["initialization_type"] == "on-demand"
    assert first["ExecutedVersion"] == "$LATEST"


def test_report_line_is_aws_format_field_by_field(local_aws, echo_fn):
    response, payload, _ = invoke(local_aws, echo_fn, {"say": "fields"})
    lines = tail_text(response).splitlines()
    request_id = payload["request_id"]
    if lines[0].startswith("INIT_START "):  # a cold invocation's tail begins with its init, as on AWS
        lines = lines[next(i for i, line in enumerate(lines) if line.startswith("START ")) :]
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert "echo fields" in lines
    assert lines[-2] == f"END RequestId: {request_id}"
    report = lines[-1]
    fields = report.split("\t")
    assert fields[0] == f"REPORT RequestId: {request_id}"
    assert re.fullmatch(r"Duration: \d+\.\d\d ms", fields[1])
    assert re.fullmatch(r"Billed Duration: \d+ ms", fields[2])
    assert fields[3] == "Memory Size: 128 MB"
    assert re.fullmatch(r"Max Memory Used: \d+ MB", fields[4])
    parsed = parse_report(report)
    expected_billed = math.ceil(parsed.duration_ms + (parsed.init_duration_ms or 0))
    assert abs(parsed.billed_duration_ms - max(1, expected_billed)) <= 1  # printed values are rounded
    assert 5 <= parsed.max_memory_used_mb <= 128


def test_response_request_id_is_the_invocations_as_on_aws(local_aws, echo_fn):
    response, payload, report = invoke(local_aws, echo_fn, {"say": "id"})
    assert response["ResponseMetadata"]["RequestId"] == payload["request_id"] == report.request_id


def test_first_report_bills_init_duration(local_aws):
    name = create_function(local_aws, ECHO)
    response, _, report = invoke(local_aws, name)
    fields = tail_text(response).splitlines()[-1].split("\t")
    assert re.fullmatch(r"Init Duration: \d+\.\d\d ms", fields[5])
    assert report.billed_duration_ms >= math.floor(report.duration_ms + report.init_duration_ms)


def test_logs_reach_cloudwatch_in_one_stream_per_environment(local_aws, echo_fn):
    _, payload, _ = invoke(local_aws, echo_fn, {"say": "to-cloudwatch"})
    logs = local_aws.client("logs")
    streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{echo_fn}")["logStreams"]
    assert streams and all(
        re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", s["logStreamName"]) for s in streams
    )
    events = logs.filter_log_events(logGroupName=f"/aws/lambda/{echo_fn}")["events"]
    messages = [e["message"] for e in events]
    assert "init of echo" in messages
    assert "echo to-cloudwatch" in messages
    assert any(m.startswith(f"REPORT RequestId: {payload['request_id']}\t") for m in messages)
    assert payload["env"]["AWS_LAMBDA_LOG_STREAM_NAME"] in {s["logStreamName"] for s in streams}


def test_function_gets_lambda_environment_variables(local_aws, echo_fn):
    _, payload, _ = invoke(local_aws, echo_fn)
    env = payload["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == echo_fn
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == local_aws.region
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{echo_fn}"
    assert env["_HANDLER"] == "app.handler"
    assert env["TZ"] == ":UTC"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["AWS_ENDPOINT_URL"] == local_aws.url
    assert env["LAMBDA_TASK_ROOT"] == "/var/task" or Path(env["LAMBDA_TASK_ROOT"], "app.py").is_file()
    assert env["GREETING"] == "hi"


def test_boto3_inside_a_function_reaches_the_local_aws(local_aws):
    code = "import boto3\n\ndef handler(event, context):\n    return [b['Name'] for b in boto3.client('s3').list_buckets()['Buckets']]\n"
    bucket = unique("engine-bucket")
    local_aws.client("s3").create_bucket(Bucket=bucket)
    _, payload, _ = invoke(local_aws, create_function(local_aws, code, Timeout=20))
    assert bucket in payload


def test_configuration_update_forces_a_cold_start(local_aws):
    name = create_function(local_aws, ECHO)
    _, before, _ = invoke(local_aws, name)
    lam = local_aws.client("lambda")
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"GREETING": "changed"}})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    _, after, report = invoke(local_aws, name)
    assert after["env_id"] != before["env_id"]
    assert after["env"]["GREETING"] == "changed"
    assert report.init_duration_ms is not None
    assert wait_for(lambda: not host_pids(before["env_id"]), 30)


def test_parallel_invocations_get_parallel_environments(local_aws):
    name = create_function(local_aws, ECHO)
    results: list[dict] = []

    def call():
        results.append(invoke(local_aws, name, {"sleep": 0.6})[1])

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r["env_id"] for r in results}) == 2


def test_qualifier_in_name_arn_or_parameter_selects_the_version(local_aws, echo_fn):
    lam = local_aws.client("lambda")
    arn = lam.get_function(FunctionName=echo_fn)["Configuration"]["FunctionArn"]
    for kwargs in (
        {"FunctionName": arn},
        {"FunctionName": f"{echo_fn}:$LATEST"},
        {"FunctionName": echo_fn, "Qualifier": "$LATEST"},
    ):
        response = lam.invoke(Payload=b"{}", **kwargs)
        assert response["StatusCode"] == 200 and response["ExecutedVersion"] == "$LATEST"


def test_event_invocation_returns_202_and_runs_in_the_background(local_aws):
    code = "def handler(event, context):\n    print('ran', event['marker'])\n"
    name = create_function(local_aws, code)
    marker = uuid.uuid4().hex
    response = local_aws.client("lambda").invoke(
        FunctionName=name, InvocationType="Event", Payload=json.dumps({"marker": marker})
    )
    assert response["StatusCode"] == 202

    def logged() -> bool:
        try:
            events = local_aws.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        except local_aws.client("logs").exceptions.ResourceNotFoundException:
            return False
        return any(e["message"] == f"ran {marker}" for e in events)

    assert wait_for(logged, 30)


def test_dry_run_returns_204_without_running(local_aws, echo_fn):
    response = local_aws.client("lambda").invoke(FunctionName=echo_fn, InvocationType="DryRun")
    assert response["StatusCode"] == 204


def test_invalid_json_payload_is_invalid_request_content(local_aws, echo_fn):
    with pytest.raises(ClientError) as caught:
        local_aws.client("lambda").invoke(FunctionName=echo_fn, Payload=b"{not json")
    assert caught.value.response["Error"]["Code"] == "InvalidRequestContentException"


def test_payload_over_6_mb_is_request_too_large(local_aws, echo_fn):
    lam = local_aws.client("lambda")
    with pytest.raises(ClientError) as info:  # AWS's name, which botocore does not model for Invoke
        lam.invoke(FunctionName=echo_fn, Payload=json.dumps({"x": "a" * (6 * 1024 * 1024)}))
    assert info.value.response["Error"]["Code"] == "RequestEntityTooLargeException"


def test_unknown_function_is_resource_not_found(local_aws):
    lam = local_aws.client("lambda")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName=unique("missing"), Payload=b"{}")


def test_reserved_concurrency_zero_throttles(local_aws):
    lam = local_aws.client("lambda")
    name = create_function(local_aws, ECHO)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(lam.exceptions.TooManyRequestsException):
        lam.invoke(FunctionName=name, Payload=b"{}")
    lam.delete_function_concurrency(FunctionName=name)
    assert lam.invoke(FunctionName=name, Payload=b"{}")["StatusCode"] == 200


def test_aws_cli_invokes_a_function(local_aws, echo_fn, tmp_path):
    out = tmp_path / "out.json"
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=local_aws.region,
    )
    env.pop("AWS_PROFILE", None)
    cli = Path(sys.executable).with_name("aws")
    completed = subprocess.run(
        [
            str(cli),
            "--endpoint-url",
            local_aws.url,
            "lambda",
            "invoke",
            "--function-name",
            echo_fn,
            "--payload",
            '{"say": "cli"}',
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["StatusCode"] == 200
    assert json.loads(out.read_text())["event"] == {"say": "cli"}


def test_file_system_configs_survive_create_and_update(local_aws):
    lam = local_aws.client("lambda")
    configs = [
        {
            "Arn": "arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-0123456789abcdef0",
            "LocalMountPath": "/mnt/ml",
        }
    ]
    name = create_function(local_aws, ECHO, FileSystemConfigs=configs)
    assert lam.get_function_configuration(FunctionName=name)["FileSystemConfigs"] == configs
    moved = [dict(configs[0], LocalMountPath="/mnt/other")]
    lam.update_function_configuration(FunctionName=name, FileSystemConfigs=moved)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    assert lam.get_function(FunctionName=name)["Configuration"]["FileSystemConfigs"] == moved
    version = lam.publish_version(FunctionName=name)["Version"]
    assert lam.get_function_configuration(FunctionName=name, Qualifier=version)["FileSystemConfigs"] == moved


def efs_access_point(local_aws, path: str) -> tuple[list[dict], Path]:
    """A new file system's access point (PosixUser 1000, as the workshop's) at ``path``: the function's
    ``FileSystemConfigs`` mounting it at /mnt/ml, and the host folder that holds it."""
    efs = local_aws.client("efs")
    fs_id = efs.create_file_system(CreationToken=unique("fs"))["FileSystemId"]
    access_point = efs.create_access_point(
        FileSystemId=fs_id,
        PosixUser={"Uid": 1000, "Gid": 1000},
        RootDirectory={
            "Path": path,
            "CreationInfo": {"OwnerUid": 1000, "OwnerGid": 1000, "Permissions": "755"},
        },
    )
    configs = [{"Arn": access_point["AccessPointArn"], "LocalMountPath": "/mnt/ml"}]
    return configs, Path(local_aws.state_dir).resolve() / "efs" / fs_id / path.strip("/")


def test_a_function_reads_what_another_wrote_on_the_same_access_point(local_aws):
    configs, host_folder = efs_access_point(local_aws, "/ml")
    writer = (
        "import os\nfrom pathlib import Path\n\ndef handler(event, context):\n"
        "    Path(os.environ['DATA'], 'note.txt').write_text(event['text'])\n    return os.environ['DATA']\n"
    )
    reader = "import os\nfrom pathlib import Path\n\ndef handler(event, context):\n    return Path(os.environ['DATA'], 'note.txt').read_text()\n"
    variables = {"Variables": {"DATA": "/mnt/ml"}}
    _, folder, _ = invoke(
        local_aws,
        create_function(local_aws, writer, FileSystemConfigs=configs, Environment=variables),
        {"text": "shared"},
    )
    _, text, _ = invoke(
        local_aws, create_function(local_aws, reader, FileSystemConfigs=configs, Environment=variables)
    )
    assert text == "shared"
    assert folder == "/mnt/ml" or Path(folder) == host_folder
    assert (host_folder / "note.txt").read_text() == "shared"
