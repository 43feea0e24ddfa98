"""Saturation of one worker, read from its event loop's lag (sans-IO).

Owns when a worker counts as saturated, the signal that sheds new INVITEs with 503 and
Retry-After (fastds/dispatch/proxy.py) -- never in-dialog requests or responses: the
worker arms a tick every TICK_S; a tick that fires more than FASTDS_OVERLOAD_LAG_MS late
means the loop cannot keep up; it counts as recovered once a tick is back under half
that (hysteresis, so one late tick does not flap). Times come in as arguments.
"""

from __future__ import annotations

TICK_S = 0.1


class LoopLag:
    def __init__(self, threshold_s: float):
        self.threshold_s = threshold_s
        self.saturated = False
        self.last_lag_s = 0.0

    def tick(self, due: float, now: float) -> bool | None:
        """A tick due at `due` fired at `now`: the new saturation when it changed, else None."""
        self.last_lag_s = max(0.0, now - due)
        if not self.saturated and self.last_lag_s > self.threshold_s:
            self.saturated = True
            return True
        if self.saturated and self.last_lag_s < self.threshold_s / 2:
            self.saturated = False
            return False
        return None
