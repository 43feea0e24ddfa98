"""What the API shows of the running service, read from shared memory in one pass.

Owns the snapshot every read endpoint starts from (the JSON API, /mi ds_list, /metrics,
the panel): the current generation's sets and destinations with their live state,
picks, failovers, in-flight count and probe RTT, the address table rows published with
them, the workers' counter rows and the IPs their flood limits block (merged over the
workers). Reads only: topology and states are the prober's to write, counters and
blocked IPs the workers' (docs/architecture.md §7).
"""

from __future__ import annotations

import dataclasses

from fastds.dispatch.sets import Destination
from fastds.dispatch.state import DestinationState
from fastds.shm.layout import DESTINATION_COUNTERS, WORKER_COUNTERS, ShmView

REPLY_CLASSES = ("2xx", "3xx", "4xx", "5xx", "6xx")


@dataclasses.dataclass(frozen=True)
class LiveDestination:
    destination: Destination  # as published (its `state` is the one it was loaded with)
    state: DestinationState   # now
    picks: int
    failovers: int
    in_flight: int
    rtt_ms: float | None
    replies: tuple[int, ...] = (0, 0, 0, 0, 0)  # final responses it sent: 2xx, 3xx, 4xx, 5xx, 6xx
    timeouts: int = 0  # requests forwarded to it that got no final response in time

    def as_json(self) -> dict:
        d = self.destination
        return {"id": d.id, "setid": d.set_id, "destination": d.uri, "state": self.state.label,
                "weight": d.weight, "priority": d.priority, "probe_mode": d.probe_mode, "attrs": d.attrs,
                "socket": d.socket or None, "description": d.description, "address": f"{d.host}:{d.port}",
                "transport": d.transport, "picks": self.picks, "failovers": self.failovers,
                "in_flight": self.in_flight, "rtt_ms": self.rtt_ms,
                "replies": dict(zip(REPLY_CLASSES, self.replies)), "timeouts": self.timeouts}


@dataclasses.dataclass(frozen=True)
class BlockedIp:
    ip: str
    since: float   # Unix time the first worker blocked it
    until: float   # Unix time the last block ends
    dropped: int   # requests dropped, all workers
    workers: tuple[int, ...]

    def as_json(self) -> dict:
        return {"ip": self.ip, "since": round(self.since, 3), "until": round(self.until, 3), "dropped": self.dropped,
                "workers": list(self.workers)}


@dataclasses.dataclass(frozen=True)
class Snapshot:
    generation: int
    sets: dict[int, list[LiveDestination]]  # by set id, in priority order
    workers: list[dict[str, int]]
    shm_size: int = 0  # bytes of the shared mapping
    shm_used: int = 0  # bytes of it in use (ShmView.bytes_used)
    addresses: list[dict] = dataclasses.field(default_factory=list)  # address rows of this generation
    skipped: list[dict] = dataclasses.field(default_factory=list)  # dispatcher rows its load skipped: {id, reason}
    blocked: list[BlockedIp] = dataclasses.field(default_factory=list)
    blocked_total: int = 0  # IPs blocked over all workers, more than `blocked` shows when a row is full
    cluster: str = "standalone"  # or ok, degraded (fastds/procs/cluster_link.py)
    cluster_nodes: int = 0
    draining_since: float = 0.0  # Unix time the master began draining the node; 0.0 while it serves
    dns: dict[int, dict] = dataclasses.field(default_factory=dict)  # destination id -> the name it came from

    @property
    def destinations(self) -> list[LiveDestination]:
        return [live for set_id in sorted(self.sets) for live in self.sets[set_id]]

    def find(self, set_id: int, uri: str) -> LiveDestination | None:
        """A destination by set and URI, compared case-insensitively (as ds_set_state)."""
        return next((live for live in self.sets.get(set_id, ()) if live.destination.uri.lower() == uri.lower()),
                    None)

    def by_id(self, dest_id: int) -> LiveDestination | None:
        return next((live for live in self.destinations if live.destination.id == dest_id), None)

    def totals(self) -> dict[str, int]:
        """Worker counters summed over the workers (all but the process id)."""
        return {name: sum(row[name] for row in self.workers) for name in WORKER_COUNTERS if name != "pid"}


class SnapshotReader:
    """`reader()` -> a Snapshot. The topology of a generation is decoded once; states,
    counters, loads and RTTs are read afresh each time, one array at a time."""

    def __init__(self, view: ShmView):
        self._view = view
        self._generation = -1
        self._topology: list[tuple[int, list[Destination]]] = []
        self._addresses: list[dict] = []
        self._skipped: list[dict] = []
        self._dns: dict[int, dict] = {}

    def __call__(self) -> Snapshot:
        view = self._view
        generation = view.generation
        if generation != self._generation:
            sets, _ = view.sets(generation)  # slots run set by set, in the order publish() wrote them
            self._topology = [(set_id, list(sets[set_id].destinations)) for set_id in sorted(sets)]
            self._addresses = view.addresses(generation)
            self._skipped = view.skipped(generation)
            self._dns = view.dns(generation)
            self._generation = generation
        states, in_flight, rtt, counters = view.live_arrays(generation)
        width = len(DESTINATION_COUNTERS)
        live_sets: dict[int, list[LiveDestination]] = {}
        slot = 0
        for set_id, members in self._topology:
            found = live_sets[set_id] = []
            for destination in members:
                if slot >= len(states):  # a newer generation was published meanwhile
                    break
                picks, failovers, *replies, timeouts = counters[width * slot:width * (slot + 1)]
                found.append(LiveDestination(destination, DestinationState(states[slot]), picks, failovers,
                                             max(0, in_flight[slot]), round(rtt[slot], 3) if rtt[slot] >= 0 else None,
                                             tuple(replies), timeouts))
                slot += 1
        blocked, blocked_total = self._blocked()
        return Snapshot(generation, live_sets, [view.worker_counters(i) for i in range(view.layout.worker_slots)],
                        view.layout.size, view.bytes_used(), self._addresses, self._skipped, blocked, blocked_total,
                        *view.cluster(), view.draining_since(), self._dns)

    def _blocked(self) -> tuple[list[BlockedIp], int]:
        merged: dict[str, BlockedIp] = {}
        total = 0
        for worker in range(self._view.layout.worker_slots):
            entries, count = self._view.blocked(worker)
            total += count
            for ip, since, until, dropped in entries:
                seen = merged.get(ip)
                merged[ip] = BlockedIp(ip, since, until, dropped, (worker,)) if seen is None else BlockedIp(
                    ip, min(seen.since, since), max(seen.until, until), seen.dropped + dropped, (*seen.workers, worker))
        return sorted(merged.values(), key=lambda b: b.since), total
