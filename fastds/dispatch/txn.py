"""Transactions of a stateful proxy and the actions they emit (RFC 3261 §17, §16; RFC 6026).

Owns the transaction records and their state machines, held against RFC 3261 figures
5-8: the states (State, C ints once compiled) and the transitions as methods named after the RFC's events
and timers (a provisional heard, a final sent, the ACK, Timer B/F ...). Routing and
failover -- which destination next, what to send -- are fastds/dispatch/proxy.py's. A
ServerTransaction faces the request's sender (upstream), a ClientTransaction one next
hop (downstream); a server transaction has at most one live client at a time (serial
failover). Peers are addressed as fastds/dispatch/peers.py says. Sans-IO: a transaction is
Timed -- its timers are links in it (fastds/_ext/timers, ext/timers.pyx), one per slot below,
started and stopped by the proxy.
"""

from __future__ import annotations

import dataclasses
import enum

from cython.cimports.fastds._ext.sipscan import M_INVITE  # a method_id value, a C constant

from fastds._ext.sipscan import SipMessage, client_key_of
from fastds._ext.timers import Timed
from fastds.dispatch.peers import Address
from fastds.dispatch.sets import Destination
from fastds.sip import scan

# a transaction's timer slots: one timer each at a time
RETRANSMIT = 0  # Timers A, E (client) and G (server)
FINAL_WAIT = 1  # Timers B, F: the final response's wait (FR, FR-INV)
END = 2         # Timers D, K (client) and H, I, J, L (server): the transaction ends


class State(enum.IntEnum):
    """The states of RFC 3261's transaction machines -- a client's (§17.1.1 INVITE, figure 5;
    §17.1.2 non-INVITE, figure 6) and a server's (§17.2.1 INVITE, figure 7; §17.2.2
    non-INVITE, figure 8) -- and RFC 6026's Accepted. Both sides name theirs from this one
    list, as the RFC does (Proceeding, Completed and Terminated are on both)."""
    CALLING = 0     # client INVITE sent, nothing heard: Timer A retransmits, Timer B (FR) runs
    TRYING = 1      # client non-INVITE sent, nothing heard: Timer E retransmits, Timer F (FR) runs
    PROCEEDING = 2  # client: a provisional heard (INVITE stops retransmitting, FR-INV runs; non-INVITE at T2);
    #                 server: the request is being worked on, no final sent yet
    COMPLETED = 3   # client: a final >= 300 (ACKed for INVITE) or FR after a provisional, Timer D / K;
    #                 server: a final sent (INVITE: non-2xx, resent by Timer G until the ACK)
    CONFIRMED = 4   # server INVITE: the ACK for our non-2xx came (Timer I)
    ACCEPTED = 5    # server INVITE: a 2xx sent; retransmitted INVITEs are absorbed (Timer L)
    TERMINATED = 6


# the same states as module ints, C ints once compiled (txn.pxd): the transitions compare a
# C field with them (an Enum member's lookup costs ~850 instructions)
CALLING, TRYING, PROCEEDING, COMPLETED, CONFIRMED, ACCEPTED, TERMINATED = State


class Send:
    """Send `data` to `addr`; upstream: from the public socket (towards a request's
    sender), else from the private socket (so responses come back to this worker). A plain
    class, an extension type once compiled: a dataclass's generated __init__ would run as
    Python bytecode for every message sent."""
    __slots__ = ("data", "addr", "upstream")

    def __init__(self, data: bytes, addr: Address, upstream: bool):
        self.data = data
        self.addr = addr
        self.upstream = upstream

    def __repr__(self) -> str:
        return f"Send({self.data[:40]!r}..., {self.addr!r}, upstream={self.upstream})"


@dataclasses.dataclass(slots=True)
class ReportFailure:
    """A destination failed on live traffic (ds_mark_dst "p"): for the prober."""
    destination: Destination
    reason: str
    answering: bool = False  # it answered this or other requests meanwhile: the prober confirms first


