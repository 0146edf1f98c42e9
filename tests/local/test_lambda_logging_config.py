"""LoggingConfig as Lambda keeps and applies it: JSON platform events, log levels, a custom log group.

See ``localaws/patches/lambda_function_config.py`` (the API keeps it) and
``localaws/lambda_engine/log_format.py`` (the engine applies it). Text stays the default and keeps
the exact START/END/REPORT lines (``tests/local/test_lambda_engine.py`` pins them).
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.local.test_lambda_engine import create_function, wait_for

LOGGER = """
import logging
import os
import time

logger = logging.getLogger()


def handler(event, context):
    logger.debug("a debug line")
    logger.info("an info line")
    logger.warning("a warning line")
    print("a plain print")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    names = ("AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME")
    return {name: os.environ.get(name) for name in names}
"""


def _messages(local_aws, group: str, stream: str | None = None, count: int = 1) -> list[str]:
    logs = local_aws.client("logs")

    def read():
        try:
            kwargs = {"logStreamNames": [stream]} if stream else {}
            events = logs.filter_log_events(logGroupName=group, **kwargs)["events"]
        except logs.exceptions.ResourceNotFoundException:
            return None
        messages = [e["message"] for e in events]
        reports = [m for m in messages if '"platform.report"' in m or m.startswith("REPORT ")]
        return messages if len(reports) >= count else None

    return wait_for(read, timeout=30) or []


def _platform(messages: list[str]) -> list[dict]:
    events = []
    for message in messages:
        try:
            doc = json.loads(message)
        except ValueError:
            continue
        if isinstance(doc, dict) and str(doc.get("type", "")).startswith("platform."):
            events.append(doc)
    return events


def test_json_logging_config_is_kept_and_platform_lines_are_json_events_in_the_custom_group(local_aws):
    group = f"/workshop/custom-{uuid.uuid4().hex[:8]}"
    config = {"LogFormat": "JSON", "ApplicationLogLevel": "WARN", "SystemLogLevel": "INFO", "LogGroup": group}
    name = create_function(local_aws, LOGGER, LoggingConfig=config, MemorySize=256)
    lam = local_aws.client("lambda")
    assert lam.get_function_configuration(FunctionName=name)["LoggingConfig"] == config

    response = lam.invoke(FunctionName=name, Payload=b"{}")
    seen = json.loads(response["Payload"].read())
    assert seen["AWS_LAMBDA_LOG_FORMAT"] == "JSON" and seen["AWS_LAMBDA_LOG_LEVEL"] == "WARN"
    assert seen["AWS_LAMBDA_LOG_GROUP_NAME"] == group
    # a custom group's streams name the function: YYYY/MM/DD/<function>[<version>]<guid>
    stream = seen["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert re.fullmatch(rf"\d{{4}}/\d\d/\d\d/{name}\[\$LATEST\][0-9a-f]{{32}}", stream), stream

    messages = _messages(local_aws, group, stream)
    events = _platform(messages)
    assert [e["type"] for e in events] == ["platform.initStart", "platform.start", "platform.report"], (
        messages
    )
    for event in events:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["time"])
    init, start, report = (e["record"] for e in events)
    assert init["initializationType"] == "on-demand" and init["phase"] == "init"
    assert init["functionName"] == name and init["functionVersion"] == "$LATEST"
    assert init["runtimeVersion"].startswith("python:") and init["instanceMaxMemory"] == 256 * 1024 * 1024
    function_arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    request_id = response["ResponseMetadata"]["RequestId"]
    assert start == {"requestId": request_id, "functionArn": function_arn, "version": "$LATEST"}
    assert report["requestId"] == request_id and report["status"] == "success"
    metrics = report["metrics"]
    assert set(metrics) == {
        "durationMs",
        "billedDurationMs",
        "memorySizeMB",
        "maxMemoryUsedMB",
        "initDurationMs",
    }
    assert metrics["memorySizeMB"] == 256 and isinstance(metrics["billedDurationMs"], int)

    assert not any(m.startswith(("START RequestId", "END RequestId", "REPORT RequestId")) for m in messages)
    application = [json.loads(m) for m in messages if m.startswith("{") and '"level"' in m]
    assert [a["message"] for a in application] == ["a warning line"], messages  # WARN and above only
    assert not any("a plain print" in m or "an info line" in m for m in messages)  # INFO, filtered
    assert (
        local_aws.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
        == []
    )


def test_system_log_level_debug_adds_runtime_done_and_warn_leaves_no_platform_event(local_aws):
    group = f"/aws/lambda/levels-{uuid.uuid4().hex[:8]}"
    name = create_function(
        local_aws,
        LOGGER,
        name=group.rsplit("/", 1)[1],
        LoggingConfig={"LogFormat": "JSON", "SystemLogLevel": "DEBUG"},
    )
    lam = local_aws.client("lambda")
    config = lam.get_function_configuration(FunctionName=name)["LoggingConfig"]
    assert config == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "DEBUG",
        "LogGroup": group,
    }
    first = lam.invoke(FunctionName=name, Payload=b"{}")
    stream = json.loads(first["Payload"].read())["AWS_LAMBDA_LOG_STREAM_NAME"]
    events = _platform(_messages(local_aws, group, stream))
    assert [e["type"] for e in events] == [
        "platform.initStart",
        "platform.start",
        "platform.runtimeDone",
        "platform.report",
    ]
    assert events[2]["record"] == {"requestId": first["ResponseMetadata"]["RequestId"], "status": "success"}

    lam.update_function_configuration(FunctionName=name, LoggingConfig={"SystemLogLevel": "WARN"})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    assert lam.get_function_configuration(FunctionName=name)["LoggingConfig"]["SystemLogLevel"] == "WARN"
    second = lam.invoke(FunctionName=name, Payload=b"{}")
    stream = json.loads(second["Payload"].read())["AWS_LAMBDA_LOG_STREAM_NAME"]
    messages = wait_for(lambda: _messages_any(local_aws, group, stream), timeout=30)
    assert messages and _platform(messages) == [], messages
    assert any('"an info line"' in m for m in messages)  # the application level is still INFO


def _messages_any(local_aws, group: str, stream: str) -> list[str] | None:
    events = local_aws.client("logs").filter_log_events(logGroupName=group, logStreamNames=[stream])["events"]
    messages = [e["message"] for e in events]
    return messages if any("a warning line" in m for m in messages) else None


def test_a_timeout_is_a_platform_report_with_status_timeout(local_aws):
    name = create_function(local_aws, LOGGER, Timeout=1, LoggingConfig={"LogFormat": "JSON"})
    response = local_aws.client("lambda").invoke(
        FunctionName=name, Payload=json.dumps({"sleep": 3}), LogType="Tail"
    )
    assert response.get("FunctionError") == "Unhandled"
    reports = [
        e for e in _platform(_messages(local_aws, f"/aws/lambda/{name}")) if e["type"] == "platform.report"
    ]
    assert reports and reports[-1]["record"]["status"] == "timeout"


def test_text_is_the_default_and_invalid_values_are_refused(local_aws):
    lam = local_aws.client("lambda")
    name = create_function(local_aws, LOGGER)
    config = lam.get_function_configuration(FunctionName=name)["LoggingConfig"]
    assert config == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"}
    response = lam.invoke(FunctionName=name, Payload=b"{}")
    assert json.loads(response["Payload"].read())["AWS_LAMBDA_LOG_FORMAT"] in (None, "Text")
    messages = _messages(local_aws, f"/aws/lambda/{name}")
    assert any(m.startswith("REPORT RequestId: ") for m in messages) and _platform(messages) == []
    with pytest.raises(ClientError) as info:
        lam.update_function_configuration(FunctionName=name, LoggingConfig={"LogFormat": "XML"})
    assert info.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_cloudformation_passes_logging_config_and_dead_letter_config(local_aws):
    from tests.conftest import lambda_zip
    from tests.local.test_lambda_cfn import function, role

    s3, sqs = local_aws.client("s3"), local_aws.client("sqs")
    bucket = f"logging-cfn-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="app.zip", Body=lambda_zip(LOGGER))
    queue = sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    name = f"logging-cfn-{uuid.uuid4().hex[:8]}"
    resources = {
        "Role": role(),
        "Function": function(
            {"S3Bucket": bucket, "S3Key": "app.zip"},
            name,
            LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "ERROR"},
            DeadLetterConfig={"TargetArn": queue_arn},
        ),
    }
    cfn = local_aws.client("cloudformation")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps({"Resources": resources}))
    try:
        config = local_aws.client("lambda").get_function_configuration(FunctionName=name)
        assert config["LoggingConfig"] == {
            "LogFormat": "JSON",
            "ApplicationLogLevel": "ERROR",
            "SystemLogLevel": "INFO",
            "LogGroup": f"/aws/lambda/{name}",
        }
        assert config["DeadLetterConfig"] == {"TargetArn": queue_arn}
    finally:
        cfn.delete_stack(StackName=name)
