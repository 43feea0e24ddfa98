"""What idle TCP connections cost fastds: worker memory and CPU with N connections open.

Starts fastds (2 workers, a TCP listener, loopback only), measures the workers' RSS and CPU
with no connection, opens N TCP connections (each sends one CRLF CRLF ping, answered, so
every one is accepted and framed), then measures again over --hold-s seconds of idleness,
and closes them. Bounded: N connections, --hold-s seconds, then everything stops.

    python -m bench.idle_connections --connections 10000 --hold-s 60
"""

from __future__ import annotations

import argparse
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path

from bench.load import Fastds, cpu_seconds, process_tree
from fastds.loopback import free_udp_port


def worker_pids(fastds: Fastds) -> list[int]:
    return [pid for pid in process_tree(fastds.process.pid)
            if b"fastds: worker" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(pids: list[int], seconds: float) -> tuple[float, float]:
    """(total RSS MiB, CPU % of a core) of the workers over `seconds`."""
    before = cpu_seconds(pids)
    time.sleep(seconds)
    after = cpu_seconds(pids)
    return sum(rss_mib(pid) for pid in pids), 100 * sum(after[pid] - before[pid] for pid in pids) / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--hold-s", type=float, default=60)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.connections + 1024)), hard))
    workdir = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    fastds = Fastds(workdir, 2, tcp=True, tcp_max_connections=args.connections, tcp_idle_timeout_s=3600)
    fastds.start([free_udp_port()])  # a destination nobody calls
    sockets: list[socket.socket] = []
    try:
        pids = worker_pids(fastds)
        empty_rss, empty_cpu = measure(pids, min(10.0, args.hold_s))
        for _ in range(args.connections):
            sock = socket.create_connection(("127.0.0.1", fastds.tcp_port), timeout=10)
            sock.sendall(b"\r\n\r\n")
            sockets.append(sock)
        for sock in sockets:
            if sock.recv(2) != b"\r\n":
                raise SystemExit("a connection was not answered")
        held_rss, held_cpu = measure(pids, args.hold_s)
        per_connection_kib = 1024 * (held_rss - empty_rss) / args.connections
        print(f"{args.connections} idle TCP connections over {len(pids)} workers: RSS {empty_rss:.1f} -> {held_rss:.1f} MiB"
              f" ({per_connection_kib:.1f} KiB per connection), workers' CPU {empty_cpu:.2f} -> {held_cpu:.2f} % of a"
              f" core over {args.hold_s:g} s idle")
    finally:
        for sock in sockets:
            sock.close()
        fastds.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
