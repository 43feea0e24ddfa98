"""Transactions of a stateful proxy (RFC 3261 §17, §16) and the actions they emit.

Owns the records a worker keeps per transaction and the names of their states; the
decisions live in fastds/dispatch/proxy.py. A ServerTransaction faces the request's
sender (upstream), a ClientTransaction one next hop (downstream); a server transaction
has at most one live client at a time (serial failover). Sans-IO: deadlines are
numbers on the proxy's TimerQueue.
"""

from __future__ import annotations

import dataclasses
from collections import deque

from fastds._ext.sipscan import SipMessage
from fastds.dispatch.sets import Destination
from fastds.dispatch.timers import Timer

Address = tuple[str, int]

# server transaction states (§17.2.1, §17.2.2; ACCEPTED from RFC 6026)
PROCEEDING, COMPLETED, CONFIRMED, ACCEPTED, TERMINATED = "proceeding", "completed", "confirmed", "accepted", "terminated"
# client transaction states (§17.1.1, §17.1.2)
CALLING, TRYING = "calling", "trying"


@dataclasses.dataclass(slots=True)
class Send:
    """Send `data` to `addr`; upstream: from the public socket (towards a request's
    sender), else from the private socket (so responses come back to this worker)."""
    data: bytes
    addr: Address
    upstream: bool


@dataclasses.dataclass(slots=True)
class ReportFailure:
    """A destination failed on live traffic (ds_mark_dst "p"): for the prober."""
    destination: Destination
    reason: str


class ServerTransaction:
    __slots__ = ("key", "request", "source", "is_invite", "state", "last_response", "to_tag", "targets",
                 "client", "cancelled", "timers", "request_uri", "pop_route", "record_route", "next_hop",
                 "retransmit_interval")

    def __init__(self, key: tuple, request: SipMessage, source: Address):
        self.key = key
        self.request = request
        self.source = source
        self.is_invite = request.cseq_method == b"INVITE"
        self.state = PROCEEDING
        self.last_response: bytes | None = None
        self.to_tag = b""
        self.targets: deque[Destination] = deque()  # failover list still to try
        self.client: ClientTransaction | None = None
        self.cancelled = False
        self.timers: list[Timer] = []
        self.request_uri: bytes | None = None  # dialplan rewrite of the Request-URI
        self.pop_route = False
        self.record_route = False
        self.next_hop: Address | None = None  # loose-routed requests: fixed next hop
        self.retransmit_interval = 0.0

    def cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()


class ClientTransaction:
    __slots__ = ("branch", "method", "server", "destination", "addr", "data", "is_invite", "state",
                 "provisional", "cancel_pending", "retransmit_timer", "retransmit_interval", "fr_timer",
                 "end_timer", "ack", "load")

    def __init__(self, branch: bytes, method: bytes, server: ServerTransaction | None,
                 destination: Destination | None, addr: Address, data: bytes):
        self.branch = branch
        self.method = method
        self.server = server
        self.destination = destination
        self.addr = addr
        self.data = data
        self.is_invite = method == b"INVITE"
        self.state = CALLING if self.is_invite else TRYING
        self.provisional = False
        self.cancel_pending = False
        self.retransmit_timer: Timer | None = None
        self.retransmit_interval = 0.0
        self.fr_timer: Timer | None = None
        self.end_timer: Timer | None = None
        self.ack: bytes | None = None  # the ACK sent for a non-2xx final, resent on retransmissions
        self.load: tuple | None = None  # (SetTable, index) whose in-flight count this transaction holds

    @property
    def key(self) -> tuple:
        return (self.branch, self.method)

    def cancel_timers(self) -> None:
        for timer in (self.retransmit_timer, self.fr_timer, self.end_timer):
            if timer is not None:
                timer.cancel()
