"""Asynchronous invocations as Lambda runs them: retries, event age, destinations, dead-letter queue.

See ``localaws/lambda_engine/asynchronous.py`` and ``localaws/patches/lambda_event_invoke.py``.
The server of this module runs with ``LOCALAWS_LAMBDA_ASYNC_RETRY_SECONDS=0.4`` (retries after
0.4 s then 0.8 s instead of AWS's 1 and 2 minutes), the only thing shortened.
"""

from __future__ import annotations

import json
import os
import re
import uuid

import pytest
from botocore.exceptions import ClientError

from localaws import server
from localaws.lambda_engine.asynchronous import AsyncEvent, AsyncQueue, invocation_record, retry_delays
from localaws.lambda_engine.invocation import Outcome
from tests.conftest import start_local_aws
from tests.local.test_lambda_engine import create_function, wait_for

FAILS = """
def handler(event, context):
    print("attempt", context.aws_request_id)
    raise ValueError("no luck with " + event["item"])
"""
SUCCEEDS = """
def handler(event, context):
    return {"doubled": event["n"] * 2}
"""


@pytest.fixture(scope="module")
def quick_retries(tmp_path_factory):
    previous = os.environ.get("LOCALAWS_LAMBDA_ASYNC_RETRY_SECONDS")
    os.environ["LOCALAWS_LAMBDA_ASYNC_RETRY_SECONDS"] = "0.4"  # the server inherits it at start
    try:
        handle = start_local_aws(tmp_path_factory.mktemp("lambda-async"))
    finally:
        if previous is None:
            os.environ.pop("LOCALAWS_LAMBDA_ASYNC_RETRY_SECONDS")
        else:
            os.environ["LOCALAWS_LAMBDA_ASYNC_RETRY_SECONDS"] = previous
    yield handle
    server.stop(handle.state_dir)


def _queue(handle) -> tuple[str, str]:
    sqs = handle.client("sqs")
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _receive(handle, url: str, timeout: float = 15.0) -> dict | None:
    sqs = handle.client("sqs")

    def one():
        messages = sqs.receive_message(
            QueueUrl=url, MessageAttributeNames=["All"], WaitTimeSeconds=1, MaxNumberOfMessages=1
        ).get("Messages", [])
        return messages[0] if messages else None

    return wait_for(one, timeout=timeout, interval=0.1)


def _starts(handle, name: str) -> list[tuple[int, str]]:
    events = handle.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    return sorted(
        (e["timestamp"], m[1]) for e in events if (m := re.match(r"START RequestId: (\S+)", e["message"]))
    )


def test_a_failing_event_is_retried_twice_then_reaches_on_failure_and_the_dead_letter_queue(quick_retries):
    lam = quick_retries.client("lambda")
    dlq_url, dlq_arn = _queue(quick_retries)
    failure_url, failure_arn = _queue(quick_retries)
    name = create_function(quick_retries, FAILS, DeadLetterConfig={"TargetArn": dlq_arn})
    assert lam.get_function_configuration(FunctionName=name)["DeadLetterConfig"] == {"TargetArn": dlq_arn}
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": failure_arn}}
    )
    response = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"item": "pear"}))
    assert response["StatusCode"] == 202

    message = _receive(quick_retries, failure_url)
    assert message is not None, "no invocation record reached the on-failure queue"
    record = json.loads(message["Body"])
    request_id = record["requestContext"]["requestId"]
    assert record["version"] == "1.0" and re.match(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", record["timestamp"]
    )
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"{lam.get_function(FunctionName=name)['Configuration']['FunctionArn']}:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"item": "pear"}
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "no luck with pear"

    dead = _receive(quick_retries, dlq_url)
    assert dead is not None, "nothing reached the dead-letter queue"
    assert json.loads(dead["Body"]) == {"item": "pear"}  # the event, unchanged
    attributes = {k: (v["DataType"], v["StringValue"]) for k, v in dead["MessageAttributes"].items()}
    assert attributes == {
        "RequestID": ("String", request_id),
        "ErrorCode": ("Number", "200"),
        "ErrorMessage": ("String", "no luck with pear"),
    }
    starts = wait_for(lambda: [s for s in _starts(quick_retries, name) if s[1] == request_id] or None)
    assert len(starts) == 3, starts  # one request id for all three attempts, as on AWS
    gaps = [(b[0] - a[0]) / 1000 for a, b in zip(starts, starts[1:], strict=False)]
    assert gaps[0] >= 0.35 and gaps[1] >= 0.75, gaps  # 0.4 s then 0.8 s (AWS: 1 then 2 minutes)


