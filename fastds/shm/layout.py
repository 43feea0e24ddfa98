"""The shared-memory destination table: the single layout definition, its reader and writer.

Owns every byte offset. The master maps one anonymous shared region before forking, so
the prober and every worker (respawned ones too) see the same memory. The prober is the
only writer of topology and states; workers read them, add to the per-destination
in-flight, pick and failover counts atomically (ext/dshash.pyx) and write their own
counters row. Two topology areas: a reload writes the idle one, then bumps
`generation` (area = generation & 1), which workers compare on every datagram; no lock
is ever taken on the hot path. A segment whose magic, layout version or record size
differ from this build's raises ShmLayoutError on attach.

    header (64 B)  magic, layout version, record size, capacity, worker slots,
                   generation (u64), destinations in area 0 and area 1, the cluster's
                   status (u32: CLUSTER_STATUSES) and live nodes (u32), written by the prober
    workers        worker_slots x len(WORKER_COUNTERS) u64 (each worker writes its row; the
                   call setup histogram's buckets are counters of it)
    area 0, 1      records[capacity] | state u8[capacity] (padded to 8) |
                   in-flight i64[capacity] | probe RTT f64[capacity] (ms, < 0 unknown) |
                   counters (DESTINATION_COUNTERS x i64: picks, failovers, replies by
                   class, timeouts)[capacity]
    routes 0, 1    u32 length + that generation's dialplan and address rows as one JSON
                   object {"dialplan": [...], "address": [...]} (orjson)
    blocked        per worker: the IPs its flood limit blocks (fastds/dispatch/pike.py),
                   under a sequence lock (odd while the worker writes; readers retry):
                   u64 sequence, u32 shown, u32 blocked in all, BLOCKED_SLOTS entries
    unblock ring   written by the prober (MI pike_rm): u64 count of requests so far, then
                   UNBLOCK_SLOTS IPs; request n is in slot n % UNBLOCK_SLOTS

A set's destinations are contiguous in an area, in set order (priority), so the slot of
index i of a set is the set's first slot + i. A record holds every dispatcher column but
the stored state, so the API process answers from here without the store. Counters
follow a destination id across reloads (publish copies them).
"""

from __future__ import annotations

import dataclasses
import mmap
import struct
from typing import Any

import orjson

from fastds._ext.dshash import DESTINATION_COUNTERS
from fastds.dispatch.histogram import SETUP_COUNTERS
from fastds.dispatch.sets import Destination, DestinationSet
from fastds.errors import ShmLayoutError

MAGIC = b"FASTDSHM"
LAYOUT_VERSION = 17
HEADER = struct.Struct("<8sIIIII4xQII16x")  # 64 bytes; generation at 32 (8-aligned)
# id set weight priority probe_mode index transport port host uri attrs socket description
RECORD = struct.Struct("<iiiiiiBxH48s192s128s128s64s")
TRANSPORTS = ("udp", "tcp", "tls")
WORKER_COUNTERS = ("packets_in", "packets_out", "parse_errors", "transactions_open", "replies_5xx", "failovers",
                   "egress_blocked", "retransmissions_sent", "timeouts", "no_route", "send_errors", "too_large",
                   "handler_errors", "reports_lost", "overload_rejected", "lag_rejected", "handoffs_out",
                   "handoffs_in", "handoffs_dropped", "forwarded_to_destination", "retransmissions_absorbed",
                   "in_dialog_refused", "stray_responses_dropped", "ack_dropped", "drain_rejected", "replies_2xx",
                   "replies_3xx", "replies_4xx", "replies_6xx", "scanner_dropped", "untrusted_rejected",
                   "untrusted_dropped", "pike_dropped", "pike_blocks", "pike_blocked", "pike_tracked",
                   "transport_refused", "stray_stream_dropped", "tcp_connections", "tls_connections", "tcp_accepted",
                   "tls_handshake_failures", "tcp_framing_errors", "tcp_writes_lost", "tcp_slow_readers", "tcp_dialled",
                   "tcp_connect_failures", "connection_failovers", "keepalives", "in_dialog_forwarded",
                   "draining", "drain_waiting", "hep_sent", "hep_lost", *SETUP_COUNTERS, "pid")
