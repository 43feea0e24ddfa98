"""CPU per request of the edge's checks: the flood limit, the trusted-source check, the scanner match.

Each line is the median over RUNS runs of NUMBER calls of what a worker does per request
(fastds/net/pump.py calls FloodGuard.admit for every public datagram; fastds/dispatch/proxy.py
checks the User-Agent and the source of every initial request), and the same whole call
as bench/micro/call.py with every check configured against none, side by side in one run.
"""

from __future__ import annotations

import argparse
import ipaddress
import statistics
import time
from collections.abc import Callable

from bench.micro.call import make_proxy, one_call
from fastds.dispatch.pike import FloodGuard, Pike
from fastds.dispatch.proxy import ProxyConfig
from fastds.dispatch.trust import TrustedSources, address_rules
from fastds.sip import scan

INVITE = (b"INVITE sip:+15550100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK-1\r\n"
          b"From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: 1@bench\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
          b"User-Agent: Linphone/5.2.0 (belle-sip/5.2.0)\r\nContent-Length: 0\r\n\r\n")


def trust_table(rows: int) -> TrustedSources:
    """`rows` single addresses and a few subnets, as a carrier edge has them."""
    table = [{"id": i, "ip": str(ipaddress.ip_address("10.0.0.0") + i)} for i in range(rows)]
    table += [{"id": rows + i, "ip": f"172.{16 + i}.0.0", "mask": 16} for i in range(4)]
    return TrustedSources(address_rules(table)[0], networks=[ipaddress.ip_network("192.0.2.0/24")],
                          destination_hosts=["127.0.0.1"])


def per_call(function: Callable[[int], object], number: int, runs: int) -> float:
    results = []
    for _ in range(runs):
        start = time.perf_counter()
        for n in range(number):
            function(n)
        results.append((time.perf_counter() - start) / number * 1e9)
    return statistics.median(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=7)
    args, _ = parser.parse_known_args()
    trust = trust_table(1000)
    pike = Pike(limit=10**9, window_s=2.0, block_s=60.0, capacity=16384)
    guard = FloodGuard(pike, trust, limit_trusted=False)
    one_source = FloodGuard(Pike(limit=10**9, window_s=2.0, block_s=60.0, capacity=16384), trust, limit_trusted=True)
    scanner = ProxyConfig(private_sent_by=b"x", block_user_agents=("friendly-scanner", "sipvicious", "sipcli",
                                                                   "sip-scan", "sundayddr", "iwar")).scanner
    message = scan(INVITE)
    uri = message.request_uri
    cases = [
        ("flood limit, one busy untrusted source", lambda n: one_source.admit(INVITE, "198.51.100.7", 5060, n * 1e-6)),
        ("flood limit, 10,000 sources in turn", lambda n: guard.admit(INVITE, f"198.51.{n % 100}.{n % 97}", 5060,
                                                                      n * 1e-6)),
        ("flood limit skipped, trusted source", lambda n: guard.admit(INVITE, "10.0.0.7", 5060, n * 1e-6)),
        ("trusted: a host row of 1,000", lambda n: trust.accepts("10.0.3.7", 5060, uri)),
        ("trusted: a subnet row", lambda n: trust.accepts("172.18.9.9", 5060, uri)),
        ("untrusted source (refused)", lambda n: trust.accepts("203.0.113.9", 5060, uri)),
        ("scanner check of the User-Agent", lambda n: scanner.search(message.header("User-Agent").lower())),
    ]
    for name, function in cases:
        print(f"{name}: {per_call(function, args.number, args.runs):.0f} ns per request")

    def whole_call(configure: Callable) -> float:
        results = []
        for _ in range(args.runs):
            proxy = configure()
            start = time.perf_counter()
            for n in range(5000):
                one_call(proxy, n, float(n))
            results.append((time.perf_counter() - start) / 5000 * 1e6)
        return statistics.median(results)

    def checked():
        proxy = make_proxy(ProxyConfig(private_sent_by=b"127.0.0.1:5062",
                                       block_user_agents=("friendly-scanner", "sipvicious")))
        proxy.trust = trust_table(1000)
        return proxy

    plain, with_checks = whole_call(make_proxy), whole_call(checked)
    print(f"proxy core, one whole call: {plain:.1f} µs without the checks, {with_checks:.1f} µs with "
          f"trusted sources and the scanner check (+{with_checks - plain:.1f} µs)")


if __name__ == "__main__":
    main()
