"""A fastds cluster on one machine: how fast a state change reaches the other nodes, and
how many probes the destinations get with 1 and with 3 nodes.

`python -m bench.cluster` starts 3 nodes on loopback sharing one SQLite store and the
machine's Redis (a cluster name of its own, deleted afterwards), FASTDS_CLUSTER_HEARTBEAT_MS
1000. Propagation: --changes MI ds_set_state calls on node 1 (alternating inactive and
active, --gap-ms apart); for each, the time from node 1's log line of the change to the
line of the same change on nodes 2 and 3 (the log's millisecond clock, one machine, so no
polling error): median, p90 and max. Probes: --intervals ping intervals of 1 s with
FASTDS_PROBING_MODE=1 and 6 destinations, probes received per destination per interval,
with node 1 alone and with all 3 nodes.
"""

from __future__ import annotations

import argparse
import re
import secrets
import statistics
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import orjson
import redis

from bench.detection import Callee
from bench.load import Fastds

LINE = re.compile(rb"^(\S+ \S+) fastds\.prober\[\d+\] INFO set 1 (\S+) (\w+) -> (\w+) \(MI command(; from node n1)?\)")


def mi(api_port: int, method: str, params: dict) -> dict:
    body = orjson.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": 1})
    request = urllib.request.Request(f"http://127.0.0.1:{api_port}/mi", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return orjson.loads(response.read())


def changes(log: Path) -> list[tuple[float, str]]:
    """(Unix time, "uri old->new") of every MI state change a node logged."""
    found = []
    for line in log.read_bytes().splitlines():
        match = LINE.match(line)
        if match:
            when = datetime.strptime(match.group(1).decode(), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            found.append((when, f"{match.group(2).decode()} {match.group(3).decode()}->{match.group(4).decode()}"))
    return found


def probes_per_interval(callees: list[Callee], seconds: float) -> float:
    start = time.monotonic()
    marks = [len(c.received) for c in callees]
    time.sleep(seconds)
    received = sum(sum(1 for at, data in c.received[m:] if at >= start and b"Call-ID: probe-" in data)
                   for c, m in zip(callees, marks))
    return received / len(callees) / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=120)
    parser.add_argument("--gap-ms", type=int, default=100)
    parser.add_argument("--intervals", type=int, default=10)
    args = parser.parse_args()
    name = f"bench-{secrets.token_hex(4)}"
    callees = [Callee() for _ in range(6)]
    nodes: list[Fastds] = []
    common = dict(cluster_url="redis://127.0.0.1:6379/0", cluster_name=name, cluster_heartbeat_ms=1000,
                  secret="bench-cluster-secret", probing_mode=1, ping_interval_s=1)
    try:
        first = Fastds(Path(tempfile.mkdtemp(prefix="bench-cluster-")), 1, node_id="n1", **common)
        first.start([c.port for c in callees])
        nodes.append(first)
        time.sleep(2.0)
        alone = probes_per_interval(callees, args.intervals)
        for index in (2, 3):
            node = Fastds(Path(tempfile.mkdtemp(prefix="bench-cluster-")), 1, node_id=f"n{index}",
                          db_url=f"sqlite:///{first.workdir / 'fastds.db'}", **common)
            node.start([])
            nodes.append(node)
        time.sleep(3.0)  # every node has seen the others' heartbeats
        together = probes_per_interval(callees, args.intervals)
        uri = f"sip:127.0.0.1:{callees[0].port}"
        for i in range(args.changes):
            reply = mi(first.api_port, "ds_set_state", {"state": "i" if i % 2 == 0 else "a", "group": "1",
                                                       "address": uri})
            assert reply.get("result") == "OK", reply
            time.sleep(args.gap_ms / 1000)
        time.sleep(2.0)
        origin = changes(first.log)
        delays = []
        for node in nodes[1:]:
            seen = changes(node.log)
            for (sent, what), (applied, what_there) in zip(origin, seen):
                assert what == what_there, (what, what_there)
                delays.append(1000 * (applied - sent))
    finally:
        for node in nodes:
            node.stop()
        for callee in callees:
            callee.stop()
        client = redis.Redis(host="127.0.0.1", port=6379)
        for key in client.scan_iter(match=f"fastds:{name}:*"):
            client.delete(key)
    delays.sort()
    print(f"propagation of {len(origin)} changes to 2 nodes ({len(delays)} applications): median "
          f"{statistics.median(delays):.1f} ms, p90 {delays[int(0.9 * (len(delays) - 1))]:.1f} ms, max {delays[-1]:.1f} ms")
    print(f"probes per destination per 1 s interval: {alone:.2f} with 1 node, {together:.2f} with 3 nodes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
