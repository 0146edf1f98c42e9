"""Progress that a saved notebook shows right: one output line updated in place that ends as a summary
(a saved notebook cannot replay tqdm's widget, so it showed the bar at 0%); outside a notebook a tqdm
bar; or nothing.

:class:`LiveLine` is the mechanism; ``bench.Progress`` (invocations) and ``seeding.UploadProgress``
(bytes) say what the line reads.
"""

from __future__ import annotations

import threading
import time


def in_kernel() -> bool:
    """Whether this runs in a Jupyter kernel (where display handles are updated in place)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


class LiveLine:
    """A progress line over ``total`` units. Subclasses set their own fields before calling
    ``__init__`` (the first line is drawn there) and define :meth:`bundle`; they call :meth:`advance`
    with :attr:`lock` held."""

    def __init__(
        self,
        total: float,
        *,
        enabled: bool = True,
        unit: str = "it",
        unit_scale: bool = False,
        desc: str = "",
    ):
        self.total = total
        self.started = time.monotonic()
        self.lock = threading.Lock()  # boto3's transfer threads and the benchmark's workers call back
        self.handle = self.bar = None
        self.closed = False
        self._shown = 0.0
        if not enabled:
            return
        if in_kernel():
            from IPython.display import display

            self.handle = display(self.bundle(), raw=True, display_id=True)
        else:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=unit, unit_scale=unit_scale, desc=desc or None)

    def bundle(self) -> dict[str, str]:
        """What the notebook's line shows now (MIME type to text)."""
        raise NotImplementedError

    def advance(self, amount: float, *, description: str | None = None, at_end: bool = False) -> None:
        """Move the bar by ``amount``, or redraw the notebook's line (at most 5 times a second, and at the
        end)."""
        if self.bar is not None:
            if description is not None:
                self.bar.set_description(description)
            self.bar.update(amount)
        elif self.handle is not None and (at_end or time.monotonic() - self._shown > 0.2):
            self._shown = time.monotonic()
            self.handle.update(self.bundle(), raw=True)

    def close(self) -> None:
        """End the bar, or leave the notebook's line as its summary."""
        self.closed = True
        if self.bar is not None:
            self.bar.close()
        elif self.handle is not None:
            self.handle.update(self.bundle(), raw=True)