BLOCKED_HEAD = struct.Struct("<QII")
BLOCKED_ENTRY = struct.Struct("<46s2xddQ")  # IP text, blocked since, until (Unix time), requests dropped
BLOCKED_SLOTS = 128
UNBLOCK_ENTRY = struct.Struct("<46s2x")
UNBLOCK_SLOTS = 16
CLUSTER_STATUSES = ("standalone", "ok", "degraded")
_CLUSTER_OFFSET = 48
_DRAINING_OFFSET = 56  # a double: when the node began draining (Unix time), 0 while it serves
_GENERATION_OFFSET = 32
_COUNTS_OFFSET = 40
_COUNTER_BYTES = 8 * len(DESTINATION_COUNTERS)  # per destination
_COUNTERS = struct.Struct(f"<{len(DESTINATION_COUNTERS)}q")


def _round8(n: int) -> int:
    return (n + 7) & ~7


def _text(field: bytes) -> str:
    return field.rstrip(b"\0").decode("utf-8", "replace")


@dataclasses.dataclass(frozen=True)
class Layout:
    capacity: int
    worker_slots: int
    routes_bytes: int

    @property
    def workers_offset(self) -> int:
        return HEADER.size

    @property
    def area_size(self) -> int:
        return self.capacity * RECORD.size + _round8(self.capacity) + (16 + _COUNTER_BYTES) * self.capacity

    def area_offset(self, area: int) -> int:
        return HEADER.size + self.worker_slots * len(WORKER_COUNTERS) * 8 + area * self.area_size

    def record_offset(self, area: int, slot: int) -> int:
        return self.area_offset(area) + slot * RECORD.size

    def state_offset(self, area: int, slot: int) -> int:
        return self.area_offset(area) + self.capacity * RECORD.size + slot

    def load_offset(self, area: int, slot: int) -> int:
        return self.area_offset(area) + self.capacity * RECORD.size + _round8(self.capacity) + 8 * slot

    def rtt_offset(self, area: int, slot: int) -> int:
        return self.load_offset(area, 0) + 8 * self.capacity + 8 * slot

    def counters_offset(self, area: int, slot: int) -> int:
        return self.rtt_offset(area, 0) + 8 * self.capacity + _COUNTER_BYTES * slot

    def routes_offset(self, area: int) -> int:
        return self.area_offset(2) + area * _round8(4 + self.routes_bytes)

    def blocked_offset(self, worker: int) -> int:
        return self.routes_offset(2) + worker * (BLOCKED_HEAD.size + BLOCKED_SLOTS * BLOCKED_ENTRY.size)

    @property
    def unblock_offset(self) -> int:
        return self.blocked_offset(self.worker_slots)

    @property
    def size(self) -> int:
        return self.unblock_offset + 8 + UNBLOCK_SLOTS * UNBLOCK_ENTRY.size


def create(capacity: int, worker_slots: int, routes_bytes: int) -> mmap.mmap:
    """A zeroed anonymous shared mapping with the header written (generation 0: empty)."""
    layout = Layout(capacity, worker_slots, routes_bytes)
    region = mmap.mmap(-1, layout.size, flags=mmap.MAP_SHARED)
    HEADER.pack_into(region, 0, MAGIC, LAYOUT_VERSION, RECORD.size, capacity, worker_slots, routes_bytes, 0, 0, 0)
    return region


