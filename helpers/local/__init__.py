"""Deprecated alias of :mod:`localaws` (the embedded local AWS moved to its own top-level package).

``python -m helpers.local start|stop|status|url`` still works for one release, with the workshop's
settings (``WORKSHOP_STATE_DIR``, ``WORKSHOP_LOCAL_PORT``); use ``python -m localaws`` in new code.
"""
