"""Asynchronous events a stopped server had queued run once a server starts again on its state folder.

Lambda keeps an accepted event until it has run (up to six hours). The local server keeps queued events
in ``<state>/lambda/async`` (``localaws/lambda_engine/async_spool.py``); a new server starts with moto's
memory empty, so each event runs once its function exists again (issue 23, item 8).
"""

from __future__ import annotations

import json
import time

from localaws import server
from tests.conftest import lambda_zip, start_local_aws

EVENTS = 40
SLOW = "import time\n\ndef handler(event, context):\n    time.sleep(1)\n    print(f\"ran {event['n']}\")\n"


def _create(handle, name: str) -> None:
    lam = handle.client("lambda")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=handle.lambda_role(),
        Handler="app.handler",
        Code={"ZipFile": lambda_zip(SLOW)},
        Timeout=30,
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})


def _ran(handle, name: str) -> set[int]:
    """The events whose handler printed, as the function's log group says."""
    logs = handle.client("logs")
    try:
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName=f"/aws/lambda/{name}")
        return {
            int(e["message"].split()[1])
            for page in pages
            for e in page["events"]
            if e["message"].startswith("ran ")
        }
    except logs.exceptions.ResourceNotFoundException:
        return set()


def test_events_queued_when_the_server_stops_run_after_it_starts_again(tmp_path):
    state = tmp_path / "state"
    first = start_local_aws(state)
    name = "kept-events"
    try:
        _create(first, name)
        lam = first.client("lambda")
        for n in range(EVENTS):
            assert (
                lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"n": n}))[
                    "StatusCode"
                ]
                == 202
            )
        before = _ran(first, name)
    finally:
        server.stop(state)
    kept = list((state / "lambda" / "async").glob("*.json"))
    assert len(kept) >= EVENTS - len(before) > 0  # what had not run is on disk (and what was running)

    second = start_local_aws(state)
    try:
        _create(second, name)  # moto's memory went with the first server: the learner deploys again
        deadline = time.monotonic() + 240
        after: set[int] = set()
        while time.monotonic() < deadline and (before | after) != set(range(EVENTS)):
            time.sleep(1)
            after = _ran(second, name)
        assert before | after == set(range(EVENTS)), sorted(set(range(EVENTS)) - before - after)
        deadline = time.monotonic() + 60
        while list((state / "lambda" / "async").glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not list((state / "lambda" / "async").glob("*.json"))  # each one is forgotten once it ran
    finally:
        server.stop(state)
