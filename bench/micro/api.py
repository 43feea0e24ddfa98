"""ms the API process spends per read of a large table, no sockets: snapshot, GET /api/v1/sets
body, /mi ds_list full, one /metrics page -- over DESTINATIONS destinations in shared memory.

What a Prometheus scrape or a panel refresh costs the API process (never a worker), the
median of RUNS runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import orjson

from fastds.api.metrics import MetricsPage
from fastds.api.mi import MiHandler
from fastds.api.snapshot import SnapshotReader
from fastds.dispatch.sets import build_sets
from fastds.shm.layout import ShmView, ShmWriter, create


def table(destinations: int, sets: int) -> ShmView:
    writer = ShmWriter(create(destinations, 4, 4096))
    rows = [{"id": i + 1, "setid": i % sets, "destination": f"sip:10.{i // 65536}.{i // 256 % 256}.{i % 256}:5060",
             "description": f"gateway {i}"} for i in range(destinations)]
    found, _ = build_sets(rows)
    writer.publish(found, {}, [])
    return ShmView(writer.region)


def median_ms(function, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def no_prober(op, **fields):
    raise AssertionError("reads never ask the prober")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--destinations", type=int, default=1000)
    parser.add_argument("--sets", type=int, default=50)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    view = table(args.destinations, args.sets)
    snapshot = SnapshotReader(view)

    def sets_body():
        return orjson.dumps([live.as_json() for live in snapshot().destinations])

    mi = MiHandler(snapshot, no_prober)
    ds_list = orjson.dumps({"jsonrpc": "2.0", "method": "ds_list", "params": {"full": 1}, "id": 1})
    readers = {"snapshot": snapshot, "GET /api/v1/sets body": sets_body,
               "/mi ds_list full": lambda: asyncio.run(mi.handle(ds_list)),
               "/metrics page": MetricsPage(snapshot).page}
    print(f"API reads over {args.destinations} destinations in {args.sets} sets (median of {args.runs}):")
    for name, reader in readers.items():
        print(f"  {name:24s}{median_ms(reader, args.runs):8.2f} ms")


if __name__ == "__main__":
    main()
