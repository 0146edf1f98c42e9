"""Asynchronous invocation (``InvocationType=Event``) as Lambda runs it: a queue, retries, destinations, DLQ.

What AWS documents, and what this module does:

- Invoke answers 202 once the event is queued; a separate process reads the queue and runs the
  function (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html). Here: an in-memory
  queue served by a few worker threads of the server.
- A function error (the handler raised, a timeout, a crash) is retried ``MaximumRetryAttempts`` times
  (default 2), one minute after the first attempt and two minutes after the second
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html). The delays are
  AWS's unless ``LOCALAWS_LAMBDA_ASYNC_RETRY_SECONDS`` says otherwise (``"0.5"`` = 0.5 s then 1 s;
  ``"0.5,2"`` = 0.5 s then 2 s), which is for tests. Throttles (429) and service errors (5xx) put
  the event back with a backoff from 1 s up to 5 minutes, without counting as an attempt.
- An event older than ``MaximumEventAgeInSeconds`` (default 21600, six hours) is not run again.
  Settings come from the event invoke config of the invoked qualifier
  (:mod:`localaws.patches.lambda_event_invoke`;
  https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-configuring.html).
- A success goes to the ``OnSuccess`` destination, an event that exhausted its retries or its age to
  ``OnFailure`` (SQS, SNS, Lambda or EventBridge), as an invocation record ``{version, timestamp,
  requestContext {requestId, functionArn, condition, approximateInvokeCount}, requestPayload,
  responseContext {statusCode, executedVersion, functionError}, responsePayload}``; a failed event
  also goes to the function's ``DeadLetterConfig`` queue or topic: the original payload, with the
  message attributes ``RequestID``, ``ErrorCode`` and ``ErrorMessage`` (truncated to 1 KB)
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html). With reserved
  concurrency 0, events go there at once, without retries (same page).
- Lambda passes ``ClientContext`` to synchronous invocations only
  (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html), so an event runs without it.

Not emulated: events still queued (waiting for a retry or a free environment) when the server stops
are lost, since the queue lives in the server's memory; AWS keeps them. Delivery failures are logged
(AWS counts them in the ``DestinationDeliveryFailures`` metric) and not retried. An S3 bucket as
on-failure destination is accepted by the API but nothing is written to it (its object layout is
not emulated); the failure is logged.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from localaws.lambda_engine.errors import LambdaServiceError
from localaws.lambda_engine.function_spec import FunctionSpec, resolve
from localaws.lambda_engine.invocation import Outcome

log = logging.getLogger(__name__)

RETRY_SETTING = "LOCALAWS_LAMBDA_ASYNC_RETRY_SECONDS"
AWS_RETRY_DELAYS_S = (60.0, 120.0)
DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_AGE_S = 21600
THROTTLE_BACKOFF_MAX_S = 300.0
ERROR_MESSAGE_BYTES = 1024
WORKERS = 4


def retry_delays() -> tuple[float, float]:
    """The waits before the first and the second retry: AWS's, or the explicit local setting."""
    value = os.environ.get(RETRY_SETTING, "").strip()
    if not value:
        return AWS_RETRY_DELAYS_S
    try:
        numbers = [float(part) for part in value.split(",")]
        if any(number < 0 for number in numbers):
            raise ValueError(value)
    except ValueError:
        raise ValueError(
            f"{RETRY_SETTING}={value!r} is not a number of seconds >= 0: use e.g. '0.5' or '0.5,1', "
            "or unset it for AWS's 60 and 120 s."
        ) from None
    first = numbers[0]
    return first, numbers[1] if len(numbers) > 1 else 2 * first


@dataclass(order=True)
class AsyncEvent:
    due: float
    seq: int
    spec: FunctionSpec = field(compare=False)
    payload: bytes = field(compare=False)
    request_id: str = field(compare=False)
    enqueued: float = field(compare=False)
    attempts: int = field(default=0, compare=False)
    throttles: int = field(default=0, compare=False)
    outcome: Outcome | None = field(default=None, compare=False)


def _iso_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def _json_or_text(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return data.decode(errors="replace")


def invocation_record(event: AsyncEvent, condition: str) -> dict[str, Any]:
    """The record Lambda sends to a destination (condition: Success, RetriesExhausted, EventAgeExceeded)."""
    spec = event.spec
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": _iso_now(),
        "requestContext": {
            "requestId": event.request_id,
            "functionArn": f"{spec.function_arn}:{spec.qualifier or '$LATEST'}",
            "condition": condition,
            "approximateInvokeCount": event.attempts,
        },
        "requestPayload": _json_or_text(event.payload),
    }
    if event.outcome is not None:
        context = {"statusCode": 200, "executedVersion": spec.version}
        if event.outcome.function_error:
            context["functionError"] = event.outcome.function_error
        record["responseContext"] = context
        record["responsePayload"] = _json_or_text(event.outcome.payload)
    return record


