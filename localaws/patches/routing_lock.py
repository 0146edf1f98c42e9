"""moto's request routers are built one at a time, so that two first requests to a service never fail.

Gap of stock moto 5.2.5 on CPython before 3.12 filled here: moto builds a service's router (werkzeug
routing rules, compiled with ``ast.parse``) on the service's first request and caches it. The ``ast``
module of CPython 3.11 keeps its recursion depth in state shared by all threads
(https://github.com/python/cpython/issues/106905), so two threads building routers at once can fail
with ``SystemError: AST constructor recursion depth mismatch``: the first requests of a burst to a
service got a 500. Here routers are built under one lock (each once: later requests find it cached).
"""

from __future__ import annotations

import threading

from moto.core import responses, routing

_lock = threading.Lock()


def _serialised(build):
    def get_service_router(service_name: str):
        with _lock:
            return build(service_name)

    return get_service_router


def apply() -> None:
    responses.get_service_router = _serialised(routing.get_service_router)
