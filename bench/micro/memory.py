"""Bytes the proxy core keeps per transaction (tracemalloc), the figure FASTDS_MAX_TRANSACTIONS is sized from.

Three cases, each over --number transactions with no timer firing (so everything stays):
a live INVITE (forwarded, not answered yet), a finished INVITE (2xx relayed: kept for
Timer L), and the finished server transactions of whole calls (INVITE, 180, 200, ACK,
BYE, 200: the INVITE for Timer L and the BYE for Timer J), the mix a worker holds in
steady state. Includes the tables and timer heap entries that hold them.
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc

from bench.micro.call import CALLEE, CALLER, caller_request, make_proxy, one_call_without_timers
from fastds.dispatch.txn import Send
from fastds.sip import build_response, scan


def measure(step, number: int) -> tuple[float, int]:
    """(bytes per server transaction, how many) after `number` steps on a fresh proxy."""
    proxy = make_proxy()  # no timer is fired: every transaction stays
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for n in range(number):
        step(proxy, n)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return used / len(proxy.servers), len(proxy.servers)


def live_invite(proxy, n: int) -> None:
    proxy.receive(caller_request(b"INVITE", n, 1, b"sip:cust-%d@127.0.0.1:5060" % n, b"", b"i%d" % n), CALLER, 0.0)


def answered_invite(proxy, n: int) -> None:
    out = proxy.receive(caller_request(b"INVITE", n, 1, b"sip:cust-%d@127.0.0.1:5060" % n, b"", b"i%d" % n),
                        CALLER, 0.0)
    forwarded = next(a.data for a in out if isinstance(a, Send) and a.addr == CALLEE)
    proxy.receive(build_response(scan(forwarded), 200, to_tag=b"u%d" % n), CALLEE, 0.0)


def whole_call(proxy, n: int) -> None:
    one_call_without_timers(proxy, n, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=5000)
    args, _ = parser.parse_known_args()
    for name, step in (("live INVITE (forwarded, unanswered)", live_invite),
                       ("finished INVITE (2xx relayed, Timer L)", answered_invite),
                       ("finished transactions of whole calls", whole_call)):
        size, count = measure(step, args.number)
        print(f"proxy core memory, {name}: {size:.0f} bytes per server transaction ({count})")


if __name__ == "__main__":
    main()
