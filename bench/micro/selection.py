"""ns per destination selection, key extraction from a scanned INVITE included.

Sets of 2, 10 and 100 equal-weight destinations, all active; algorithms 0 (Call-ID
hash), 4 (weighted round-robin), 6 (weighted random) and 0 with flag c (rendezvous);
with flag f, so the failover list is built too. Each figure is the median of RUNS runs.
"""

from __future__ import annotations

import argparse

from bench.micro.messages import INVITE
from bench.micro.sip import median_ns
from fastds._ext import dshash
from fastds.sip import scan

CASES = (("0 Call-ID", 0, 0), ("4 round-robin", 4, 0), ("6 random", 6, 0), ("0 + c", 0, dshash.FLAG_CONSISTENT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args, _ = parser.parse_known_args()
    message = scan(INVITE)
    sizes = (2, 10, 100)
    print(f"{'algorithm':14} " + " ".join(f"{f'set of {n} ns':>13}" for n in sizes))
    for name, alg, flags in CASES:
        cells = []
        for n in sizes:
            table = dshash.SetTable([1] * n, [b"sip:10.0.%d.%d:5060" % (i // 256, i % 256) for i in range(n)])
            bits = flags | dshash.FLAG_FAILOVER
            cells.append(median_ns(lambda: dshash.select(table, message, alg, bits), args.number, args.runs))
        print(f"{name:14} " + " ".join(f"{cell:13.0f}" for cell in cells))


if __name__ == "__main__":
    main()
