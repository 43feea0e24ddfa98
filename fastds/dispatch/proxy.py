"""The stateful proxy core of one worker: messages and time in, sends out (sans-IO;
docs/architecture.md §3, RFC 3261 §16-§17, OpenSIPS tm's failover rules, modules/tm/t_reply.c).

Owns what happens to every message: parse errors (400 or dropped; keep-alives counted apart;
513 over FASTDS_SIP_MAX_MESSAGE_BYTES), retransmissions absorbed, OPTIONS to fastds answered,
initial requests checked (trust, scanners, 483/482/416/420), routed by the dialplan and forwarded
with one 100 Trying; responses relayed through their client transaction; serial failover on
FASTDS_FAILOVER_CODES, the FR timers and broken connections; each hop over its own transport,
record-routed (twice across transports, RFC 5658); in-dialog requests only through our signed
Record-Route. receive() and timer() take `now` and return Send / ReportFailure actions.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re

from cython.cimports.fastds._ext.sipscan import M_ACK, M_CANCEL, M_INVITE, M_OPTIONS  # method_id values, C constants

from fastds._ext.counters import Counters
from fastds._ext.marks import BranchFactory, RecordRoute, counted
from fastds._ext.sipscan import SipMessage, ip_literal, scan
from fastds._ext.sipwrite import build_response, forward_request, forward_response
from fastds._ext.timers import TimerQueue
from fastds.dispatch.histogram import SETUP_BOUNDS_S, Histogram
from fastds.dispatch.peers import Address, dial, on_stream, transport_of
from fastds.dispatch.routes import Router
from fastds.dispatch.selector import Selector
from fastds.dispatch.sets import Destination
from fastds.dispatch.trust import TrustedSources
from fastds.dispatch.txn import (
    END,
    FINAL_WAIT,
    RETRANSMIT,
    ClientTransaction,
    ReportFailure,
    Send,
    ServerTransaction,
)
from fastds.errors import SipParseError
from fastds.sip import build_ack, build_cancel

KEEPALIVE_BYTES = b"\r\n\t \0"  # a datagram of only these is a NAT keep-alive (phones send CRLFs)

CLEANUP_TICK_S = 0.1  # timers D, H, I, J, K, L end transactions late by up to this, in shared wake-ups
TIMER_D_S = 32.0  # an INVITE client absorbs retransmitted finals this long over UDP (RFC 3261 §17.1.1.2: >= 32 s)

COUNTERS = (  # what the core counts, by name (fastds/shm/layout.py's WORKER_COUNTERS shows them)
    "packets_in", "keepalives", "parse_errors", "too_large", "retransmissions_absorbed", "retransmissions_sent",
    "forwarded_to_destination", "in_dialog_forwarded", "in_dialog_refused", "ack_dropped", "failovers",
    "timeouts", "connection_failovers", "no_route", "transport_refused", "drain_rejected", "overload_rejected",
    "lag_rejected", "scanner_dropped", "untrusted_dropped", "untrusted_rejected", "stray_responses_dropped",
    "stray_stream_dropped", "replies_1xx", "replies_2xx", "replies_3xx", "replies_4xx", "replies_5xx",
    "replies_6xx",
)
(PACKETS_IN, KEEPALIVES, PARSE_ERRORS, TOO_LARGE, RETRANSMISSIONS_ABSORBED, RETRANSMISSIONS_SENT,
 FORWARDED_TO_DESTINATION, IN_DIALOG_FORWARDED, IN_DIALOG_REFUSED, ACK_DROPPED, FAILOVERS, TIMEOUTS,
 CONNECTION_FAILOVERS, NO_ROUTE, TRANSPORT_REFUSED, DRAIN_REJECTED, OVERLOAD_REJECTED, LAG_REJECTED,
 SCANNER_DROPPED, UNTRUSTED_DROPPED, UNTRUSTED_REJECTED, STRAY_RESPONSES_DROPPED, STRAY_STREAM_DROPPED,
 REPLIES_1XX, REPLIES_2XX, REPLIES_3XX, REPLIES_4XX, REPLIES_5XX, REPLIES_6XX) = range(len(COUNTERS))

# what a timer does (its kind, dispatched by timer())
TIMER_A_E, TIMER_B_F, TIMER_D_K, TIMER_G, TIMER_H_I_J_L = range(5)

@dataclasses.dataclass(frozen=True)
class ProxyConfig:
    private_sent_by: bytes           # host:port of the private socket, in our Via over UDP
    stream_sent_by: dict = dataclasses.field(default_factory=dict)  # tcp / tls -> host:port of that listener
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    fr_timeout: float = 5.0
    fr_inv_timeout: float = 120.0
    failover_codes: frozenset[int] = frozenset(range(500, 600))
    max_transactions: int = 600_000
    record_route: bool = True
    server_header: bytes = b"fastds"
    no_route_reason: bytes = b"No route to Media"
    max_message_bytes: int = 65535
    max_headers: int = 256
    max_datagram_bytes: int = 65507  # the largest UDP payload over IPv4
    overload_retry_after_s: int = 5
    untrusted_action: str = "403"             # or "drop"
    block_user_agents: tuple[str, ...] = ()   # lower-case parts of scanners' User-Agents

    @functools.cached_property
    def scanner(self) -> re.Pattern | None:
        """Matches a lower-cased User-Agent that contains one of block_user_agents (a
        case-sensitive search of the lowered text is 5x faster than re.IGNORECASE)."""
        if not self.block_user_agents:
            return None
        return re.compile(b"|".join(re.escape(name.lower().encode()) for name in self.block_user_agents))


class Proxy:
    def __init__(self, config: ProxyConfig, selector: Selector, router: Router, branches: BranchFactory,
                 record_route: RecordRoute, trust: TrustedSources | None = None):
        # selector: select(), count_pick(), count_failover(), count_reply(), count_timeout(), hold_load();
        # router: route(); trust:
        # accepts() (None: every source). A Selector, Router and TrustedSources here and in tests,
        # their shared-memory twins in a worker (fastds/shm/live.py)
        self.config = config
        # what is read per message or timer, as C fields (an attribute of the config object
        # is a dictionary lookup)
        self._max_message_bytes, self._max_headers = config.max_message_bytes, config.max_headers
        self._t1, self._t2, self._t4 = config.t1, config.t2, config.t4
        self._fr_timeout, self._fr_inv_timeout = config.fr_timeout, config.fr_inv_timeout
        self._max_datagram_bytes, self._server_header = config.max_datagram_bytes, config.server_header
        self._udp_via = (b"UDP", config.private_sent_by)  # _via() over UDP, every forward: made once
        self.trust = trust
        self.last_answer: dict[int, float] = {}  # destination id -> when it last answered anything
        self.selector = selector
        self.router = router
        self.branches = branches
        self.record_route = record_route
        self.servers: dict[bytes, ServerTransaction] = {}
        self.clients: dict[bytes, ClientTransaction] = {}
        self.stream_clients: dict[Address, dict] = {}  # by the connection address they went to: key -> client
        self.timers = TimerQueue()
        self.counters = Counters(COUNTERS)
        self.setup_times = Histogram(SETUP_BOUNDS_S)  # initial INVITEs, arrival to first final sent upstream
        self._out: list = []
        self._now = 0.0
        self._tag_prefix = b"fds" + os.urandom(3).hex().encode()
        self._tags = 0
        self.draining = False  # graceful stop: new INVITEs are refused, everything else goes on
        self.saturated = False  # set by the worker from its loop's lag: new INVITEs are shed

    # -- entry points ------------------------------------------------------------------

    def receive(self, data: bytes, source: Address, now: float) -> list:
        """One datagram from `source`; returns the actions it causes."""
        self._out = []
        self._now = now
        self.counters.add(PACKETS_IN)
        try:
            message = scan(data, self._max_message_bytes, self._max_headers)
        except SipParseError as exc:
            if not data.strip(KEEPALIVE_BYTES):
                self.counters.add(KEEPALIVES)  # a NAT keep-alive (CRLFs): not an error, nothing to answer
                return self._out
            if len(data) > self._max_message_bytes:
                self.counters.add(TOO_LARGE)  # a request whose head was read is answered 513
            else:
                self.counters.add(PARSE_ERRORS)
            if exc.status_hint and exc.message is not None:
                self._reply_stateless(exc.message, source, exc.status_hint, exc.reason.encode()[:100])
            return self._out
        if message.is_request:
            self._on_request(message, source)
        else:
            self._on_response(message)
        return self._out

    def timer(self, now: float) -> list:
        """Run the timers due at `now`; returns the actions they cause."""
        self._out = []
        self._now = now
        timers = self.timers
        while True:
            subject = timers.pop(now)  # one at a time: a timer the last one stopped does not run
            if subject is None:
                return self._out
            kind = timers.kind
            if kind == TIMER_A_E:
                self._timer_a_e(subject)
            elif kind == TIMER_B_F:
                self._timer_b_f(subject)
            elif kind == TIMER_D_K:
                self._timer_d_k(subject)
            elif kind == TIMER_G:
                self._timer_g(subject)
            else:
                self._timer_h_i_j_l(subject)

    def next_deadline(self) -> float | None:
        return self.timers.next_deadline()

    def connection_failed(self, addr: Address, reason: str, now: float) -> list:
        """The connection to a peer at a stream address could not be opened or broke
        (refused, reset, TLS handshake failed): every client transaction still waiting on it
        fails at once, as on a timeout, and its destination is reported -- not one FR timer later."""
        self._out = []
        self._now = now
        waiting = self.stream_clients.pop(addr, None)
        if waiting:
            for client in list(waiting.values()):
                if client.done():
                    continue
                self.counters.add(CONNECTION_FAILOVERS)
                server, client.server = client.server, None
                self._timer_d_k(client)
                if server is not None:
                    self._branch_failed(server, client, 408, None, reason)
        return self._out

    def busy(self) -> bool:
        """A transaction still waits for a final response (a graceful stop waits for it)."""
        return any(server.proceeding() for server in self.servers.values()) or any(
            not client.done() for client in self.clients.values())

    # -- helpers -------------------------------------------------------------------------

    def _send(self, data: bytes, addr: Address, upstream: bool) -> None:
        send = Send.__new__(Send)  # compiled: the type's allocation alone, no call through type() and __init__
        send.data, send.addr, send.upstream = data, addr, upstream
        self._out.append(send)

    def _new_tag(self) -> bytes:
        self._tags += 1
        return counted(self._tag_prefix, self._tags)

    def _reply_stateless(self, request: SipMessage, source: Address, code: int, reason: bytes | None = None,
                         **options) -> None:
        self.counters.add(REPLIES_1XX - 1 + min(code // 100, 6))
        self._send(build_response(request, code, reason, to_tag=self._new_tag(), server=self._server_header,
                                  source=source, **options), source, True)

    # -- requests ------------------------------------------------------------------------

    def _on_request(self, message: SipMessage, source: Address) -> None:
        method = message.method_id
        if method == M_ACK:
            self._on_ack(message, source)
            return
        if method == M_CANCEL:
            self._on_cancel(message, source)
            return
        key = message.server_key()
        server = self.servers.get(key)
        if server is not None:
            self.counters.add(RETRANSMISSIONS_ABSORBED)
            response = server.request_retransmitted()
            if response is not None:
                self._send(response, server.source, True)
            return
        in_dialog = message.to_tag_start >= 0
        if not in_dialog and not self._admitted(message, source):
            return
        ruri = message.ruri
        if not in_dialog and ruri.kind not in ("sip", "sips", "tel"):
            self._reply_stateless(message, source, 416)  # OPTIONS too: an unknown scheme never addresses fastds
            return
        if method == M_OPTIONS and not in_dialog and ruri.user is None and not message.routes:
            self._reply_stateless(message, source, 200)  # addressed to fastds itself
            return
        if message.max_forwards == 0:
            self._reply_stateless(message, source, 483)
            return
        if self.branches.came_back(message):  # a Via of ours: a loop (§16.3 step 4; spirals refused too)
            self._reply_stateless(message, source, 482)
            return
        if message.has_header(b"Proxy-Require"):
            proxy_require = message.header_values("Proxy-Require")
            self._reply_stateless(message, source, 420,
                                  extra_headers=b"Unsupported: %s\r\n" % b", ".join(proxy_require))
            return
        our_routes = self.record_route.ours(message)
        if in_dialog:
            self._on_in_dialog(message, source, key, our_routes)
            return
        if message.method_id == M_INVITE and self.draining:
            self.counters.add(DRAIN_REJECTED)
            self._reply_stateless(message, source, 503, b"Shutting Down", retry_after_s=self.config.overload_retry_after_s)
            return
        if message.method_id == M_INVITE and len(self.servers) >= self.config.max_transactions:
            self.counters.add(OVERLOAD_REJECTED)  # the memory budget
            self._reply_stateless(message, source, 503, retry_after_s=self.config.overload_retry_after_s)
            return
        if message.method_id == M_INVITE and self.saturated:
            self.counters.add(LAG_REJECTED)  # the event loop cannot keep up (fastds/dispatch/overload.py)
            self._reply_stateless(message, source, 503, retry_after_s=self.config.overload_retry_after_s)
            return
        route = self.router.route(ruri.user)
        targets = self.selector.select(message, route.rule, source[0].encode())
        if not targets:
            self.counters.add(NO_ROUTE)
            self._reply_stateless(message, source, 500, self.config.no_route_reason)
            return
        if ruri.kind == "sips":  # only ever over TLS (RFC 3261 §26.2.2)
            targets = [target for target in targets if target.transport == "tls"]
            if not targets:
                self.counters.add(TRANSPORT_REFUSED)
                self._reply_stateless(message, source, 480, b"sips: needs a TLS destination, none in the set")
                return
        self.selector.count_pick(targets[0])
        server = self._new_server(key, message, source)
        if server.is_invite:
            server.started = self._now  # call setup time: until the first final goes upstream
        server.targets = targets
        server.pop_routes = our_routes
        server.record_route = self.config.record_route
        if route.number is not None and ruri.user_span is not None:
            start, end = ruri.user_span
            server.request_uri = message.data[message.ruri_start:start] + route.number + message.data[end:message.ruri_end]
        self._try_next(server)

    def _admitted(self, message: SipMessage, source: Address) -> bool:
        """An initial request from a scanner is dropped; from an untrusted source, refused or dropped."""
        scanner = self.config.scanner
        if scanner is not None:
            user_agent = message.header("User-Agent")
            if user_agent is not None and scanner.search(user_agent.lower()):
                self.counters.add(SCANNER_DROPPED)
                return False
        if self.trust is None or self.trust.accepts(source[0], source[1], message.request_uri, transport_of(source)):
            return True
        if self.config.untrusted_action == "drop":
            self.counters.add(UNTRUSTED_DROPPED)
        else:
            self.counters.add(UNTRUSTED_REJECTED)
            self._reply_stateless(message, source, 403, b"Forbidden (untrusted source)")
        return False

    def _new_server(self, key: bytes, message: SipMessage, source: Address) -> ServerTransaction:
        server = ServerTransaction(key, message, source)
        server.to_tag = self._new_tag()
        self.servers[key] = server
        if server.is_invite:  # one 100 Trying upstream at once (tm auto_100trying)
            server.last_response = build_response(message, 100, source=source)
            self._send(server.last_response, source, True)
        return server

    def _on_in_dialog(self, message: SipMessage, source: Address, key: bytes, our_routes: int) -> None:
        """Loose routing (§16.4, §16.12) through our own Record-Route only."""
        if not our_routes:
            self.counters.add(IN_DIALOG_REFUSED)
            self._reply_stateless(message, source, 403, b"Forbidden (no fastds Route)")
            return
        hop = self._in_dialog_hop(message, our_routes)
        if hop is None:
            self._reply_stateless(message, source, 404, b"Next hop is not an IP address over UDP, TCP or TLS")
            return
        self.counters.add(IN_DIALOG_FORWARDED)  # a drain waits while these keep coming
        server = self._new_server(key, message, source)
        server.pop_routes = our_routes
        self._forward(server, hop, None)

    def _in_dialog_hop(self, message: SipMessage, our_routes: int) -> Address | None:
        """After popping our `our_routes` Routes: where the next Route's URI, else the
        Request-URI, sends the request -- on the connection the last of our Routes names,
        when it names one (the hop's address stays, to reconnect to if that connection is gone)."""
        target = message.next_hop(our_routes)
        if target is None:
            return None
        host, port, transport = target
        flow = self.record_route.connection(message, our_routes)
        if flow:
            return (host, port, flow)
        return (host, port) if transport == "udp" else dial(host, port, transport)

    def _via(self, addr: Address) -> tuple[bytes, bytes]:
        """Our Via's transport and sent-by for a request to `addr`."""
        transport = transport_of(addr)
        if transport == "udp":
            return self._udp_via
        return transport.upper().encode(), self.config.stream_sent_by.get(transport, self.config.private_sent_by)

    def _on_ack(self, message: SipMessage, source: Address) -> None:
        server = self.servers.get(message.server_key())
        if server is not None and server.absorbs_ack():  # the ACK for our non-2xx final (§17.2.1)
            if server.ack_received():
                self.timers.stop(server, RETRANSMIT)
                if on_stream(server.source):  # Timer I is zero on a reliable transport (§17.2.1)
                    self._timer_h_i_j_l(server)
                else:
                    self.timers.start(server, END, TIMER_H_I_J_L, self._now, self._t4, CLEANUP_TICK_S)
            return
        # ACK for a 2xx: its own transaction, loose-routed statelessly (§16.12)
        our_routes = self.record_route.ours(message)
        hop = self._in_dialog_hop(message, our_routes) if our_routes else None
        if hop is None or message.max_forwards == 0:  # no hop: not ours, a name, or another transport
            self.counters.add(ACK_DROPPED)
            return
        self.counters.add(IN_DIALOG_FORWARDED)
        transport, sent_by = self._via(hop)
        data = forward_request(message, transport=transport, sent_by=sent_by, branch=self.branches.new(),
                               pop_routes=our_routes)
        if not on_stream(hop) and len(data) > self._max_datagram_bytes:
            self.counters.add(TOO_LARGE)
            return
        self._send(data, hop, False)

    def _on_cancel(self, message: SipMessage, source: Address) -> None:
        """§16.10: answer the CANCEL, stop failover, cancel the live branch."""
        server = self.servers.get(message.server_key(b"INVITE"))
        if server is None or not server.is_invite:
            self._reply_stateless(message, source, 481)
            return
        self._send(build_response(message, 200, to_tag=server.to_tag, server=self._server_header, source=source),
                   source, True)
        if not server.cancel_received():
            return
        client = server.client
        if client is not None and client.rang():
            self._send_cancel(client)  # the next hop answers the INVITE 487; relayed
            return
        if client is not None:
            client.cancel_pending = True  # never CANCEL a branch before it answered (§9.1)
            client.server = None
            server.client = None
        self._reply(server, 487)

    # -- forwarding and failover -------------------------------------------------------------

    def _try_next(self, server: ServerTransaction) -> bool:
        if not server.targets:
            return False
        destination = server.targets.pop(0)
        if destination.transport == "udp":
            self._forward(server, (destination.host, destination.port), destination)
        else:
            self._forward(server, dial(destination.host, destination.port, destination.transport), destination)
        return True

    def _forward(self, server: ServerTransaction, addr: Address, destination: Destination | None) -> None:
        request = server.request
        branch = self.branches.new()
        record_route = inbound_record_route = None
        if server.record_route:
            # the callee's side; the caller's below it when that is a connection (named, to go back
            # on) or another transport (RFC 5658)
            outbound = transport_of(addr)
            record_route = self.record_route.uri(request, outbound)
            if on_stream(server.source):
                inbound_record_route = self.record_route.uri(request, transport_of(server.source), server.source[2])
            elif outbound != "udp":
                inbound_record_route = self.record_route.uri(request)
        transport, sent_by = self._via(addr)
        data = forward_request(
            request, transport=transport, sent_by=sent_by, branch=branch,
            record_route=record_route, record_route_inbound=inbound_record_route,
            pop_routes=server.pop_routes, request_uri=server.request_uri,
            source_ip=server.source[0].encode(), source_port=server.source[1])
        if not on_stream(addr) and len(data) > self._max_datagram_bytes:
            # every destination gets the same bytes, so no failover and nobody is charged
            self.counters.add(TOO_LARGE)
            server.targets = None
            self._reply(server, 513)
            return
        client = ClientTransaction(branch, request.cseq_method, server, destination, addr, data)
        server.client = client
        self._start_client(client)
        if destination is not None:
            self.counters.add(FORWARDED_TO_DESTINATION)
            client.in_flight = self.selector.hold_load(destination)  # algorithm 9 reads it

    def _start_client(self, client: ClientTransaction) -> None:
        self.clients[client.key] = client
        self._send(client.data, client.addr, False)
        if on_stream(client.addr):  # reliable: no Timer A / E; a broken connection fails it (connection_failed)
            self.stream_clients.setdefault(client.addr, {})[client.key] = client
        else:
            client.retransmit_interval = self._t1
            self.timers.start(client, RETRANSMIT, TIMER_A_E, self._now, self._t1)
        self.timers.start(client, FINAL_WAIT, TIMER_B_F, self._now, self._fr_timeout)

    def _send_cancel(self, client: ClientTransaction) -> None:
        cancel = ClientTransaction(client.branch, b"CANCEL", None, None, client.addr, build_cancel(client.sent))
        self._start_client(cancel)

    def _timer_a_e(self, client: ClientTransaction) -> None:
        """Timer A (INVITE: doubling until a response) / E (non-INVITE: doubling to T2, at
        T2 once a provisional came)."""
        if not client.retransmits():
            return
        self.counters.add(RETRANSMISSIONS_SENT)
        self._send(client.data, client.addr, False)
        interval = client.retransmit_interval * 2
        if not client.is_invite:
            interval = self._t2 if client.rang() else min(interval, self._t2)
        client.retransmit_interval = interval
        self.timers.start(client, RETRANSMIT, TIMER_A_E, self._now, interval)

    def _timer_b_f(self, client: ClientTransaction) -> None:
        """Timer B / F -- FR, or FR-INV once it rang: no final response in time. CANCEL the
        branch if it had a provisional, then act as on a local 408 (tm's faked reply)."""
        if client.done():
            return
        self.counters.add(TIMEOUTS)
        if client.destination is not None:
            self.selector.count_timeout(client.destination)
        server, client.server = client.server, None
        if client.timed_out():
            self._send_cancel(client)
            self.timers.stop(client, RETRANSMIT)
            self.timers.start(client, END, TIMER_D_K, self._now, 64 * self._t1, CLEANUP_TICK_S)
        else:
            self._timer_d_k(client)
        if server is not None:
            self._branch_failed(server, client, 408, None)

    def _branch_failed(self, server: ServerTransaction, client: ClientTransaction, code: int,
                       response: SipMessage | None, broken: str | None = None) -> None:
        """OpenSIPS's usual dispatcher failure_route (t_check_status, ds_next_dst): fail over on a failover code
        or local 408 (broken: the connection to it failed, so), 503 when the list is
        exhausted; otherwise relay the final."""
        server.client = None
        if not server.proceeding():
            return
        if server.cancelled:
            self._relay_final(server, response) if response is not None else self._reply(server, 487)
            return
        fail_over = client.destination is not None and code < 600 and (
            response is None or code in self.config.failover_codes)
        if fail_over:
            self.counters.add(FAILOVERS)
            self.selector.count_failover(client.destination)
            if broken is not None:  # no connection is no doubt: nothing to confirm
                reason, answering = broken, False
            else:
                reason = f"{code} from traffic" if response is not None else "timeout (no final reply)"
                # answering: it replied to this request (a failover code, or a provisional before FR-INV
                # ran out: the branch is then COMPLETED), or to any other during the FR wait
                since = self.last_answer.get(client.destination.id)
                answering = (response is not None or client.answered()
                             or (since is not None and since > self._now - self._fr_timeout))
            self._out.append(ReportFailure(client.destination, reason, answering))
            if not self._try_next(server):
                self._reply(server, 503)
            return
        if response is None:
            self._reply(server, 408)
        else:
            self._relay_final(server, response)

    # -- responses -------------------------------------------------------------------------

    def _on_response(self, message: SipMessage) -> None:
        client = self.clients.get(message.client_key())
        if client is None:
            self._on_stray_response(message)
            return
        code = message.status_code
        if client.destination is not None:
            self.last_answer[client.destination.id] = self._now
        if code < 200:
            self._on_provisional(client, message)
            return
        if client.done():  # a retransmitted final
            if client.ack is not None:
                self._send(client.ack, client.addr, False)
            elif client.is_invite and code >= 300:
                self._ack(client, message)
            return
        if client.destination is not None:
            self.selector.count_reply(client.destination, code)
        server, client.server = client.server, None
        if code < 300 and client.is_invite:
            self._timer_d_k(client)  # a 2xx ends an INVITE client transaction at once (§17.1.1.2)
            if server is not None:
                server.client = None
                self._relay_final(server, message)
            else:
                self._relay_stateless(message)  # a 2xx to a cancelled branch still reaches the caller
            return
        # a non-2xx final, or any final of a non-INVITE (figure 6): Completed, absorbing
        # retransmissions of it until Timer D / K
        client.final_received()
        self.timers.stop_all(client)
        if client.is_invite:
            self._ack(client, message)
        client.compact()
        if on_stream(client.addr):  # timers D and K are zero on a reliable transport (§17.1.1.2, §17.1.2.2)
            self._timer_d_k(client)
        else:
            wait = TIMER_D_S if client.is_invite else self._t4
            self.timers.start(client, END, TIMER_D_K, self._now, wait, CLEANUP_TICK_S)
        if server is not None:
            self._branch_failed(server, client, code, message)

    def _on_provisional(self, client: ClientTransaction, message: SipMessage) -> None:
        if not client.provisional_received():
            return
        if client.is_invite:
            # Proceeding: Timer A stops (§17.1.1.2; left running it woke the loop once a call
            # for nothing), FR-INV restarts on every provisional (tm restart_fr_on_each_reply)
            self.timers.stop(client, RETRANSMIT)
            self.timers.start(client, FINAL_WAIT, TIMER_B_F, self._now, self._fr_inv_timeout)
        if client.cancel_pending:
            client.cancel_pending = False
            self._send_cancel(client)
        server = client.server
        if server is not None and message.status_code > 100 and server.proceeding():
            server.last_response = forward_response(message)
            self._send(server.last_response, server.source, True)

    def _ack(self, client: ClientTransaction, response: SipMessage) -> None:
        client.ack = build_ack(client.sent, response)
        self._send(client.ack, client.addr, False)

    def _relay_final(self, server: ServerTransaction, response: SipMessage) -> None:
        self._final(server, forward_response(response), response.status_code)

    def _reply(self, server: ServerTransaction, code: int, reason: bytes | None = None) -> None:
        self._final(server, build_response(server.request, code, reason, to_tag=server.to_tag,
                                           server=self._server_header, source=server.source), code)

    def _final(self, server: ServerTransaction, data: bytes, code: int) -> None:
        """Send a final response upstream and move the server transaction on (§17.2)."""
        self.counters.add(REPLIES_1XX - 1 + min(code // 100, 6))
        if server.started:
            self.setup_times.observe(self._now - server.started)
            server.started = 0.0
        self._send(data, server.source, True)
        self.timers.stop_all(server)
        reliable = on_stream(server.source)
        if server.final_sent(data, code) and not reliable:  # Timer G: unreliable transports only
            server.retransmit_interval = self._t1
            self.timers.start(server, RETRANSMIT, TIMER_G, self._now, self._t1)
        if reliable and not server.is_invite:  # Timer J is zero on a reliable transport (§17.2.2)
            self._timer_h_i_j_l(server)
            return
        self.timers.start(server, END, TIMER_H_I_J_L, self._now, 64 * self._t1, CLEANUP_TICK_S)

    def _timer_g(self, server: ServerTransaction) -> None:
        """Timer G: resend the non-2xx final until the ACK comes (§17.2.1)."""
        if not server.resends_final():
            return
        self._send(server.last_response, server.source, True)
        server.retransmit_interval = min(2 * server.retransmit_interval, self._t2)
        self.timers.start(server, RETRANSMIT, TIMER_G, self._now, server.retransmit_interval)

    def _on_stray_response(self, message: SipMessage) -> None:
        """No transaction: a 2xx (retransmitted end to end by the UAS after ours ended,
        §13.3.1.4, §16.7) is relayed by Via when the top Via is ours. Anything else is dropped:
        a late provisional or non-2xx final belongs to a client transaction that ended, and
        relaying it would give the caller a second final after the one its transaction sent."""
        if not 200 <= message.status_code < 300 or not self.branches.is_ours(message.branch) or len(message.vias) < 2:
            self.counters.add(STRAY_RESPONSES_DROPPED)
            return
        self._relay_stateless(message)

    def _relay_stateless(self, message: SipMessage) -> None:
        data = forward_response(message)
        upstream = scan(data)
        if (upstream.via_transport or b"UDP").upper() != b"UDP":
            # a peer on TCP: its connection is known only to the transaction, gone by now (the
            # first 2xx went on it); never sent over UDP instead
            self.counters.add(STRAY_STREAM_DROPPED)
            return
        host = upstream.received or upstream.via_host
        if not ip_literal(host):
            self.counters.add(STRAY_RESPONSES_DROPPED)
            return
        port = upstream.rport if upstream.rport > 0 else (upstream.via_port or 5060)
        self._send(data, (host.strip(b"[]").decode("ascii"), port), True)

    # -- ends ------------------------------------------------------------------------------

    def _timer_d_k(self, client: ClientTransaction) -> None:
        """Timer D / K (or at once: a 2xx, a timeout without a provisional): the client ends."""
        self.timers.stop_all(client)
        client.terminate()
        if self.clients.get(client.key) is client:
            del self.clients[client.key]
        if on_stream(client.addr):
            waiting = self.stream_clients.get(client.addr)
            if waiting is not None and waiting.get(client.key) is client:
                del waiting[client.key]
                if not waiting:
                    del self.stream_clients[client.addr]

    def _timer_h_i_j_l(self, server: ServerTransaction) -> None:
        """Timers H, I, J, L: the server transaction ends (64 T1 after its final; T4 after the ACK;
        I and J at once on a reliable transport)."""
        self.timers.stop_all(server)
        server.terminate()
        if self.servers.get(server.key) is server:
            del self.servers[server.key]
