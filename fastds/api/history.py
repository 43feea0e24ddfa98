"""The panel's last 15 minutes: rates sampled by the API process into a bounded ring (sans-IO).

Owns turning two snapshots a sample apart into what the panel plots and lists: per node
calls/s (first picks: initial requests routed), failovers/s, 5xx sent, 503s for overload,
parse errors, flood-limited and untrusted drops (per second), call setup p50/p99 over the
interval (from the workers' setup histograms); per destination calls/s, failovers/s and
state, with when the state last changed and its last transitions (as seen by the samples,
so within one interval), and its final replies by class and timeouts over the last minute;
per process CPU share of a core and RSS. The ring keeps
RING_SAMPLES samples, so the history survives a browser reload and costs a fixed amount of
memory whatever runs. The clock is the caller's (Unix seconds).
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from fastds.api.processes import ProcessUsage
from fastds.api.snapshot import Snapshot
from fastds.dispatch.histogram import SETUP_BOUNDS_S, SETUP_COUNTERS, quantile

SAMPLE_INTERVAL_S = 2.0
RING_SAMPLES = int(15 * 60 / SAMPLE_INTERVAL_S)
TRANSITIONS_KEPT = 5
MINUTE_SAMPLES = int(60 / SAMPLE_INTERVAL_S) + 1
PER_MINUTE = ("2xx", "3xx", "4xx", "5xx", "6xx", "timeouts")
NODE_RATES = {  # plotted name -> the worker counters summed for it
    "failovers": ("failovers",), "replies_5xx": ("replies_5xx",),
    "overload_503": ("overload_rejected", "lag_rejected"), "parse_errors": ("parse_errors",),
    "flood_dropped": ("pike_dropped",), "untrusted": ("untrusted_rejected", "untrusted_dropped"),
}


@dataclasses.dataclass
class _Seen:
    """What the previous sample read, to difference against."""
    at: float
    totals: dict[str, int]
    picks: dict[int, tuple[int, int]]  # destination id -> (picks, failovers)
    cpu: dict[tuple[str, str, int], float]  # (process, worker, pid) -> CPU seconds


@dataclasses.dataclass
class DestinationHistory:
    state: str
    since: float  # when the samples first saw it in this state
    transitions: collections.deque  # (at, old, new), newest last


class History:
    def __init__(self, samples: int = RING_SAMPLES):
        self.ring: collections.deque[dict[str, Any]] = collections.deque(maxlen=samples)
        self.destinations: dict[int, DestinationHistory] = {}
        self._seen: _Seen | None = None
        # the last minute's replies by class and timeouts: (when, destination id -> the counts)
        self._minute: collections.deque[tuple[float, dict[int, tuple[int, ...]]]] = collections.deque(
            maxlen=MINUTE_SAMPLES)

    def sample(self, snapshot: Snapshot, processes: list[ProcessUsage], now: float) -> dict[str, Any] | None:
        """Read one sample; the first call only sets the baseline (None)."""
        totals = snapshot.totals()
        picks = {live.destination.id: (live.picks, live.failovers) for live in snapshot.destinations}
        cpu = {(p.name, p.index, p.pid): p.cpu_s for p in processes}
        self._states(snapshot, now)
        self._minute.append((now, {live.destination.id: (*live.replies, live.timeouts)
                                   for live in snapshot.destinations}))
        seen, self._seen = self._seen, _Seen(now, totals, picks, cpu)
        if seen is None or now <= seen.at:
            return None
        elapsed = now - seen.at

        def rate(new: int, old: int) -> float:  # a counter that went back (a worker respawned) restarts at 0
            return round(max(0, new - old if new >= old else new) / elapsed, 3)

        setup = [max(0, totals.get(name, 0) - seen.totals.get(name, 0)) for name in SETUP_COUNTERS[:-2]]
        p50, p99 = (quantile(q, SETUP_BOUNDS_S, setup) for q in (0.5, 0.99))
        entry = {
            "t": round(now, 3),
            "calls": round(sum(rate(p, seen.picks.get(i, (0, 0))[0]) for i, (p, _) in picks.items()), 3),
            **{name: round(sum(rate(totals.get(c, 0), seen.totals.get(c, 0)) for c in counters), 3)
               for name, counters in NODE_RATES.items()},
            "setup_p50_ms": None if p50 is None else round(p50 * 1000, 2),
            "setup_p99_ms": None if p99 is None else round(p99 * 1000, 2),
            "destinations": {str(i): [rate(p, seen.picks.get(i, (0, 0))[0]), rate(f, seen.picks.get(i, (0, 0))[1]),
                                      self.destinations[i].state] for i, (p, f) in picks.items()},
            "processes": [{"process": p.name, "worker": p.index, "rss_bytes": p.rss_bytes,
                           "cpu_share": round(max(0.0, p.cpu_s - seen.cpu.get((p.name, p.index, p.pid), p.cpu_s))
                                              / elapsed, 4)} for p in processes],
        }
        self.ring.append(entry)
        return entry

    def _states(self, snapshot: Snapshot, now: float) -> None:
        current = {live.destination.id: live.state.label for live in snapshot.destinations}
        for dest_id in set(self.destinations) - set(current):
            del self.destinations[dest_id]  # removed by a reload
        for dest_id, state in current.items():
            known = self.destinations.get(dest_id)
            if known is None:
                self.destinations[dest_id] = DestinationHistory(state, now, collections.deque(maxlen=TRANSITIONS_KEPT))
            elif known.state != state:
                known.transitions.append((round(now, 3), known.state, state))
                known.state, known.since = state, now

    def since(self, after: float) -> list[dict[str, Any]]:
        """The samples taken after `after` (Unix seconds), oldest first."""
        return [entry for entry in self.ring if entry["t"] > after]

    def per_minute(self, dest_id: int) -> dict[str, float] | None:
        """Replies by class and timeouts per minute over the samples of the last minute."""
        seen = [(at, counts[dest_id]) for at, counts in self._minute if dest_id in counts]
        if len(seen) < 2 or seen[-1][0] <= seen[0][0]:
            return None
        (first_at, first), (last_at, last) = seen[0], seen[-1]
        scale = 60.0 / (last_at - first_at)
        return {name: round(max(0, new - old) * scale, 1) for name, old, new in zip(PER_MINUTE, first, last)}

    def destinations_json(self) -> dict[str, dict[str, Any]]:
        return {str(dest_id): {"state": known.state, "since": round(known.since, 3),
                               "transitions": [list(t) for t in known.transitions],
                               "per_minute": self.per_minute(dest_id)}
                for dest_id, known in self.destinations.items()}