def test_maximum_retry_attempts_zero_runs_once_and_success_goes_to_on_success(quick_retries):
    lam = quick_retries.client("lambda")
    failure_url, failure_arn = _queue(quick_retries)
    success_url, success_arn = _queue(quick_retries)
    failing = create_function(quick_retries, FAILS)
    lam.put_function_event_invoke_config(
        FunctionName=failing,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": failure_arn}},
    )
    lam.invoke(FunctionName=failing, InvocationType="Event", Payload=json.dumps({"item": "fig"}))
    record = json.loads(_receive(quick_retries, failure_url)["Body"])
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestContext"]["condition"] == "RetriesExhausted"

    working = create_function(quick_retries, SUCCEEDS)
    lam.publish_version(FunctionName=working)
    lam.create_alias(FunctionName=working, Name="live", FunctionVersion="1")
    lam.put_function_event_invoke_config(
        FunctionName=working, Qualifier="live", DestinationConfig={"OnSuccess": {"Destination": success_arn}}
    )
    lam.get_waiter("published_version_active").wait(FunctionName=working, Qualifier="1")
    lam.invoke(FunctionName=working, Qualifier="live", InvocationType="Event", Payload=json.dumps({"n": 21}))
    record = json.loads(_receive(quick_retries, success_url)["Body"])
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["functionArn"].endswith(f":function:{working}:live")
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "1"}
    assert record["requestPayload"] == {"n": 21} and record["responsePayload"] == {"doubled": 42}


def test_an_sns_destination_receives_the_record_as_the_topic_message(quick_retries):
    lam, sns, sqs = (quick_retries.client(s) for s in ("lambda", "sns", "sqs"))
    topic = sns.create_topic(Name=f"t-{uuid.uuid4().hex[:8]}")["TopicArn"]
    url, arn = _queue(quick_retries)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    name = create_function(quick_retries, SUCCEEDS)
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": topic}}
    )
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"n": 2}))
    message = _receive(quick_retries, url)
    assert message is not None and sqs is not None
    record = json.loads(json.loads(message["Body"])["Message"])
    assert record["responsePayload"] == {"doubled": 4}


def test_event_invoke_config_is_per_qualifier_put_overwrites_and_update_merges(quick_retries):
    lam = quick_retries.client("lambda")
    _, queue_arn = _queue(quick_retries)
    name = create_function(quick_retries, SUCCEEDS)
    lam.publish_version(FunctionName=name)
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]

    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=1, MaximumEventAgeInSeconds=600
    )
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)  # overwrites
    config = lam.get_function_event_invoke_config(FunctionName=name)
    assert config["FunctionArn"] == f"{arn}:$LATEST"
    assert config["MaximumRetryAttempts"] == 0 and "MaximumEventAgeInSeconds" not in config
    assert config["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}

    updated = lam.update_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": queue_arn}}
    )
    assert updated["MaximumRetryAttempts"] == 0  # kept
    assert updated["DestinationConfig"]["OnFailure"] == {"Destination": queue_arn}

    lam.put_function_event_invoke_config(FunctionName=name, Qualifier="1", MaximumEventAgeInSeconds=60)
    version = lam.get_function_event_invoke_config(FunctionName=name, Qualifier="1")
    assert version["FunctionArn"] == f"{arn}:1" and version["MaximumEventAgeInSeconds"] == 60
    assert lam.get_function_event_invoke_config(FunctionName=name)["MaximumRetryAttempts"] == 0
    listed = lam.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"]
    assert sorted(c["FunctionArn"] for c in listed) == sorted([f"{arn}:$LATEST", f"{arn}:1"])

    with pytest.raises(ClientError) as info:
        lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=3)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    bucket = "arn:aws:s3:::records"
    with pytest.raises(ClientError) as info:
        lam.put_function_event_invoke_config(
            FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": bucket}}
        )
    assert info.value.response["Error"]["Code"] == "InvalidParameterValueException"
    lam.delete_function_event_invoke_config(FunctionName=name, Qualifier="1")
    with pytest.raises(ClientError) as info:
        lam.get_function_event_invoke_config(FunctionName=name, Qualifier="1")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert lam.get_function_event_invoke_config(FunctionName=name)["MaximumRetryAttempts"] == 0