def _default_settings(spec: FunctionSpec) -> dict[str, Any]:
    from localaws.patches.lambda_event_invoke import event_invoke_config

    return (
        event_invoke_config(spec.name, spec.qualifier, account_id=spec.account_id, region=spec.region) or {}
    )


def _default_dead_letter(spec: FunctionSpec) -> str | None:
    from moto.awslambda.utils import get_backend

    try:
        fn = get_backend(spec.account_id, spec.region).get_function(spec.name)
    except Exception:  # noqa: BLE001 - the function is gone: nothing to send to
        return None
    return (getattr(fn, "dead_letter_config", None) or {}).get("TargetArn")


def _default_refresh(spec: FunctionSpec) -> FunctionSpec:
    return resolve(spec.name, spec.qualifier, account_id=spec.account_id, region=spec.region, route=True)


class AsyncQueue:
    """The asynchronous invocation queue of one engine.

    ``run(spec, payload, request_id) -> Outcome`` runs one attempt. The other callables are seams for
    tests: ``settings(spec)`` (the event invoke config), ``dead_letter(spec)`` (DLQ target ARN),
    ``refresh(spec)`` (the spec a retry runs), ``deliver(arn, kind, body, attributes)``.
    """

    def __init__(
        self,
        run: Callable[[FunctionSpec, bytes, str], Outcome],
        url: str,
        *,
        closed: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
        settings: Callable[[FunctionSpec], dict] = _default_settings,
        dead_letter: Callable[[FunctionSpec], str | None] = _default_dead_letter,
        refresh: Callable[[FunctionSpec], FunctionSpec] = _default_refresh,
        deliver: Callable[[str, str, str, dict[str, tuple[str, str]]], None] | None = None,
        workers: int = WORKERS,
    ):
        self._run, self._url, self._closed, self._clock = run, url, closed, clock
        self._settings, self._dead_letter, self._refresh = settings, dead_letter, refresh
        self._deliver = deliver or self._deliver_with_boto3
        self._delays = retry_delays()
        self._heap: list[AsyncEvent] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._workers = workers
        self._started = False
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()

    # --- queue -------------------------------------------------------------------------------------

    def submit(self, spec: FunctionSpec, payload: bytes, request_id: str) -> None:
        """Queue an event (Invoke has answered 202 by the time it runs)."""
        now = self._clock()
        self._push(AsyncEvent(now, next(self._seq), spec, payload, request_id, enqueued=now))
        if self._workers and not self._started:
            with self._cond:
                if not self._started:
                    self._started = True
                    for index in range(self._workers):
                        threading.Thread(target=self._work, name=f"lambda-async-{index}", daemon=True).start()

    def _push(self, event: AsyncEvent) -> None:
        with self._cond:
            heapq.heappush(self._heap, event)
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def run_due(self) -> int:
        """Process, in this thread, every event that is due now (for tests with their own clock)."""
        count = 0
        while True:
            with self._cond:
                if not self._heap or self._heap[0].due > self._clock():
                    return count
                event = heapq.heappop(self._heap)
            self.process(event)
            count += 1

    def _work(self) -> None:
        while not self._closed():
            with self._cond:
                wait = 1.0 if not self._heap else self._heap[0].due - self._clock()
                if wait > 0:
                    self._cond.wait(min(wait, 1.0))
                    continue
                event = heapq.heappop(self._heap)
            try:
                self.process(event)
            except Exception:  # noqa: BLE001 - a worker must survive one bad event
                log.exception("asynchronous invocation %s of %s", event.request_id, event.spec.name)

    # --- one attempt -------------------------------------------------------------------------------

    def process(self, event: AsyncEvent) -> None:
        """One attempt of ``event``: run it, then retry, deliver or drop it as Lambda would."""
        settings = self._settings(event.spec)
        max_age = float(settings.get("MaximumEventAgeInSeconds", DEFAULT_MAX_AGE_S))
        if self._clock() - event.enqueued > max_age:
            self._failed(event, settings, "EventAgeExceeded", 200 if event.outcome else 429)
            return
        if event.attempts:
            try:
                event.spec = self._refresh(event.spec)
            except LambdaServiceError as exc:
                log.info("asynchronous invocation %s dropped: %s", event.request_id, exc.message)
                return
        if event.spec.reserved_concurrency == 0:  # throttled for good: no retries
            self._failed(event, settings, "RetriesExhausted", 429, "Rate Exceeded.")
            return
        try:
            outcome = self._run(event.spec, event.payload, event.request_id)
        except LambdaServiceError as exc:
            if exc.status == 429 or exc.status >= 500:
                event.throttles += 1
                event.due = self._clock() + min(2.0 ** (event.throttles - 1), THROTTLE_BACKOFF_MAX_S)
                self._push(event)
            else:
                log.warning("asynchronous invocation of %s dropped: %s", event.spec.name, exc.message)
            return
        event.attempts += 1
        event.outcome = outcome
        if not outcome.function_error:
            self._send(settings, "OnSuccess", invocation_record(event, "Success"))
            return
        retries = int(settings.get("MaximumRetryAttempts", DEFAULT_MAX_RETRIES))
        if event.attempts <= retries:
            event.due = self._clock() + self._delays[min(event.attempts, len(self._delays)) - 1]
            self._push(event)
            return
        self._failed(event, settings, "RetriesExhausted", 200)

    def _failed(
        self, event: AsyncEvent, settings: dict, condition: str, code: int, message: str | None = None
    ) -> None:
        self._send(settings, "OnFailure", invocation_record(event, condition))
        target = self._dead_letter(event.spec)
        if not target:
            return
        if message is None:
            error = _json_or_text(event.outcome.payload) if event.outcome else None
            message = error.get("errorMessage", "") if isinstance(error, dict) else str(error or condition)
        attributes = {
            "RequestID": ("String", event.request_id),
            "ErrorCode": ("Number", str(code)),
            "ErrorMessage": (
                "String",
                message.encode()[:ERROR_MESSAGE_BYTES].decode(errors="ignore") or condition,
            ),
        }
        self._deliver_safely(target, "dead-letter", event.payload.decode(errors="replace"), attributes)

    def _send(self, settings: dict, kind: str, record: dict) -> None:
        target = ((settings.get("DestinationConfig") or {}).get(kind) or {}).get("Destination")
        if target:
            self._deliver_safely(target, kind, json.dumps(record), {})

    # --- delivery ----------------------------------------------------------------------------------

    def _deliver_safely(self, arn: str, kind: str, body: str, attributes: dict[str, tuple[str, str]]) -> None:
        try:
            self._deliver(arn, kind, body, attributes)
        except Exception as exc:  # noqa: BLE001 - AWS counts a DestinationDeliveryFailures metric
            log.warning("could not deliver an asynchronous invocation record to %s: %s", arn, exc)

    def _client(self, service: str, region: str):
        with self._clients_lock:
            if (service, region) not in self._clients:
                self._clients[(service, region)] = boto3.client(
                    service,
                    endpoint_url=self._url,
                    region_name=region,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                    config=Config(retries={"max_attempts": 2}),
                )
            return self._clients[(service, region)]

    def _deliver_with_boto3(
        self, arn: str, kind: str, body: str, attributes: dict[str, tuple[str, str]]
    ) -> None:
        """Send to an SQS queue, SNS topic, Lambda function or EventBridge bus, by the ARN's service."""
        _, _, service, region, account, resource = arn.split(":", 5)
        client = self._client(service, region)
        message_attributes = {k: {"DataType": t, "StringValue": v} for k, (t, v) in attributes.items()}
        if service == "sqs":
            queue_url = client.get_queue_url(QueueName=resource, QueueOwnerAWSAccountId=account)["QueueUrl"]
            client.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=message_attributes)
        elif service == "sns":
            client.publish(TopicArn=arn, Message=body, MessageAttributes=message_attributes)
        elif service == "lambda":
            client.invoke(FunctionName=arn, InvocationType="Event", Payload=body.encode())
        elif service == "events":
            # https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
            outcome = "Success" if kind == "OnSuccess" else "Failure"
            record = json.loads(body)
            client.put_events(
                Entries=[
                    {
                        "Source": "lambda",
                        "DetailType": f"Lambda Function Invocation Result - {outcome}",
                        "Detail": body,
                        "EventBusName": arn,
                        "Resources": [record["requestContext"]["functionArn"]],
                    }
                ]
            )
        else:
            raise ValueError(f"{arn} is not an SQS queue, SNS topic, Lambda function or EventBridge bus")


_lock = threading.Lock()


def queue_for(engine: Any) -> AsyncQueue:
    """The engine's asynchronous queue, created on first use; its workers end with the engine."""
    with _lock:
        queue = getattr(engine, "_async_queue", None)
        if queue is None:
            try:
                queue = AsyncQueue(engine._run_event, engine.url, closed=lambda: engine._closed)
            except ValueError as exc:  # a bad local setting: say so to the caller, as a modelled error
                raise LambdaServiceError(500, "ServiceException", str(exc)) from None
            engine._async_queue = queue
        return queue
