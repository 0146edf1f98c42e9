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

Queued events live on disk, not in the server's memory (:mod:`.async_spool`, in
``<state>/lambda/async``), and outlive the server: ``localaws stop`` leaves them there, and the next
server on the same state folder runs them. That server starts with moto's memory empty, so an event
waits (checked every ``RECHECK_S``) until a function of its name and qualifier exists again in its
account and Region (the learner re-runs the notebook or stack that creates it), and runs then,
within its maximum age as AWS counts it from when Invoke accepted it (the function's event invoke
config went with moto's memory, so AWS's defaults apply to it: two retries, six hours); an event
whose function does not come back in that time is dropped and logged, as Lambda drops an event past
its age. An attempt cut short by the server stopping is run again, and not counted. Delivery failures are logged
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
from pathlib import Path
from typing import Any

from localaws.lambda_engine.async_spool import Spool
from localaws.lambda_engine.destinations import Destinations
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
RECHECK_S = 5.0  # how often an event kept from an earlier server looks for its function again


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
    spec: FunctionSpec | None = field(compare=False)  # None: kept from an earlier server, not yet found
    payload: bytes | None = field(compare=False)  # None while it waits on disk
    request_id: str = field(compare=False)
    enqueued: float = field(compare=False)
    attempts: int = field(default=0, compare=False)
    throttles: int = field(default=0, compare=False)
    outcome: Outcome | None = field(default=None, compare=False)
    function: tuple[str, str | None, str, str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.function is None and self.spec is not None:
            self.function = (self.spec.name, self.spec.qualifier, self.spec.account_id, self.spec.region)


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
        spool: Spool | None = None,
    ):
        self._run, self._url, self._closed, self._clock = run, url, closed, clock
        self._settings, self._dead_letter, self._refresh = settings, dead_letter, refresh
        self._deliver = deliver or Destinations(url).deliver
        self._delays = retry_delays()
        self._heap: list[AsyncEvent] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._workers = workers
        self._started = False
        self._spool = spool

    # --- queue -------------------------------------------------------------------------------------

    def submit(self, spec: FunctionSpec, payload: bytes, request_id: str) -> None:
        """Queue an event (Invoke has answered 202 by the time it runs)."""
        now = self._clock()
        event = AsyncEvent(now, next(self._seq), spec, payload, request_id, enqueued=now)
        if self._spool is not None:
            self._spool.add(request_id, payload, self._state(event))
            event.payload = None  # read again when it runs
        self._push(event)
        self._start_workers()

    def recover(self) -> int:
        """Queue the events an earlier server kept on disk; how many there were."""
        if self._spool is None:
            return 0
        loaded = self._spool.load()
        for request_id, state in loaded:
            event = AsyncEvent(
                self._monotonic(state["due"]), next(self._seq), None, None, request_id,
                enqueued=self._monotonic(state["enqueued"]), attempts=int(state.get("attempts", 0)),
                throttles=int(state.get("throttles", 0)),
                function=(state["function"], state.get("qualifier"), state["account_id"], state["region"]),
            )  # fmt: skip
            if event.attempts:
                event.outcome = Outcome(b"", state.get("function_error"), [])  # its payload stays on disk
            self._push(event)
        if loaded:
            log.info("%d asynchronous invocations kept by an earlier server are queued again", len(loaded))
            self._start_workers()
        return len(loaded)

    def _start_workers(self) -> None:
        if self._workers and not self._started:
            with self._cond:
                if not self._started:
                    self._started = True
                    for index in range(self._workers):
                        threading.Thread(target=self._work, name=f"lambda-async-{index}", daemon=True).start()

    # --- on disk -----------------------------------------------------------------------------------

    def _monotonic(self, wall: float) -> float:
        return self._clock() - (time.time() - float(wall))

    def _state(self, event: AsyncEvent) -> dict[str, Any]:
        name, qualifier, account_id, region = event.function
        to_wall = time.time() - self._clock()  # the queue's clock (monotonic) to wall-clock time
        return {
            "function": name, "qualifier": qualifier, "account_id": account_id, "region": region,
            "enqueued": to_wall + event.enqueued, "due": to_wall + event.due, "attempts": event.attempts,
            "throttles": event.throttles,
            "function_error": event.outcome.function_error if event.outcome is not None else None,
        }  # fmt: skip

    def _load(self, event: AsyncEvent) -> None:
        """Read the event's payload (and its last answer) from disk for an attempt."""
        if self._spool is None:
            return
        if event.payload is None:
            event.payload = self._spool.payload(event.request_id)
        if event.outcome is not None and not event.outcome.payload:
            event.outcome.payload = self._spool.outcome(event.request_id) or b""

    def _requeue(self, event: AsyncEvent, answer: bytes | None = None) -> None:
        """Put the event back (its state, and a new answer, written to disk first); its bytes leave memory."""
        if self._spool is not None:
            self._spool.update(event.request_id, self._state(event), answer)
            event.payload = None
            if event.outcome is not None:
                event.outcome = Outcome(b"", event.outcome.function_error, [])
        self._push(event)

    def _done(self, event: AsyncEvent) -> None:
        if self._spool is not None:
            self._spool.remove(event.request_id)

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
        if event.spec is None and not self._found(event):
            return
        self._load(event)
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
                self._done(event)
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
                self._requeue(event)
            else:
                log.warning("asynchronous invocation of %s dropped: %s", event.spec.name, exc.message)
                self._done(event)
            return
        if self._closed():  # the server is stopping: this attempt was cut short, not the function's doing
            self._requeue(event)
            return
        event.attempts += 1
        event.outcome = outcome
        if not outcome.function_error:
            self._send(settings, "OnSuccess", invocation_record(event, "Success"))
            self._done(event)
            return
        retries = int(settings.get("MaximumRetryAttempts", DEFAULT_MAX_RETRIES))
        if event.attempts <= retries:
            event.due = self._clock() + self._delays[min(event.attempts, len(self._delays)) - 1]
            self._requeue(event, outcome.payload)
            return
        self._failed(event, settings, "RetriesExhausted", 200)

    def _found(self, event: AsyncEvent) -> bool:
        """Whether the function of an event kept from an earlier server exists again (else it waits, or is
        dropped past AWS's default maximum age)."""
        name, qualifier, account_id, region = event.function
        try:
            event.spec = resolve(name, qualifier, account_id=account_id, region=region, route=True)
            return True
        except LambdaServiceError as exc:
            if self._clock() - event.enqueued > DEFAULT_MAX_AGE_S:
                log.warning(
                    "asynchronous invocation %s of %s dropped: its function did not come back within %d s (%s)",
                    event.request_id, name, DEFAULT_MAX_AGE_S, exc.message,
                )  # fmt: skip
                self._done(event)
            else:
                event.due = self._clock() + RECHECK_S
                self._push(event)
            return False

    def _failed(
        self, event: AsyncEvent, settings: dict, condition: str, code: int, message: str | None = None
    ) -> None:
        self._done(event)  # it leaves the queue whatever its delivery does (the payload is in memory)
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


_lock = threading.Lock()


def queue_for(engine: Any) -> AsyncQueue:
    """The engine's asynchronous queue, created on first use with the events an earlier server kept (see
    :meth:`AsyncQueue.recover`); its workers end with the engine."""
    with _lock:
        queue = getattr(engine, "_async_queue", None)
        if queue is None:
            try:
                queue = AsyncQueue(
                    engine._run_event,
                    engine.url,
                    closed=lambda: engine._closed,
                    spool=Spool(spool_folder(engine)),
                )
            except ValueError as exc:  # a bad local setting: say so to the caller, as a modelled error
                raise LambdaServiceError(500, "ServiceException", str(exc)) from None
            engine._async_queue = queue
            queue.recover()
        return queue


def spool_folder(engine: Any) -> Path:
    return Path(engine.state_dir) / "lambda" / "async"


def recover(engine: Any) -> None:
    """At the server's start: queue again the events an earlier server left on disk, if there are any."""
    if any(spool_folder(engine).glob("*.json")):
        try:
            queue_for(engine)
        except LambdaServiceError as exc:  # a bad local setting: the first Event invoke says it too
            log.error("the asynchronous invocations kept on disk wait: %s", exc.message)
