"""A SIP worker: loads routing, binds its sockets, runs the proxy on uvloop until stopped.

Owns composing one worker (DESIGN.md §1-§2): the public socket (SO_REUSEPORT) and the
private one on the same IP, the advertised address in Via and Record-Route, the branch
and Record-Route keys, and the graceful stop on SIGTERM / SIGINT. Passive failures are
logged here until the prober process takes them (ds_mark_dst "p").
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import socket

import uvloop

from fastds.config import Settings
from fastds.dispatch.proxy import Proxy, ProxyConfig
from fastds.dispatch.txn import ReportFailure
from fastds.net.egress import EgressPolicy
from fastds.net.udp import UdpEndpoint, bind_udp, sent_by
from fastds.procs.loading import load_routing
from fastds.procs.secret import load_or_create_secret
from fastds.sip import BranchFactory
from fastds.sip.branch import RecordRoute
from fastds.store import open_store

log = logging.getLogger("fastds.worker")


def advertised_host(settings: Settings) -> str:
    if settings.sip_advertise:
        return settings.sip_advertise
    host = settings.sip_listen[0]
    if host not in ("0.0.0.0", "::"):
        return host
    guess = socket.gethostbyname(socket.gethostname())
    log.warning("FASTDS_SIP_LISTEN is a wildcard: advertising %s (from the host name); set FASTDS_SIP_ADVERTISE", guess)
    return guess


def node_id(settings: Settings) -> str:
    return settings.node_id or re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:16] or "node"


def proxy_config(settings: Settings, private_sent_by: bytes) -> ProxyConfig:
    return ProxyConfig(
        private_sent_by=private_sent_by,
        t1=settings.t1_ms / 1000, t2=settings.t2_ms / 1000, t4=settings.t4_ms / 1000,
        fr_timeout=settings.fr_timeout_ms / 1000, fr_inv_timeout=settings.fr_inv_timeout_ms / 1000,
        failover_codes=settings.failover_codes, max_transactions=settings.max_transactions,
        record_route=settings.record_route, server_header=settings.server_header.encode(),
        no_route_reason=settings.no_route_reason.encode(), max_message_bytes=settings.sip_max_message_bytes,
        max_headers=settings.sip_max_headers)


def report_failure(report: ReportFailure) -> None:
    destination = report.destination
    log.info("set %d %s failed on traffic (%s)", destination.set_id, destination.uri, report.reason)


async def serve(settings: Settings) -> None:
    store = open_store(settings.db_url)
    try:
        selector, router, problems = await load_routing(store, settings)
    finally:
        await store.close()
    for problem in problems:
        log.warning("%s", problem)
    secret = load_or_create_secret(settings.secret, settings.state_dir)
    host, port = settings.sip_listen
    public = bind_udp(host, port, reuse_port=True, rcvbuf_bytes=settings.sip_rcvbuf_bytes)
    private = bind_udp(host, 0, reuse_port=False, rcvbuf_bytes=settings.sip_rcvbuf_bytes)
    advertised = advertised_host(settings)
    proxy = Proxy(proxy_config(settings, sent_by(private, advertised)), selector, router,
                  BranchFactory(secret, node_id(settings)), RecordRoute(secret, sent_by(public, advertised)))
    loop = asyncio.get_running_loop()
    endpoint = UdpEndpoint(loop, proxy, EgressPolicy(settings.egress_allow), report_failure)
    await endpoint.start(public, private)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    destinations = sum(len(s.destinations) for s in selector.sets.values())
    log.info("fastds worker listening on %s:%d (private port %d), %d sets, %d destinations",
             host, port, private.getsockname()[1], len(selector.sets), destinations)
    await stop.wait()
    log.info("stopping")
    endpoint.close()


def run(settings: Settings) -> None:
    uvloop.run(serve(settings))
