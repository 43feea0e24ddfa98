"""The prober's core: OPTIONS probes of the destinations and what their replies do (sans-IO;
OpenSIPS ds_check_timer, ds_options_callback).

Owns the probe transactions: which destinations are due (fastds/dispatch/health.py says),
the probe over the destination's transport, its UDP retransmission (T1 doubling to T2), its
timeout (the FR timer; at once when its connection fails), the round trip, and turning
replies, timeouts and workers' failure reports into health's actions. Out come ProbeSend,
ProbeRtt, StateChange, FailureDismissed and ProbeFailed for fastds/procs/prober.py;
next_deadline() merges probe and health deadlines, so the adapter arms one timer.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

from fastds._ext.sipscan import call_id_of
from fastds.dispatch.health import FailureDismissed, Health, ProbeFailed, StateChange
from fastds.dispatch.peers import Address, dial, on_stream
from fastds.errors import SipParseError
from fastds.sip import BranchFactory, scan
from fastds.sip.build import build_probe


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    method: bytes = b"OPTIONS"
    from_uri: bytes = b"sip:dispatcher@localhost"
    t1: float = 0.5
    t2: float = 4.0
    timeout: float = 5.0
    sent_by: bytes = b"127.0.0.1:5060"  # host:port of the prober's socket, in the probe's Via
    call_id_prefix: bytes = b"probe"


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeSend:
    data: bytes
    addr: Address


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeRtt:
    """A probe's round trip, for the destination's slot in shared memory and its histogram."""
    slot: int
    rtt_ms: float
    dest_id: int


class Probe:
    """One probe in flight."""

    __slots__ = ("dest_id", "slot", "data", "addr", "call_id", "sent_at", "interval", "next_send", "deadline")

    def __init__(self, dest_id: int, slot: int, data: bytes, addr: Address, call_id: bytes, now: float,
                 config: ProbeConfig):
        self.dest_id, self.slot, self.data, self.addr, self.call_id = dest_id, slot, data, addr, call_id
        self.sent_at = now
        self.interval = config.t1
        self.deadline = now + config.timeout
        self.next_send = self.deadline if on_stream(addr) else now + config.t1  # no retransmission over a stream

    def next_event(self) -> float:
        return min(self.next_send, self.deadline)


class Probing:
    def __init__(self, health: Health, config: ProbeConfig, branches: BranchFactory,
                 may_send_to: Callable[[str, float], bool]):
        """may_send_to(host, now): the egress check; a probe it refuses fails at once."""
        self.health = health
        self.config = config
        self.branches = branches
        self.may_send_to = may_send_to
        self.pending: dict[bytes, Probe] = {}  # by branch
        self._call_ids = itertools.count(1)

    def next_deadline(self) -> float | None:
        deadlines = [probe.next_event() for probe in self.pending.values()]
        due = self.health.next_deadline()
        if due is not None:
            deadlines.append(due)
        return min(deadlines) if deadlines else None

    def timer(self, now: float) -> list:
        """Expire and retransmit the probes in flight, then send the ones due."""
        actions: list = []
        for branch, probe in list(self.pending.items()):
            if now >= probe.deadline:
                del self.pending[branch]
                self._changed(actions, self.health.probe_result(probe.dest_id, None))
            elif now >= probe.next_send and not on_stream(probe.addr):
                actions.append(ProbeSend(probe.data, probe.addr))
                probe.interval = min(2 * probe.interval, self.config.t2)
                probe.next_send = now + probe.interval
        for tracked in self.health.due(now):
            destination = tracked.destination
            if not self.may_send_to(destination.host, now):
                self._changed(actions, self.health.probe_result(destination.id, None, "not sent: FASTDS_EGRESS_ALLOW"))
                continue
            branch = self.branches.new()
            call_id = b"%s-%d@fastds" % (self.config.call_id_prefix, next(self._call_ids))
            data = build_probe(self.config.method, destination.uri.encode(), sent_by=self.config.sent_by,
                               branch=branch, from_uri=self.config.from_uri, from_tag=branch[-12:],
                               call_id=call_id, cseq=1, transport=destination.transport.upper().encode())
            if destination.transport == "udp":
                addr = (destination.host, destination.port)
            else:
                addr = dial(destination.host, destination.port, destination.transport)
            probe = self.pending[branch] = Probe(destination.id, tracked.slot, data, addr, call_id, now, self.config)
            actions.append(ProbeSend(probe.data, probe.addr))
        return actions

    def receive(self, data: bytes, now: float) -> list:
        """A datagram on the prober's socket: a final reply to a probe in flight, or ignored.
        One that cannot be parsed but names a probe's Call-ID fails that probe, saying why."""
        try:
            message = scan(data)
        except SipParseError as exc:
            return self._unparsable(data, exc)
        probe = None if message.is_request else self.pending.get(message.branch)
        if probe is None or message.status_code < 200:
            return []
        del self.pending[message.branch]
        actions: list = [ProbeRtt(probe.slot, (now - probe.sent_at) * 1000, probe.dest_id)]
        self._changed(actions, self.health.probe_result(probe.dest_id, message.status_code))
        return actions

    def _unparsable(self, data: bytes, error: SipParseError) -> list:
        try:
            call_id = call_id_of(data)
        except SipParseError:
            return []
        branch = next((branch for branch, probe in self.pending.items() if probe.call_id == call_id), None)
        if call_id is None or branch is None:
            return []
        probe = self.pending.pop(branch)
        actions: list = []
        self._changed(actions, self.health.probe_result(probe.dest_id, None, f"unparsable reply: {error}"))
        return actions

    def connection_failed(self, addr: Address) -> list:
        """The connection to a dial address failed or broke: its probes in flight fail now."""
        actions: list = []
        for branch, probe in list(self.pending.items()):
            if probe.addr == addr:
                del self.pending[branch]
                self._changed(actions, self.health.probe_result(probe.dest_id, None, "connection failed"))
        return actions

    def traffic_failure(self, dest_id: int, reason: str, answering: bool = False, count: int = 1, *,
                        now: float) -> list:
        """A worker's report (ds_mark_dst "p") of `count` failures; one to confirm makes the
        destination due (fastds/dispatch/health.py)."""
        actions: list = []
        self._changed(actions, self.health.traffic_failure(dest_id, reason, answering, count, now=now))
        return actions

    @staticmethod
    def _changed(actions: list, change: StateChange | FailureDismissed | ProbeFailed | None) -> None:
        if change is not None:
            actions.append(change)
