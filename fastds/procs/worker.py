"""A SIP worker process: the proxy on uvloop over the shared destination table.

Owns composing one worker (docs/architecture.md §1-§2): its sockets (WorkerSockets, bound once
by the master and inherited by every process that runs this worker), routing read from shared
memory only, traffic failures sent to the prober, its counters row, its flood limit's upkeep,
the loop-lag tick that marks it saturated, and its part of a drain (the master's mark, on
SIGUSR1 and every second: new INVITEs 503, the rest goes on; on SIGTERM what is open gets FINISH_S).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import signal
import socket
import time

import uvloop

from fastds._ext import dshash
from fastds.config import Settings, node_id
from fastds.dispatch.overload import TICK_S, LoopLag
from fastds.dispatch.pike import FloodGuard, Pike
from fastds.dispatch.proxy import Proxy, ProxyConfig
from fastds.dispatch.rules import SelectionRule
from fastds.dispatch.sets import tls_name_at
from fastds.errors import FastdsError
from fastds.net.bind import bind_tcp, bind_udp
from fastds.net.egress import EgressPolicy
from fastds.net.handoff import Handoff
from fastds.net.hep import HepCapture
from fastds.net.pump import MessagePump, sent_by
from fastds.net.tls import load_certificate, server_context
from fastds.procs import EXIT_BOOT_FAILURE
from fastds.procs.reports import FailureReporter
from fastds.procs.streams import stream_endpoint
from fastds.shm.layout import ShmView
from fastds.shm.live import LiveRouter, LiveSelector, LiveTrust
from fastds.sip import BranchFactory, RecordRoute

log = logging.getLogger("fastds.worker")
COUNTERS_EVERY_S = 1.0
DRAIN_POLL_S = 0.1
NEVER_FULL_GC = 2**31 - 1  # young collections between two full ones
DRAIN_QUIET_POLLS = 3  # idle this many polls in a row: the ACK / BYE after a last 200 has passed
FINISH_S = 5.0  # on SIGTERM (after the node's drain, or the master gone): for transactions still open


def bind_public(settings: Settings) -> socket.socket:
    host, port = settings.udp_listen
    return bind_udp(host, port, reuse_port=True, rcvbuf_bytes=settings.sip_rcvbuf_bytes)


STREAMS = ("tcp", "tls")


def bind_stream_listeners(settings: Settings) -> dict[str, socket.socket]:
    """The TCP and TLS listeners FASTDS_SIP_LISTEN names, by transport (SO_REUSEPORT)."""
    listeners = {}
    try:
        for transport in STREAMS:
            if settings.stream_listen(transport) is not None:
                listeners[transport] = bind_tcp(*settings.stream_listen(transport), reuse_port=True,
                                                what=f"SIP over {transport.upper()}")
    except OSError:
        for sock in listeners.values():
            sock.close()
        raise
    return listeners


@dataclasses.dataclass
class WorkerSockets:
    public: socket.socket
    private: socket.socket
    handoff: Handoff
    streams: dict[str, socket.socket]  # the TCP and TLS listeners (SO_REUSEPORT) FASTDS_SIP_LISTEN has

    @classmethod
    def bind(cls, settings: Settings, master_pid: int, index: int, workers: int) -> "WorkerSockets":
        """OSError (naming the address) when one cannot be bound."""
        handoff = Handoff(master_pid, index, workers)
        public = bind_public(settings)
        private = bind_udp(settings.udp_listen[0], 0, reuse_port=False, rcvbuf_bytes=settings.sip_rcvbuf_bytes)
        return cls(public, private, handoff, bind_stream_listeners(settings))

    def leave_group(self) -> None:
        """For a worker that keeps dying (respawned only after a back-off): its public socket
        leaves the SO_REUSEPORT group, so the kernel moves its peers to the other workers'
        sockets meanwhile instead of keeping their datagrams in one nobody reads."""
        self.public.close()

    def rejoin_group(self, settings: Settings) -> None:
        """Before the respawn: a fresh public socket if leave_group() closed it (OSError if it
        cannot be bound)."""
        if self.public.fileno() == -1:
            self.public = bind_public(settings)

    def close(self) -> None:
        for sock in (self.public, self.private, *self.streams.values()):
            sock.close()
        self.handoff.close()


def proxy_config(settings: Settings, private_sent_by: bytes, stream_sent_by: dict[str, bytes]) -> ProxyConfig:
    return ProxyConfig(
        private_sent_by=private_sent_by, stream_sent_by=stream_sent_by,
        t1=settings.t1_ms / 1000, t2=settings.t2_ms / 1000, t4=settings.t4_ms / 1000,
        fr_timeout=settings.fr_timeout_ms / 1000, fr_inv_timeout=settings.fr_inv_timeout_ms / 1000,
        failover_codes=settings.failover_codes, max_transactions=settings.max_transactions,
        record_route=settings.record_route, server_header=settings.server_header.encode(),
        no_route_reason=settings.no_route_reason.encode(), max_message_bytes=settings.sip_max_message_bytes,
        max_headers=settings.sip_max_headers, untrusted_action=settings.untrusted_action,
        block_user_agents=settings.block_user_agents)


class PikeKeeper:
    """A worker's flood limit beyond admitting datagrams, once a second: releases asked
    for through shared memory (MI pike_rm), one log line per block and per release, and
    the blocked IPs published in the worker's row (Unix times)."""

    def __init__(self, pike: Pike, view: ShmView, index: int, loop: asyncio.AbstractEventLoop):
        self.pike, self._view, self._index, self._loop = pike, view, index, loop
        self._unblocks_seen, _ = view.unblock_requests(0)  # a new worker has nothing of older requests

    def tend(self) -> None:
        now = self._loop.time()
        self._unblocks_seen, ips = self._view.unblock_requests(self._unblocks_seen)
        for ip in ips:
            if self.pike.unblock(ip, now):
                log.info("worker %d: flood limit released %s (pike_rm)", self._index, ip)
        blocked, released = self.pike.sweep(now)
        for source in blocked:
            log.warning("worker %d: flood limit blocks %s for %d s: more than %d requests in %d ms", self._index,
                        source.ip, self.pike.block_s, self.pike.limit, self.pike.window_s * 1000)
        for source in released:
            log.info("worker %d: flood limit released %s after %d s, %d requests dropped", self._index, source.ip,
                     self.pike.block_s, source.dropped)
        wall = time.time() - now
        self._view.write_blocked(self._index, [(b.ip, b.since + wall, b.until + wall, b.dropped)
                                               for b in self.pike.blocked()])