# --- the queue's rules, in-process with a clock of the test's own (MaximumEventAgeInSeconds is >= 60 s) ---


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _spec():
    from localaws.lambda_engine.function_spec import FunctionSpec

    return FunctionSpec(
        account_id="123456789012", region="us-east-1", name="f",
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:f", version="$LATEST", qualifier=None,
        handler="app.handler", runtime="python3.12", memory_mb=128, timeout_s=3.0, variables={},
        file_systems=[], reserved_concurrency=None, role="r", ephemeral_storage_mb=512,
        architectures=["x86_64"], layers=[], code_sha256="", key="k", code_bytes=b"",
    )  # fmt: skip


def _local_queue(settings: dict, clock: _Clock, runs: list, error: bool = True):
    delivered: list[tuple[str, str, dict]] = []

    def run(spec, payload, request_id):
        runs.append(clock.now)
        return Outcome(
            b'{"errorMessage": "boom", "errorType": "E"}' if error else b"1",
            "Unhandled" if error else None,
            [],
        )

    queue = AsyncQueue(
        run, "http://127.0.0.1:1", clock=clock, settings=lambda spec: settings,
        dead_letter=lambda spec: "arn:aws:sqs:us-east-1:123456789012:dlq", refresh=lambda spec: spec,
        deliver=lambda arn, kind, body, attributes: delivered.append((arn, body, attributes)), workers=0,
    )  # fmt: skip
    return queue, delivered


def test_the_retry_setting_is_read_as_seconds_and_a_bad_value_is_explained(monkeypatch):
    monkeypatch.setenv("LOCALAWS_LAMBDA_ASYNC_RETRY_SECONDS", "0.5")
    assert retry_delays() == (0.5, 1.0)
    monkeypatch.setenv("LOCALAWS_LAMBDA_ASYNC_RETRY_SECONDS", "0.5,3")
    assert retry_delays() == (0.5, 3.0)
    for bad in ("soon", "-1"):
        monkeypatch.setenv("LOCALAWS_LAMBDA_ASYNC_RETRY_SECONDS", bad)
        with pytest.raises(
            ValueError, match="LOCALAWS_LAMBDA_ASYNC_RETRY_SECONDS=.* is not a number of seconds"
        ):
            retry_delays()


def test_the_default_retry_delays_are_awss_one_then_two_minutes(monkeypatch):
    monkeypatch.delenv("LOCALAWS_LAMBDA_ASYNC_RETRY_SECONDS", raising=False)
    assert retry_delays() == (60.0, 120.0)
    clock, runs = _Clock(), []
    queue, delivered = _local_queue({}, clock, runs)
    queue.submit(_spec(), b'{"a": 1}', "req-1")
    for step in (0, 59.9, 0.2, 119.8, 0.2):
        clock.now += step
        queue.run_due()
    assert [round(t - 1000, 1) for t in runs] == [0.0, 60.1, 180.1]
    assert len(delivered) == 1  # no destination configured: only the dead-letter queue
    arn, body, attributes = delivered[0]
    assert arn.endswith(":dlq") and json.loads(body) == {"a": 1}
    assert attributes == {
        "RequestID": ("String", "req-1"),
        "ErrorCode": ("Number", "200"),
        "ErrorMessage": ("String", "boom"),
    }


def test_an_event_older_than_maximum_event_age_is_not_retried_and_goes_to_on_failure(monkeypatch):
    monkeypatch.delenv("LOCALAWS_LAMBDA_ASYNC_RETRY_SECONDS", raising=False)
    clock, runs = _Clock(), []
    settings = {
        "MaximumEventAgeInSeconds": 90,
        "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:failed"}},
    }
    queue, delivered = _local_queue(settings, clock, runs)
    queue.submit(_spec(), b'{"a": 1}', "req-2")
    for step in (0, 60.5, 120.5):  # the second retry would start 181 s after the event arrived
        clock.now += step
        queue.run_due()
    assert len(runs) == 2 and queue.pending() == 0
    failed = [json.loads(body) for arn, body, _ in delivered if arn.endswith(":failed")]
    assert [r["requestContext"]["condition"] for r in failed] == ["EventAgeExceeded"]
    assert failed[0]["requestContext"]["approximateInvokeCount"] == 2


def test_the_record_of_a_success_has_no_function_error():
    event = AsyncEvent(
        0.0, 0, _spec(), b'{"n": 1}', "req-3", 0.0, attempts=1, outcome=Outcome(b'{"ok": true}', None, [])
    )
    record = invocation_record(event, "Success")
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"ok": True}