class ShmView:
    """Read access for any process; checks the header on attach."""

    def __init__(self, region):
        self.region = region
        magic, version, record_size, capacity, worker_slots, routes_bytes, _, _, _ = HEADER.unpack_from(region, 0)
        if magic != MAGIC or version != LAYOUT_VERSION or record_size != RECORD.size:
            raise ShmLayoutError(f"shared memory has magic {magic!r}, layout {version}, record size {record_size}; "
                                 f"this build expects {MAGIC!r}, {LAYOUT_VERSION}, {RECORD.size}")
        self.layout = Layout(capacity, worker_slots, routes_bytes)
        # the generation word as a one-element array of u64 (fastds/shm/live.py reads it in place)
        self.generation_word = memoryview(region)[_GENERATION_OFFSET:_GENERATION_OFFSET + 8].cast("Q")

    @property
    def generation(self) -> int:
        return self.generation_word[0]

    def count(self, area: int) -> int:
        return struct.unpack_from("<I", self.region, _COUNTS_OFFSET + 4 * area)[0]

    def sets(self, generation: int) -> tuple[dict[int, DestinationSet], dict[int, int]]:
        """The destination sets of a generation, and each set's first slot."""
        area = generation & 1
        members: dict[int, list[Destination]] = {}
        first_slot: dict[int, int] = {}
        for slot in range(self.count(area)):
            (dest_id, set_id, weight, priority, probe_mode, _index, transport, port, host, uri, attrs, sock,
             description) = RECORD.unpack_from(self.region, self.layout.record_offset(area, slot))
            first_slot.setdefault(set_id, slot)
            members.setdefault(set_id, []).append(Destination(
                id=dest_id, set_id=set_id, uri=_text(uri), weight=weight, priority=priority,
                state=self.region[self.layout.state_offset(area, slot)], probe_mode=probe_mode, attrs=_text(attrs),
                socket=_text(sock), description=_text(description), host=_text(host), port=port,
                transport=TRANSPORTS[transport]))
        return {set_id: DestinationSet(set_id, tuple(found)) for set_id, found in members.items()}, first_slot

    def cluster(self) -> tuple[str, int]:
        """(standalone | ok | degraded, live nodes) as the prober last wrote them."""
        status, nodes = struct.unpack_from("<II", self.region, _CLUSTER_OFFSET)
        return CLUSTER_STATUSES[status] if status < len(CLUSTER_STATUSES) else "standalone", nodes

    def draining_since(self) -> float:
        """When the master began draining the node (Unix time); 0.0 while it serves."""
        return struct.unpack_from("<d", self.region, _DRAINING_OFFSET)[0]

    def set_draining(self, since: float) -> None:
        """The master's: every worker refuses new INVITEs within a second, /health says draining."""
        struct.pack_into("<d", self.region, _DRAINING_OFFSET, since)

    def bytes_used(self) -> int:
        """The bytes the header, the worker rows and both published generations fill
        (what OpenSIPS would call used shared memory; the rest of the mapping is free)."""
        used = self.layout.area_offset(0)
        for area in (0, 1):
            (routes_length,) = struct.unpack_from("<I", self.region, self.layout.routes_offset(area))
            used += self.count(area) * (RECORD.size + 1 + 32) + 4 + routes_length
        return used + self.layout.size - self.layout.blocked_offset(0)  # blocked rows and unblock ring: fixed

    def _tables(self, generation: int) -> dict[str, list[dict[str, Any]]]:
        offset = self.layout.routes_offset(generation & 1)
        (length,) = struct.unpack_from("<I", self.region, offset)
        return orjson.loads(self.region[offset + 4:offset + 4 + length]) if length else {}

    def dialplan(self, generation: int) -> list[dict[str, Any]]:
        return self._tables(generation).get("dialplan", [])

    def addresses(self, generation: int) -> list[dict[str, Any]]:
        """The address table rows of a generation (fastds/dispatch/trust.py reads them)."""
        return self._tables(generation).get("address", [])

    def skipped(self, generation: int) -> list[dict[str, Any]]:
        """The dispatcher rows the load of a generation skipped: {id, reason} each."""
        return self._tables(generation).get("skipped", [])

    def dns(self, generation: int) -> dict[int, dict[str, Any]]:
        """Destination id -> the name it was resolved from, and whether that name still resolves."""
        return {int(dest_id): about for dest_id, about in self._tables(generation).get("dns", {}).items()}

    def blocked(self, worker: int) -> tuple[list[tuple[str, float, float, int]], int]:
        """(ip, since, until, dropped) of the IPs a worker's flood limit blocks (at most
        BLOCKED_SLOTS), and how many it blocks in all. Empty if no stable copy could be
        read (a worker that died while writing leaves its row odd until it is respawned)."""
        offset = self.layout.blocked_offset(worker)
        for _ in range(1000):
            sequence, shown, total = BLOCKED_HEAD.unpack_from(self.region, offset)
            entries = [BLOCKED_ENTRY.unpack_from(self.region, offset + BLOCKED_HEAD.size + i * BLOCKED_ENTRY.size)
                       for i in range(min(shown, BLOCKED_SLOTS))]
            if sequence % 2 == 0 and BLOCKED_HEAD.unpack_from(self.region, offset)[0] == sequence:
                return [(_text(ip), since, until, dropped) for ip, since, until, dropped in entries], total
        return [], 0

    def write_blocked(self, worker: int, entries: list[tuple[str, float, float, int]]) -> None:
        """A worker publishes its own blocked IPs (no other process writes its row)."""
        offset = self.layout.blocked_offset(worker)
        (sequence,) = struct.unpack_from("<Q", self.region, offset)
        sequence += sequence & 1  # left odd by a predecessor that died while writing
        struct.pack_into("<Q", self.region, offset, sequence + 1)  # odd: being written
        shown = entries[:BLOCKED_SLOTS]
        for i, (ip, since, until, dropped) in enumerate(shown):
            BLOCKED_ENTRY.pack_into(self.region, offset + BLOCKED_HEAD.size + i * BLOCKED_ENTRY.size, ip.encode(),
                                    since, until, dropped)
        BLOCKED_HEAD.pack_into(self.region, offset, sequence + 2, len(shown), len(entries))

    def unblock_requests(self, after: int) -> tuple[int, list[str]]:
        """(requests so far, the IPs asked to be released since request `after`; at most
        the last UNBLOCK_SLOTS when more came)."""
        (count,) = struct.unpack_from("<Q", self.region, self.layout.unblock_offset)
        first = max(after, count - UNBLOCK_SLOTS)
        return count, [_text(UNBLOCK_ENTRY.unpack_from(self.region, self._unblock_slot(n))[0]) for n in range(first, count)]

    def _unblock_slot(self, n: int) -> int:
        return self.layout.unblock_offset + 8 + (n % UNBLOCK_SLOTS) * UNBLOCK_ENTRY.size

    def live(self, generation: int, first_slot: int) -> tuple:
        """The `live` argument of dshash.SetTable for a set starting at first_slot."""
        area = generation & 1
        return (self.region, self.layout.state_offset(area, first_slot), self.layout.load_offset(area, first_slot),
                self.layout.rtt_offset(area, first_slot), self.layout.counters_offset(area, first_slot))

    def live_arrays(self, generation: int) -> tuple[bytes, tuple[int, ...], tuple[float, ...], tuple[int, ...]]:
        """Every slot's state, in-flight count, RTT and counters (DESTINATION_COUNTERS per
        slot, flattened), each array read in one step."""
        area = generation & 1
        n = self.count(area)
        return (bytes(self.region[self.layout.state_offset(area, 0):self.layout.state_offset(area, n)]),
                struct.unpack_from(f"<{n}q", self.region, self.layout.load_offset(area, 0)),
                struct.unpack_from(f"<{n}d", self.region, self.layout.rtt_offset(area, 0)),
                struct.unpack_from(f"<{len(DESTINATION_COUNTERS) * n}q", self.region,
                                   self.layout.counters_offset(area, 0)))

    def counts(self, generation: int, slot: int) -> tuple[int, ...]:
        """The counters of the destination in `slot` (DESTINATION_COUNTERS), summed over the workers."""
        return _COUNTERS.unpack_from(self.region, self.layout.counters_offset(generation & 1, slot))

    def worker_counters(self, worker: int) -> dict[str, int]:
        offset = self.layout.workers_offset + worker * len(WORKER_COUNTERS) * 8
        return dict(zip(WORKER_COUNTERS, struct.unpack_from(f"<{len(WORKER_COUNTERS)}Q", self.region, offset)))

    def write_worker_counters(self, worker: int, counters) -> None:
        """A worker publishes its own row (no other process writes it)."""
        offset = self.layout.workers_offset + worker * len(WORKER_COUNTERS) * 8
        struct.pack_into(f"<{len(WORKER_COUNTERS)}Q", self.region, offset,
                         *(max(0, int(counters.get(name, 0))) for name in WORKER_COUNTERS))