async def serve(settings: Settings, view: ShmView, index: int, sockets: WorkerSockets, secret: bytes, advertised: str,
                ready_fd: int, report_address: str) -> None:
    loop = asyncio.get_running_loop()
    public, private, handoff = sockets.public, sockets.private, sockets.handoff
    default = SelectionRule.parse(settings.default_set, settings.default_alg, settings.default_flags)
    trust = LiveTrust(view, settings.trusted_group, settings.trusted_sources)
    listening = {transport: sent_by(sock, advertised) for transport, sock in sockets.streams.items()}
    selector = LiveSelector(view, settings.hash_key)
    proxy = Proxy(proxy_config(settings, sent_by(private, advertised), listening), selector,
                  LiveRouter(view, default), BranchFactory(secret, node_id(settings)),
                  RecordRoute(secret, sent_by(public, advertised), listening), trust)
    egress = EgressPolicy(settings.egress_allow)
    reporter = FailureReporter(report_address, settings.probing_threshold, loop)
    pike = Pike(settings.pike_reqs, settings.pike_window_ms / 1000, settings.pike_block_s,
                settings.pike_table_size) if settings.pike_reqs else None
    keeper = PikeKeeper(pike, view, index, loop) if pike is not None else None
    tls = None
    tcp = stream_endpoint(  # with no listener too: for TCP and TLS destinations and next hops
        settings, loop, index, handoff,
        lambda host, port: tls_name_at((d for found in selector.current().sets.values() for d in found.destinations),
                                       host, port))
    if "tls" in sockets.streams:
        tls = server_context(settings.tls_cert_file, settings.tls_key_file, settings.tls_ca_file,
                             settings.tls_verify_clients)
    capture = None
    if settings.hep_destination is not None:
        host = advertised or settings.udp_listen[0]
        capture = HepCapture(settings.hep_destination, settings.hep_capture_id, settings.hep_sampling,
                             {"public": (host, public.getsockname()[1]), "private": (host, private.getsockname()[1]),
                              **{transport: (host, sock.getsockname()[1]) for transport, sock in sockets.streams.items()}})
    endpoint = MessagePump(loop, proxy, egress, reporter, handoff,
                           FloodGuard(pike, trust, settings.pike_trusted) if pike is not None else None, tcp, capture)
    await endpoint.start(public, private)
    tcp.deliver = endpoint.on_stream_messages
    tcp.broken = endpoint.on_connection_broken
    for transport, listener in sockets.streams.items():
        await tcp.start(listener, transport, tls if transport == "tls" else None)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)  # SIGINT (Ctrl-C) is the master's: it drains first

    def reload_certificate() -> None:  # destinations and routes reload through shared memory
        if not settings.tls_cert_file:
            return
        try:
            if tls is not None:
                load_certificate(tls, settings.tls_cert_file, settings.tls_key_file)
            tcp.reload_certificate(settings.tls_cert_file, settings.tls_key_file)
        except ValueError as exc:
            log.error("worker %d: TLS certificate not reloaded, the old one stays: %s", index, exc)
            return
        log.info("worker %d: TLS certificate reloaded", index)

    loop.add_signal_handler(signal.SIGHUP, reload_certificate)

    def publish_counters() -> None:
        counters = dict(proxy.counters, packets_out=endpoint.packets_out, egress_blocked=egress.blocked,
                        parse_errors=proxy.counters["parse_errors"] + endpoint.truncated,
                        transactions_open=len(proxy.servers), send_errors=endpoint.send_errors,
                        handler_errors=endpoint.handler_errors, reports_lost=reporter.lost,
                        handoffs_out=handoff.handed_off, handoffs_in=handoff.received, handoffs_dropped=handoff.dropped,
                        draining=int(proxy.draining), drain_waiting=int(proxy.draining and proxy.busy()),
                        pid=os.getpid())
        counters.update(tcp_connections=tcp.connections("tcp"), tls_connections=tcp.connections("tls"),
                        tcp_accepted=tcp.accepted, tcp_dialled=tcp.dialled, tcp_connect_failures=tcp.connect_failures,
                        tls_handshake_failures=tcp.handshake_failures, tcp_framing_errors=tcp.framing_errors,
                        tcp_writes_lost=tcp.writes_lost, tcp_slow_readers=tcp.slow_readers)
        if pike is not None:
            counters.update(pike_dropped=pike.dropped, pike_blocks=pike.blocks, pike_blocked=len(pike.blocked()),
                            pike_tracked=len(pike))
        counters.update(proxy.setup_times.as_counters("setup"))
        if capture is not None:
            counters.update(hep_sent=capture.sent_packets, hep_lost=capture.lost)
        view.write_worker_counters(index, counters)

    def drain() -> None:
        """The node drains (the master's mark in shared memory; SIGUSR1 says so at once)."""
        if not proxy.draining and view.draining_since():
            proxy.draining = True
            log.info("worker %d draining: new INVITEs get 503, in-dialog requests and transactions go on", index)
            publish_counters()

    loop.add_signal_handler(signal.SIGUSR1, drain)

    async def counters_loop() -> None:
        while True:
            drain()
            if keeper is not None:
                keeper.tend()
            tcp.sweep()
            publish_counters()
            await asyncio.sleep(COUNTERS_EVERY_S)

    publisher = loop.create_task(counters_loop())
    lag = LoopLag(settings.overload_lag_ms / 1000)

    def lag_tick(due: float) -> None:
        saturated = lag.tick(due, loop.time())
        if saturated is not None:
            proxy.saturated = saturated
            if saturated:
                log.warning("worker %d saturated: its event loop lags %.0f ms; shedding new INVITEs", index,
                            lag.last_lag_s * 1000)
            else:
                log.info("worker %d no longer saturated (loop lag %.0f ms)", index, lag.last_lag_s * 1000)
        arm_lag_tick()

    def arm_lag_tick() -> None:
        due = loop.time() + TICK_S
        loop.call_at(due, lag_tick, due)

    arm_lag_tick()
    os.write(ready_fd, b"W")
    log.info("worker %d listening on %s (private port %d)", index, ",".join(map(str, settings.sip_listen)),
             private.getsockname()[1])
    await stop.wait()
    proxy.draining = True
    deadline = loop.time() + FINISH_S
    quiet = 0
    while loop.time() < deadline and quiet < DRAIN_QUIET_POLLS:
        quiet = 0 if proxy.busy() else quiet + 1
        await asyncio.sleep(DRAIN_POLL_S)
    log.info("worker %d stopped (%s)", index, "drained" if quiet >= DRAIN_QUIET_POLLS else "drain timeout")
    publisher.cancel()
    publish_counters()
    tcp.close()
    endpoint.close()
    if capture is not None:
        capture.close()


def main(settings: Settings, region, index: int, secret: bytes, advertised: str, ready_fd: int, report_address: str,
         sockets: WorkerSockets) -> int:
    try:
        view = ShmView(region)
    except FastdsError as exc:
        log.error("worker %d cannot start: %s", index, exc)
        return EXIT_BOOT_FAILURE
    dshash.seed_random()  # forked children must not share algorithm 6's sequence
    # Transactions end without reference cycles (tests/property/test_long_run.py holds the core
    # to it), so the cyclic collector has little to do: move what startup made out of its sight,
    # collect the young generations rarely, and never the whole heap on its own -- a full pass
    # over ~90,000 open transactions stalled the loop ~300 ms once a minute in a 30-minute soak
    # at 1,400 calls/s (each stall shed INVITEs and lost retransmissions).
    gc.freeze()
    gc.set_threshold(50_000, 50, NEVER_FULL_GC)
    uvloop.run(serve(settings, view, index, sockets, secret, advertised, ready_fd, report_address))
    return 0
