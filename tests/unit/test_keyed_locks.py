"""One lock per key (localaws/lambda_engine/keyed_locks.py): work on one key never waits for another's."""

from __future__ import annotations

import threading

from localaws.lambda_engine.keyed_locks import KeyedLocks


def test_another_key_is_not_held_up_and_the_same_key_waits():
    locks = KeyedLocks()
    inside, release = threading.Event(), threading.Event()

    def hold_a() -> None:
        with locks.hold("a"):
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=hold_a)
    holder.start()
    assert inside.wait(10)
    with locks.hold("b"):  # not blocked by "a"
        pass
    waited = threading.Event()

    def take_a() -> None:
        with locks.hold("a"):
            waited.set()

    taker = threading.Thread(target=take_a)
    taker.start()
    assert not waited.wait(0.2)  # "a" is held: it waits (a wait that passes on a slow machine too)
    release.set()
    holder.join(10)
    taker.join(10)
    assert waited.is_set()
    assert locks._locks == {}  # nothing kept once nobody holds or waits
