"""µs of proxy-core work for one whole call, no sockets: INVITE, 100, 180, 200, ACK, BYE, 200.

Drives fastds.dispatch.proxy.Proxy with prebuilt datagrams (as a SIPp UAC and UAS would
send them) through receive() and timer(), the way a worker does, and reports the median
over RUNS runs of NUMBER calls: what the Python side costs per call, apart from the event
loop and the kernel (compare with the CPU per call of bench/load.py). --evict-kb N times
only the proxy's part, with N KB copied before every message (touching 2N KB of cache; 0:
nothing evicted): under load each message of a call comes in another wake-up, after SIPp,
the kernel and the other worker had the core.
"""

from __future__ import annotations

import argparse
import statistics
import time

from fastds.dispatch.proxy import Proxy, ProxyConfig
from fastds.dispatch.routes import Router
from fastds.dispatch.rules import SelectionRule
from fastds.dispatch.selector import Selector
from fastds.dispatch.sets import build_sets
from fastds.dispatch.txn import Send
from fastds.sip import BranchFactory, RecordRoute, build_response, scan

CALLER, CALLEE = ("127.0.0.1", 5070), ("127.0.0.1", 5080)


def make_proxy(config: ProxyConfig | None = None) -> Proxy:
    sets, _ = build_sets([{"id": 1, "setid": 1, "destination": "sip:127.0.0.1:5080"},
                          {"id": 2, "setid": 1, "destination": "sip:127.0.0.1:5081", "state": 2}])
    return Proxy(config or ProxyConfig(private_sent_by=b"127.0.0.1:5062"), Selector(sets), Router([], SelectionRule(1, 2, 1)),
                 BranchFactory(b"bench", "bench"), RecordRoute(b"bench", b"127.0.0.1:5060"))


def caller_request(method: bytes, n: int, cseq: int, ruri: bytes, extra: bytes, branch: bytes) -> bytes:
    return (b"%s %s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-%s;rport\r\n"
            b"From: <sip:caller@127.0.0.1:5070>;tag=t%d\r\nTo: <sip:cust-%d@127.0.0.1:5060>%s\r\n"
            b"Call-ID: %d@bench\r\nCSeq: %d %s\r\nContact: <sip:caller@127.0.0.1:5070>\r\nMax-Forwards: 70\r\n"
            b"Content-Length: 0\r\n\r\n") % (method, ruri, branch, n, n, extra, n, cseq, method)


def one_call(proxy: Proxy, n: int, now: float) -> None:
    """A whole call, then every timer it started (40 s later)."""
    one_call_without_timers(proxy, n, now)
    proxy.timer(now + 40.0)


def one_call_without_timers(proxy: Proxy, n: int, now: float) -> None:
    """INVITE, 180, 200, ACK, BYE, 200 at `now`; its finished transactions stay for their timers."""
    out = proxy.receive(caller_request(b"INVITE", n, 1, b"sip:cust-%d@127.0.0.1:5060" % n, b"", b"i%d" % n),
                        CALLER, now)
    forwarded = next(a.data for a in out if isinstance(a, Send) and a.addr == CALLEE)
    request = scan(forwarded)
    ringing = build_response(request, 180, to_tag=b"u%d" % n)
    proxy.receive(ringing, CALLEE, now)
    ok = build_response(request, 200, to_tag=b"u%d" % n).replace(
        b"Content-Length: 0\r\n", b"Record-Route: " + request.record_routes[0] + b"\r\n"
        b"Contact: <sip:callee@127.0.0.1:5080>\r\nContent-Length: 0\r\n")
    proxy.receive(ok, CALLEE, now)
    dialog = b";tag=u%d\r\nRoute: %s" % (n, request.record_routes[0])
    proxy.receive(caller_request(b"ACK", n, 1, b"sip:callee@127.0.0.1:5080", dialog, b"a%d" % n), CALLER, now)
    out = proxy.receive(caller_request(b"BYE", n, 2, b"sip:callee@127.0.0.1:5080", dialog, b"b%d" % n), CALLER, now)
    bye = next(a.data for a in out if isinstance(a, Send))
    proxy.receive(build_response(scan(bye), 200), CALLEE, now)


class ColdProxy:
    """A Proxy whose every receive() and timer() starts with a copy of evict_bytes (touching
    twice that in the caches); only the proxy's own time is added up."""

    def __init__(self, proxy: Proxy, evict_bytes: int):
        self.proxy, self.seconds = proxy, 0.0
        self._source, self._target = bytes(evict_bytes), bytearray(evict_bytes)

    def _timed(self, step, *args):
        self._target[:] = self._source
        start = time.perf_counter()
        out = step(*args)
        self.seconds += time.perf_counter() - start
        return out

    def receive(self, data: bytes, source: tuple, now: float) -> list:
        return self._timed(self.proxy.receive, data, source, now)

    def timer(self, now: float) -> list:
        return self._timed(self.proxy.timer, now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--evict-kb", type=int, help="the proxy's time only, this many KB copied before each message")
    args, _ = parser.parse_known_args()
    results = []
    for _ in range(args.runs):
        if args.evict_kb is not None:
            cold = ColdProxy(make_proxy(), 1024 * args.evict_kb)
            for n in range(args.number):
                one_call(cold, n, float(n))
            results.append(cold.seconds / args.number * 1e6)
            continue
        proxy = make_proxy()
        start = time.perf_counter()
        for n in range(args.number):
            one_call(proxy, n, float(n))
        results.append((time.perf_counter() - start) / args.number * 1e6)
    what = "incl. building the test's own responses" if args.evict_kb is None else \
        f"the proxy's part, {args.evict_kb} KB copied before each message"
    print(f"proxy core, one whole call (7 datagrams in, {what}): {statistics.median(results):.1f} µs")


if __name__ == "__main__":
    main()
