"""The timer queue of one worker: every transaction timer, one deadline for the loop.

Owns ordering timers by deadline so the network layer arms a single loop.call_at for
next_deadline() (docs/architecture.md §3, step 7): one FIFO lane per fixed delay (T1 and its
doublings, T4, 64*T1, the FR timers: O(1) to start and expire), a heap for absolute deadlines
and a clock that went back. A timer that tolerates lateness (the cleanup timers D, H, I, J, K,
L) is started with a `tick`: its deadline is rounded up to the tick, so those that fall in one
tick expire together in one wake-up, as OpenSIPS's tm runs its timers on ticks. A cancelled
timer lets go of its subject at once; its entry stays until it reaches the front (never
compacted: that stalled the loop). Sans-IO: time enters as `now`.
"""

from __future__ import annotations

import collections
import heapq
import math
from collections.abc import Callable
from typing import Any


class Timer:
    __slots__ = ("deadline", "order", "callback", "subject", "cancelled", "_queue")

    def __init__(self, deadline: float, order: int, callback: Callable[[Any], Any], subject: Any, queue: TimerQueue):
        self.deadline = deadline
        self.order = order  # among equal deadlines, the one started first fires first
        self.callback = callback
        self.subject = subject  # what the callback is called with (a transaction)
        self.cancelled = False
        self._queue = queue

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.callback = None
            self.subject = None
            if self._queue is not None:
                self._queue._cancelled_one()
                self._queue = None


def _firing_order(timer: Timer) -> tuple[float, int]:
    return timer.deadline, timer.order


class TimerQueue:
    def __init__(self):
        self._lanes: dict[float, collections.deque[Timer]] = {}  # by delay
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = 0
        self._cancelled = 0  # entries of cancelled timers still in a lane or the heap

    def __len__(self) -> int:
        """Live timers."""
        return len(self._heap) + sum(map(len, self._lanes.values())) - self._cancelled

    def call_later(self, now: float, delay: float, callback: Callable[[Any], Any], subject: Any,
                   tick: float = 0.0) -> Timer:
        """callback(subject) at now + delay, or (tick > 0) at the first multiple of `tick` from then."""
        deadline = now + delay
        if tick > 0.0:
            deadline = round(math.ceil(deadline / tick - 1e-9) * tick, 9)
        lane = self._lanes.get(delay)
        if lane is None:
            lane = self._lanes[delay] = collections.deque()
        elif lane and lane[-1].deadline > deadline:
            return self.call_at(deadline, callback, subject)  # the clock went back: keep the lane in order
        self._order += 1
        timer = Timer(deadline, self._order, callback, subject, self)
        lane.append(timer)
        return timer

    def call_at(self, deadline: float, callback: Callable[[Any], Any], subject: Any) -> Timer:
        """callback(subject) at `deadline`."""
        self._order += 1
        timer = Timer(deadline, self._order, callback, subject, self)
        heapq.heappush(self._heap, (deadline, timer.order, timer))
        return timer

    def _cancelled_one(self) -> None:
        self._cancelled += 1

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
            self._cancelled -= 1
        earliest = heap[0][0] if heap else None
        for lane in self._lanes.values():
            while lane and lane[0].cancelled:
                lane.popleft()
                self._cancelled -= 1
            if lane and (earliest is None or lane[0].deadline < earliest):
                earliest = lane[0].deadline
        return earliest

    def expire(self, now: float) -> list[tuple[Callable[[Any], Any], Any]]:
        """Remove the timers due at `now`; their (callback, subject), earliest first, for the
        caller to run. A fired timer lets go of both (no reference cycle survives it)."""
        due: list[Timer] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            due.append(heapq.heappop(heap)[2])
        for lane in self._lanes.values():
            while lane and lane[0].deadline <= now:
                due.append(lane.popleft())
        if len(due) > 1:
            due.sort(key=_firing_order)
        fired = []
        for timer in due:
            if timer.cancelled:
                self._cancelled -= 1
                continue
            fired.append((timer.callback, timer.subject))
            timer.cancelled = True  # fired: cancel() is now a no-op
            timer.callback, timer.subject, timer._queue = None, None, None
        return fired
