"""The timer queue of one worker: every transaction timer, one deadline for the loop.

Owns ordering timers by deadline (a heap; cancelled entries are skipped lazily) so the
network layer arms a single loop.call_at for next_deadline() instead of one handle per
transaction (DESIGN.md §3). Sans-IO: time only enters as `now` arguments.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any


class Timer:
    __slots__ = ("deadline", "callback", "args", "cancelled")

    def __init__(self, deadline: float, callback: Callable[..., Any], args: tuple):
        self.deadline = deadline
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class TimerQueue:
    def __init__(self):
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def call_at(self, deadline: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(deadline, callback, args)
        heapq.heappush(self._heap, (deadline, next(self._order), timer))
        return timer

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def expire(self, now: float) -> list[Timer]:
        """Remove and return the timers due at `now`, earliest first (the caller runs them)."""
        due = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            timer = heapq.heappop(heap)[2]
            if not timer.cancelled:
                due.append(timer)
        return due