class ServerTransaction(Timed):
    __slots__ = ("key", "request", "source", "is_invite", "state", "last_response", "to_tag", "targets",
                 "client", "cancelled", "request_uri", "pop_routes", "record_route", "retransmit_interval",
                 "started")

    def __init__(self, key: bytes, request: SipMessage, source: Address):
        self.key = key
        self.request = request
        self.source = source
        self.is_invite = request.method_id == M_INVITE  # the scanner checked the CSeq method is the request's
        self.state = PROCEEDING
        self.last_response: bytes | None = None
        self.to_tag = b""
        self.targets: list[Destination] | None = None  # failover list still to try (None: none, no empty list kept)
        self.client: ClientTransaction | None = None
        self.cancelled = False  # the caller's CANCEL came: no more failover, 487 unless a final wins
        self.request_uri: bytes | None = None  # dialplan rewrite of the Request-URI
        self.pop_routes = 0  # how many of the top Route values are ours, to remove
        self.record_route = False
        self.retransmit_interval = 0.0
        self.started = 0.0  # an initial INVITE's arrival (the proxy's clock), 0.0 once its final went up

    def proceeding(self) -> bool:
        """No final sent yet."""
        return self.state == PROCEEDING

    def resends_final(self) -> bool:
        """Timer G applies: an INVITE's non-2xx final waits for its ACK (Completed)."""
        return self.state == COMPLETED

    def request_retransmitted(self) -> bytes | None:
        """The request came again: the response to resend (none once a 2xx was sent: it
        retransmits itself end to end, §13.3.1.4)."""
        return None if self.state == ACCEPTED else self.last_response

    def final_sent(self, data: bytes, code: int) -> bool:
        """A final response went upstream. True when Timer G must resend it (INVITE, non-2xx).
        From here on the transaction only absorbs retransmissions for Timer H/J/L (up to
        32 s): it keeps its key, where to answer and, unless it is a 2xx (which retransmits
        itself end to end), the response -- not the request, the failover list or the client."""
        self.request = None
        self.request_uri = None
        self.targets = None
        self.client = None
        if self.is_invite and code < 300:
            self.state = ACCEPTED
            self.last_response = None
            return False
        self.last_response = data
        self.state = COMPLETED
        return self.is_invite

    def absorbs_ack(self) -> bool:
        """An INVITE that sent a non-2xx final: its ACK ends here, hop by hop (§17.2.1)."""
        return self.is_invite and (self.state == COMPLETED or self.state == CONFIRMED)

    def ack_received(self) -> bool:
        """The ACK for our non-2xx final: COMPLETED -> CONFIRMED; False for a repeated one."""
        if self.state != COMPLETED:
            return False
        self.state = CONFIRMED
        return True

    def cancel_received(self) -> bool:
        """The caller's CANCEL (§9.2, §16.10): True while no final was sent; failover stops."""
        if self.state != PROCEEDING:
            return False
        self.cancelled = True
        self.targets = None
        return True

    def terminate(self) -> None:
        """Timers H, I, J, L."""
        self.state = TERMINATED
        self.client = None


class ClientTransaction(Timed):
    __slots__ = ("branch", "method", "key", "server", "destination", "addr", "data", "is_invite", "state",
                 "cancel_pending", "retransmit_interval", "ack", "in_flight", "_sent")

    def __init__(self, branch: bytes, method: bytes, server: ServerTransaction | None,
                 destination: Destination | None, addr: Address, data: bytes):
        self.branch = branch
        self.method = method
        self.key = client_key_of(branch, method)  # what a response to it finds it by (SipMessage.client_key)
        self.server = server
        self.destination = destination
        self.addr = addr
        self.data = data
        self.is_invite = method == b"INVITE"
        self.state = CALLING if self.is_invite else TRYING
        self.cancel_pending = False  # the caller cancelled before this branch answered (§9.1: wait for a 1xx)
        self.retransmit_interval = 0.0
        self.ack: bytes | None = None  # the ACK sent for a non-2xx final, resent on retransmissions
        self.in_flight = None  # gives back the destination's in-flight count this holds (Selector.hold_load)
        self._sent: SipMessage | None = None

    @property
    def sent(self) -> SipMessage:
        """The request as fastds sent it, scanned once, for the CANCEL and ACK built from it."""
        if self._sent is None:
            self._sent = scan(self.data)
        return self._sent

    def rang(self) -> bool:
        """A provisional came and no final yet (an INVITE branch to CANCEL, not to retransmit)."""
        return self.state == PROCEEDING

    def done(self) -> bool:
        """A final came, or the branch was given up: later responses are retransmissions."""
        return self.state == COMPLETED or self.state == TERMINATED

    def retransmits(self) -> bool:
        """Timers A and E apply: nothing heard yet, or a non-INVITE that heard a provisional (at T2)."""
        return self.state == CALLING or self.state == TRYING or (self.state == PROCEEDING and not self.is_invite)

    def answered(self) -> bool:
        """It answered: a final, or a provisional before FR-INV ran out (Completed either way)."""
        return self.state == COMPLETED

    def provisional_received(self) -> bool:
        """A 1xx: CALLING/TRYING -> PROCEEDING. False once done (ignored)."""
        if self.done():
            return False
        self.state = PROCEEDING
        return True

    def final_received(self) -> None:
        """A final: >= 300 for an INVITE (its 2xx ends it at once: terminate()), any for a
        non-INVITE (figure 6)."""
        self.state = COMPLETED

    def timed_out(self) -> bool:
        """Timer B/F (FR, or FR-INV after a provisional). True when the branch rang and must
        be CANCELled: it stays COMPLETED so that late finals are ACKed, never relayed."""
        if self.is_invite and self.state == PROCEEDING:
            self.state = COMPLETED
            return True
        return False

    def compact(self) -> None:
        """A final came: for Timer D / K the branch keeps only what absorbs its
        retransmissions -- an INVITE's ACK for a non-2xx, resent each time (§17.1.1.2) --
        not the request it sent."""
        self.data = b""
        self._sent = None

    def terminate(self) -> None:
        """Timer D / K, a 2xx, or a timeout without a provisional."""
        self.state = TERMINATED
        self.server = None  # no server <-> client cycle outlives the transaction
        if self.in_flight is not None:
            self.in_flight()
            self.in_flight = None
