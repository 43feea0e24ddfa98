"""What a node of a fastds cluster decides about shared destination state (sans-IO).

Owns the rules every node applies alike (docs/architecture.md §10): a state change is a
StateRecord (destination id, state, when in Unix ms, which node); of two records for one
destination the later one wins, the node id breaking a tie, everywhere the same, so nodes
that saw changes in another order (or during an outage of Redis) converge on one state;
which live node probes a destination (rendezvous hashing of node id x destination id:
when a node leaves, only its destinations move); and the degraded mode (Redis
unreachable): every node probes everything and keeps the records it made, to publish
when Redis is back. Redis itself is fastds/procs/cluster_link.py's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import orjson
import xxhash


@dataclasses.dataclass(frozen=True, slots=True)
class StateRecord:
    dest_id: int
    state: int
    at_ms: int
    origin: str    # node id
    reason: str = ""

    def wins_over(self, other: StateRecord | None) -> bool:
        """Last writer wins: the most recent observation of a destination is the one that
        describes it now; equal times are ordered by node id so every node picks the same."""
        return other is None or (self.at_ms, self.origin) > (other.at_ms, other.origin)

    def encode(self) -> bytes:
        return orjson.dumps({"d": self.dest_id, "s": self.state, "t": self.at_ms, "o": self.origin, "r": self.reason})

    @classmethod
    def decode(cls, data: bytes) -> StateRecord | None:
        try:
            fields = orjson.loads(data)
            return cls(int(fields["d"]), int(fields["s"]), int(fields["t"]), str(fields["o"]), str(fields.get("r", "")))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


def probe_owner(dest_id: int, nodes: Iterable[str]) -> str | None:
    """The live node that probes `dest_id` (highest xxh3 of node and destination)."""
    return max(nodes, key=lambda node: xxhash.xxh3_64_intdigest(f"{node}/{dest_id}".encode()), default=None)


class ClusterState:
    def __init__(self, node_id: str):
        self.node_id = node_id
        self.live: frozenset[str] = frozenset({node_id})
        self.degraded = False           # Redis unreachable: everything probed here, records kept
        self.latest: dict[int, StateRecord] = {}   # the winning record of each destination seen
        self.unpublished: list[StateRecord] = []   # made while Redis was away

    def probes(self, dest_id: int) -> bool:
        """Does this node probe `dest_id`? All of them while degraded."""
        return self.degraded or probe_owner(dest_id, self.live) == self.node_id

    def local(self, dest_id: int, state: int, at_ms: int, reason: str) -> StateRecord:
        """A change this node made; kept until published."""
        record = StateRecord(dest_id, state, at_ms, self.node_id, reason)
        self.latest[dest_id] = record
        self.unpublished.append(record)
        return record

    def published(self, records: Iterable[StateRecord]) -> None:
        done = set(records)
        self.unpublished = [record for record in self.unpublished if record not in done]

    def remote(self, record: StateRecord) -> bool:
        """A record from the cluster: True when it wins and must be applied here (this
        node's own records come back from the stream equal to what it holds: not again)."""
        if not record.wins_over(self.latest.get(record.dest_id)):
            return False
        self.latest[record.dest_id] = record
        return True
