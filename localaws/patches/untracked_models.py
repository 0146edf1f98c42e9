"""moto's models are freed once nothing uses them, instead of living as long as the server.

Gap of stock moto 5.2.5 filled here: every instance of every moto model (``BaseModel.__new__``) is
appended to a class-level list, ``instances_tracked``, for moto's dashboard (``/moto-api/``), and is
never removed from it. Nothing moto makes is ever freed: each CloudWatch Logs event (a function
printing 200 MB kept the server 200 MB larger even with the events on disk), each SQS message, each
S3 object version and multipart part, long after they were deleted. Here new instances are not
tracked; the dashboard's model view then lists none (moto's state is unchanged: the backends hold
everything that exists), and S3's reset, which disposes the tracked keys' buffers, still disposes
every key its buckets hold.
"""

from __future__ import annotations

from moto.core.common_models import BaseModel


def _untracked_new(cls, *args, **kwargs):
    return object.__new__(cls)


def apply() -> None:
    BaseModel.__new__ = staticmethod(_untracked_new)