def test_reserved_concurrency_zero_sends_events_to_the_dead_letter_queue_without_running(quick_retries):
    lam = quick_retries.client("lambda")
    dlq_url, dlq_arn = _queue(quick_retries)
    failure_url, failure_arn = _queue(quick_retries)
    name = create_function(quick_retries, SUCCEEDS, DeadLetterConfig={"TargetArn": dlq_arn})
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": failure_arn}}
    )
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"n": 1}))
    dead = _receive(quick_retries, dlq_url)
    assert dead is not None and json.loads(dead["Body"]) == {"n": 1}
    assert dead["MessageAttributes"]["ErrorCode"]["StringValue"] == "429"
    record = json.loads(_receive(quick_retries, failure_url)["Body"])
    assert record["requestContext"]["approximateInvokeCount"] == 0 and "responseContext" not in record
    if _group_exists(quick_retries, name):  # the function never ran
        assert not _starts(quick_retries, name)


def _group_exists(handle, name: str) -> bool:
    groups = handle.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
    return bool(groups)


def test_a_lambda_destination_is_invoked_asynchronously_with_the_record(quick_retries):
    lam = quick_retries.client("lambda")
    receiver = create_function(
        quick_retries, "import json\n\ndef handler(event, context):\n    print('got', json.dumps(event))\n"
    )
    receiver_arn = lam.get_function(FunctionName=receiver)["Configuration"]["FunctionArn"]
    name = create_function(quick_retries, SUCCEEDS)
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": receiver_arn}}
    )
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"n": 5}))

    def received():
        if not _group_exists(quick_retries, receiver):
            return None
        events = quick_retries.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{receiver}")[
            "events"
        ]
        return next((json.loads(e["message"][4:]) for e in events if e["message"].startswith("got ")), None)

    record = wait_for(received, timeout=15, interval=0.2)
    assert record is not None and record["responsePayload"] == {"doubled": 10}
    assert record["requestContext"]["condition"] == "Success"


def test_throttles_are_retried_with_backoff_and_do_not_count_as_attempts(monkeypatch):
    from localaws.lambda_engine.errors import throttled

    monkeypatch.delenv("LOCALAWS_LAMBDA_ASYNC_RETRY_SECONDS", raising=False)
    clock, runs, delivered = _Clock(), [], []
    answers = [throttled("Rate Exceeded.", "ReservedFunctionConcurrentInvocationLimitExceeded")] * 2

    def run(spec, payload, request_id):
        runs.append(clock.now)
        if answers:
            raise answers.pop()
        return Outcome(b'"done"', None, [])

    settings = {"DestinationConfig": {"OnSuccess": {"Destination": "arn:aws:sqs:us-east-1:123456789012:ok"}}}
    queue = AsyncQueue(
        run, "http://127.0.0.1:1", clock=clock, settings=lambda spec: settings, dead_letter=lambda spec: None,
        refresh=lambda spec: spec, deliver=lambda arn, kind, body, attributes: delivered.append(body), workers=0,
    )  # fmt: skip
    queue.submit(_spec(), b"{}", "req-4")
    for step in (0, 1.0, 2.0):  # backoff 1 s, then 2 s
        clock.now += step
        queue.run_due()
    assert [t - 1000 for t in runs] == [0.0, 1.0, 3.0]
    assert [json.loads(body)["requestContext"]["approximateInvokeCount"] for body in delivered] == [1]


def test_an_eventbridge_destination_gets_lambdas_source_and_detail_type(quick_retries):
    lam, events, sqs = (quick_retries.client(s) for s in ("lambda", "events", "sqs"))
    bus = events.create_event_bus(Name=f"bus-{uuid.uuid4().hex[:8]}")["EventBusArn"]
    url, arn = _queue(quick_retries)
    rule = f"r-{uuid.uuid4().hex[:8]}"
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": ["lambda"]}))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    name = create_function(quick_retries, FAILS)
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0, DestinationConfig={"OnFailure": {"Destination": bus}}
    )
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"item": "plum"}))
    message = _receive(quick_retries, url)
    assert message is not None and sqs is not None, "nothing reached the rule's queue"
    event = json.loads(message["Body"])
    assert event["source"] == "lambda"
    assert event["detail-type"] == "Lambda Function Invocation Result - Failure"
    assert event["detail"]["requestContext"]["condition"] == "RetriesExhausted"
    assert event["detail"]["requestPayload"] == {"item": "plum"}
