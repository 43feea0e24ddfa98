"""The timer queue of one worker: every transaction timer, one deadline for the loop.

Owns ordering timers by deadline (a heap) so the network layer arms a single
loop.call_at for next_deadline() instead of one handle per transaction (docs/architecture.md §3).
A cancelled timer drops its callback and arguments at once (so it keeps no transaction
alive); its small entry stays in the heap until it comes to the top. The heap is never
compacted: rebuilding it is O(n) at once, and with ~300,000 entries per worker at 700 calls/s
that stalled the loop ~300 ms every minute in a 30-minute soak. What lingers is bounded by
the rate times the longest timer a call cancels (FR-INV, 120 s): ~100 bytes an entry, ~10 MB
per worker at 700 calls/s. Sans-IO: time only enters as `now` arguments.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any


class Timer:
    __slots__ = ("deadline", "callback", "args", "cancelled", "_queue")

    def __init__(self, deadline: float, callback: Callable[..., Any], args: tuple, queue: "TimerQueue"):
        self.deadline = deadline
        self.callback = callback
        self.args = args
        self.cancelled = False
        self._queue = queue

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.callback = None
            self.args = ()
            if self._queue is not None:
                self._queue._cancelled_one()
                self._queue = None


class TimerQueue:
    def __init__(self):
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self._cancelled = 0

    def __len__(self) -> int:
        """Live timers."""
        return len(self._heap) - self._cancelled

    def call_at(self, deadline: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(deadline, callback, args, self)
        heapq.heappush(self._heap, (deadline, next(self._order), timer))
        return timer

    def _cancelled_one(self) -> None:
        self._cancelled += 1

    def _pop(self) -> Timer:
        timer = heapq.heappop(self._heap)[2]
        if timer.cancelled:
            self._cancelled -= 1
        return timer

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            self._pop()
        return heap[0][0] if heap else None

    def expire(self, now: float) -> list[tuple[Callable[..., Any], tuple]]:
        """Remove the timers due at `now`; their (callback, args), earliest first, for the
        caller to run. A fired timer lets go of both (no reference cycle survives it)."""
        due = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            timer = self._pop()
            if not timer.cancelled:
                due.append((timer.callback, timer.args))
                timer.cancelled = True  # fired: cancel() is now a no-op
                timer.callback, timer.args, timer._queue = None, (), None
        return due
