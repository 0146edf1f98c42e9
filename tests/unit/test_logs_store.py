"""CloudWatch Logs events on disk read as moto's in-memory lists did, page by page.

See ``localaws/patches/logs_store.py``: the same events put into a stream kept on disk and into one
kept as moto's list answer GetLogEvents (both directions, with tokens and time ranges) and
FilterLogEvents (interleaved or not, with a pattern, page after page) identically, while pages stay
within CloudWatch Logs' 1 MB.
"""

from __future__ import annotations

import gc
import random

import pytest
from moto.logs.models import LogsBackend

from localaws import patches
from localaws.patches import logs_store


@pytest.fixture
def groups(tmp_path):
    """Two log groups with the same events: one on disk, one in moto's lists."""
    patches.apply_all()
    logs_store.open_store(tmp_path / "logs")
    backend = LogsBackend("us-east-1", "123456789012")
    rng = random.Random(3)
    made = []
    for kept in ("disk", "list"):
        backend.create_log_group(kept, {})
        group = backend.groups[kept]
        for stream in ("a", "b"):
            group.create_log_stream(stream)
            if kept == "list":
                group.streams[stream].events = []
        made.append(group)
    stamp = 1_000
    for _ in range(40):
        stamp += rng.choice([0, 1, 5])
        batch = [{"timestamp": stamp, "message": f"{rng.choice(['ERROR', 'INFO'])} {rng.random()}"}]
        stream = rng.choice("ab")
        for group in made:
            group.put_log_events(stream, [dict(e) for e in batch])
    yield made
    logs_store._store = None


_CLOCK = ("eventId", "ingestionTime", "lastIngestionTime", "creationTime", "arn")  # when and where, not what


def _strip(events):
    return [{k: v for k, v in e.items() if k not in _CLOCK} for e in events]


@pytest.mark.parametrize("head", [True, False])
@pytest.mark.parametrize("window", [(None, None), (1010, 1060)])
def test_get_log_events_pages_as_moto_did(groups, head, window):
    disk, memory = groups
    for limit in (1, 3, 7, None):
        pages = []
        for group in groups:
            token, answers = None, []
            for _ in range(60):
                events, back, forward = group.get_log_events("a", *window, limit, token, head)
                answers.append((_strip(events), back, forward))
                token = forward if head else back
            pages.append(answers)
        assert pages[0] == pages[1]
    described = [_strip([g.streams["a"].to_describe_dict()])[0] for g in groups]
    assert described[0] == described[1] and described[0]["firstEventTimestamp"] > 0


@pytest.mark.parametrize("interleaved", [True, False])
@pytest.mark.parametrize("pattern", ["", "ERROR"])
def test_filter_log_events_pages_as_moto_did(groups, interleaved, pattern):
    answers = []
    for group in groups:
        token, found = None, []
        while True:
            events, token, _ = group.filter_log_events(
                group.name, [], None, None, 4, token, pattern, interleaved
            )
            found.append([(e["logStreamName"], e["timestamp"], e["message"]) for e in events])
            if not token:
                break
            token = token.replace(f"{group.name}@", "@", 1)  # the groups' names differ, their tokens too
            token = f"{group.name}{token}"
        answers.append(found)
    assert answers[0] == answers[1] and sum(map(len, answers[0])) > 0


def test_a_page_holds_at_most_1_mb(groups):
    disk, _ = groups
    disk.create_log_stream("big")
    disk.put_log_events("big", [{"timestamp": 2_000 + i, "message": "z" * 300_000} for i in range(10)])
    events, _, forward = disk.get_log_events("big", None, None, None, None, True)
    assert len(events) == 3 and forward == f"f/{2:056d}"  # 3 x (300,000 + 26) bytes fit in 1,048,576
    events, _, _ = disk.get_log_events("big", None, None, None, forward, True)
    assert [e["timestamp"] for e in events] == [2003, 2004, 2005]


def test_a_deleted_streams_events_leave_the_file(groups):
    disk, _ = groups
    store, stream_id = logs_store._store, disk.streams["a"].events.id
    assert store.count(stream_id, None, None) > 0
    disk.delete_log_stream("a")
    gc.collect()
    disk.put_log_events("b", [{"timestamp": 5_000, "message": "later"}])
    assert store.count(stream_id, None, None) == 0