def slots(sets: dict[int, DestinationSet]) -> list[tuple[Destination, int]]:
    """(destination, slot) in the order publish() writes them: sets by id, then priority."""
    return [(d, slot) for slot, d in enumerate(d for set_id in sorted(sets) for d in sets[set_id].destinations)]


class ShmWriter(ShmView):
    """The prober's write access: topology, states and RTTs."""

    def publish(self, sets: dict[int, DestinationSet], states: dict[int, int],
                dialplan: list[dict[str, Any]], addresses: list[dict[str, Any]] = (),
                skipped: list[dict[str, Any]] = (), dns: dict[int, dict[str, Any]] | None = None) -> int:
        """Write sets into the idle area, states by destination id (else each row's
        own), the dialplan and address rows and the dispatcher rows the load skipped ({id,
        reason}) and what the destinations named by DNS resolved from (by id), then make it
        current; returns the new generation."""
        generation = self.generation + 1
        area = generation & 1
        routes = orjson.dumps({"dialplan": dialplan, "address": list(addresses), "skipped": list(skipped),
                               "dns": {str(dest_id): about for dest_id, about in (dns or {}).items()}})
        if len(routes) > self.layout.routes_bytes:
            raise ShmLayoutError(f"the dialplan and address rows take {len(routes)} bytes, more than "
                                 f"FASTDS_SHM_ROUTES_BYTES={self.layout.routes_bytes}")
        routes_at = self.layout.routes_offset(area)
        struct.pack_into("<I", self.region, routes_at, len(routes))
        self.region[routes_at + 4:routes_at + 4 + len(routes)] = routes
        destinations = [d for d, _ in slots(sets)]
        if len(destinations) > self.layout.capacity:
            raise ShmLayoutError(f"{len(destinations)} destinations do not fit the shared table "
                                 f"(FASTDS_SHM_DESTINATIONS={self.layout.capacity})")
        previous_counts = {}
        if self.generation:
            old_sets, old_first = self.sets(self.generation)
            previous_counts = {d.id: self.counts(self.generation, old_first[set_id] + i)
                               for set_id, found in old_sets.items() for i, d in enumerate(found.destinations)}
        index_in_set: dict[int, int] = {}
        for slot, d in enumerate(destinations):
            index = index_in_set[d.set_id] = index_in_set.get(d.set_id, -1) + 1
            RECORD.pack_into(self.region, self.layout.record_offset(area, slot), d.id, d.set_id, d.weight, d.priority,
                             d.probe_mode, index, TRANSPORTS.index(d.transport), d.port, d.host.encode()[:48],
                             d.uri.encode()[:192], d.attrs.encode()[:128], d.socket.encode()[:128],
                             d.description.encode()[:64])
            self.region[self.layout.state_offset(area, slot)] = states.get(d.id, d.state)
            struct.pack_into("<q", self.region, self.layout.load_offset(area, slot), 0)
            struct.pack_into("<d", self.region, self.layout.rtt_offset(area, slot), -1.0)
            _COUNTERS.pack_into(self.region, self.layout.counters_offset(area, slot),
                                *previous_counts.get(d.id, (0,) * len(DESTINATION_COUNTERS)))
        struct.pack_into("<I", self.region, _COUNTS_OFFSET + 4 * area, len(destinations))
        self.generation_word[0] = generation  # one aligned 8-byte store: readers see the old or the new area
        return generation

    def set_state(self, slot: int, state: int) -> None:
        self.region[self.layout.state_offset(self.generation & 1, slot)] = state

    def set_rtt(self, slot: int, rtt_ms: float) -> None:
        struct.pack_into("<d", self.region, self.layout.rtt_offset(self.generation & 1, slot), rtt_ms)

    def set_cluster(self, status: str, nodes: int) -> None:
        struct.pack_into("<II", self.region, _CLUSTER_OFFSET, CLUSTER_STATUSES.index(status), nodes)

    def request_unblock(self, ip: str) -> None:
        """Ask every worker to release `ip` (MI pike_rm); each applies it within a second."""
        (count,) = struct.unpack_from("<Q", self.region, self.layout.unblock_offset)
        UNBLOCK_ENTRY.pack_into(self.region, self._unblock_slot(count), ip.encode())
        struct.pack_into("<Q", self.region, self.layout.unblock_offset, count + 1)  # the entry first, then the count
