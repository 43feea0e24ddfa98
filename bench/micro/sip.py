"""ns per message for the SIP hot path: scan, and scan + the forwarding rewrite.

Messages: a typical INVITE with SDP, a 180 and a 200 with SDP (bench/micro/messages.py).
For a request the rewrite is forward_request (push Via with a fresh keyed branch,
Max-Forwards - 1, Record-Route); for a response it is forward_response (pop our Via).
Each figure is the median of RUNS timing runs of NUMBER calls, single core.
"""

from __future__ import annotations

import argparse
import statistics
import timeit

from bench.micro.messages import INVITE, OK_SDP, RINGING
from fastds.sip import BranchFactory, build_response, forward_request, forward_response, scan


def median_ns(func, number: int, runs: int) -> float:
    return statistics.median(timeit.repeat(func, number=number, repeat=runs)) / number * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=100_000, help="calls per timing run")
    parser.add_argument("--runs", type=int, default=7, help="timing runs; the median is shown")
    args, _ = parser.parse_known_args()
    branches = BranchFactory(b"bench-secret", "bench")

    def forward_invite(data=INVITE):
        return forward_request(scan(data), transport=b"UDP", sent_by=b"127.0.0.1:5062", branch=branches.new(),
                               record_route=b"sip:127.0.0.1:5060;lr;fds=0123456789ab")

    rows = [
        ("INVITE + SDP", INVITE, lambda: scan(INVITE), forward_invite),
        ("180 Ringing", RINGING, lambda: scan(RINGING), lambda: forward_response(scan(RINGING))),
        ("200 OK + SDP", OK_SDP, lambda: scan(OK_SDP), lambda: forward_response(scan(OK_SDP))),
    ]
    print(f"{'message':14} {'bytes':>5} {'scan ns':>8} {'scan+rewrite ns':>16}")
    for name, data, scan_only, scan_rewrite in rows:
        print(f"{name:14} {len(data):5d} {median_ns(scan_only, args.number, args.runs):8.0f} "
              f"{median_ns(scan_rewrite, args.number, args.runs):16.0f}")
    invite = scan(INVITE)
    parts = [
        ("branch id (keyed)", branches.new),
        ("100 Trying built", lambda: build_response(invite, 100)),
    ]
    for name, func in parts:
        print(f"{name:20} {median_ns(func, args.number, args.runs):8.0f} ns")


if __name__ == "__main__":
    main()
