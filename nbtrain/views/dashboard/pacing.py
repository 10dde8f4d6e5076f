"""How often the dashboard redraws while a run trains: a budget on the drawing's share of the time.

A redraw costs CPU in two places: in the kernel (taking a snapshot of the rows, sending the
new ones to the plot helper and reading back the PNG; the whole drawing when there is no
helper) and in the plot helper (updating its figure, encoding the PNG). Both take time from
training: the kernel's holds the GIL that the training thread needs between its torch
calls, and the helper's takes a core from torch's threads when they use every core (an
intra-op parallel region waits for its slowest thread). So the redraws are spaced by what
they cost: after a redraw, the next one waits until ``cost / share`` seconds have passed
since the previous one began, where ``cost`` is the mean CPU seconds (kernel plus helper) of
the last few redraws. With ``DRAW_SHARE`` 3%, a redraw that costs 30 ms comes at most once a
second; cheaper ones come as often as ``min_interval`` allows. The budget adapts to what
this machine measures as the run goes on (a bigger picture, more runs, a busier machine),
and a run's first step is drawn at once (``reset``).
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Callable

__all__ = ["DRAW_SHARE", "RedrawPacer"]

DRAW_SHARE = 0.03  # while a run trains, drawing's CPU (kernel and helper) stays below this share of the time


class RedrawPacer:
    """When the next redraw may begin: ``wait()`` seconds from now (0: now).

    ``min_interval`` is the shortest time between two redraws; ``share`` the most of the
    wall time that drawing may take; ``window`` how many recent redraws the cost is the mean
    of. ``clock`` (seconds, monotonic) is there for tests. Call ``began()`` when a redraw
    starts and ``record(kernel_cpu, helper_cpu)`` with what it cost.
    """

    def __init__(self, min_interval: float, share: float = DRAW_SHARE, window: int = 5,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if isinstance(min_interval, bool) or not isinstance(min_interval, (int, float)) or min_interval < 0:
            raise ValueError(f"min_interval must be a number of seconds >= 0, got {min_interval!r}")
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
            raise ValueError(f"share must be a fraction in (0, 1], got {share!r}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an int >= 1, got {window!r}")
        self.min_interval = float(min_interval)
        self.share = float(share)
        self.clock = clock
        self.costs: deque = deque(maxlen=window)  # CPU seconds of the last redraws, kernel plus helper
        self._last = -math.inf

    @property
    def cost(self) -> float:
        """The mean CPU seconds of the last redraws (0 before the first)."""
        return sum(self.costs) / len(self.costs) if self.costs else 0.0

    def interval(self) -> float:
        """Seconds between the beginnings of two redraws: ``max(min_interval, cost / share)``."""
        return max(self.min_interval, self.cost / self.share)

    def reset(self) -> None:
        """A new run: its first redraw may come at once (the measured cost is kept)."""
        self._last = -math.inf

    def wait(self) -> float:
        """Seconds until the next redraw may begin (0: now)."""
        return max(0.0, self._last + self.interval() - self.clock())

    def began(self) -> None:
        """A redraw begins now."""
        self._last = self.clock()

    def record(self, kernel_cpu: float, helper_cpu: float = 0.0) -> None:
        """What a redraw cost: CPU seconds in the kernel and in the plot helper."""
        self.costs.append(max(0.0, kernel_cpu) + max(0.0, helper_cpu))
