"""µs per datagram of a worker's IO on loopback, in bursts, in one process (no wake-ups).

Three figures, each the median of --runs runs of --number 600-byte datagrams:
- relaying (received and sent on, as a worker does with each datagram of a call) through
  the batched IO (fastds._ext.udpio: one recvmmsg / sendmmsg per --burst datagrams) and
  through plain socket recvfrom / sendto, one system call per datagram;
- the Call-ID hand-off (fastds/net/handoff.py): frames queued for an owner, flushed as one
  unix datagram per burst and read back by the owner -- what a foreign datagram costs on
  top of its handling. A shared-memory ring could save at most this figure.
The kernel's delivery to the receiving socket runs inside the send, as it does for a
worker on loopback; the cost of being woken (~10 µs per wake-up) is not in these figures.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time

from fastds._ext.udpio import DatagramIO
from fastds.net.handoff import Handoff

DATAGRAM = b"x" * 600


def udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def relay_batched(number: int, burst: int) -> float:
    source, relay, sink = udp_socket(), udp_socket(), udp_socket()
    source_io, relay_io, sink_io = (DatagramIO(s.fileno(), s.family, max(burst, 1)) for s in (source, relay, sink))
    to_relay, to_sink = relay.getsockname(), sink.getsockname()
    outgoing = [(DATAGRAM, to_relay)] * burst
    elapsed = 0.0
    for _ in range(number // burst):
        source_io.send(outgoing)  # the peer's burst, not timed
        start = time.perf_counter()
        relay_io.send([(data, to_sink) for data, _ in relay_io.receive()])
        elapsed += time.perf_counter() - start
        sink_io.receive()
    for sock in (source, relay, sink):
        sock.close()
    return elapsed / (number // burst * burst) * 1e6


def relay_plain(number: int, burst: int) -> float:
    source, relay, sink = udp_socket(), udp_socket(), udp_socket()
    to_relay, to_sink = relay.getsockname(), sink.getsockname()
    elapsed = 0.0
    for _ in range(number // burst):
        for _ in range(burst):
            source.sendto(DATAGRAM, to_relay)
        start = time.perf_counter()
        for _ in range(burst):
            data, _ = relay.recvfrom(65535)
            relay.sendto(data, to_sink)
        elapsed += time.perf_counter() - start
        for _ in range(burst):
            sink.recvfrom(65535)
    for sock in (source, relay, sink):
        sock.close()
    return elapsed / (number // burst * burst) * 1e6


def handoff(number: int, burst: int) -> float:
    master = 40_000_000 + os.getpid()  # a name no running fastds uses
    sender, owner = Handoff(master, 0, 2), Handoff(master, 1, 2)
    source = ("127.0.0.1", 5060)
    start = time.perf_counter()
    for _ in range(number // burst):
        for _ in range(burst):
            sender.send(1, DATAGRAM, source)
        sender.flush()
        owner.receive(1)  # as the pump reads: one batch per readable event
    elapsed = time.perf_counter() - start
    handed = (sender.handed_off, owner.received, sender.dropped + owner.dropped)
    sender.close()
    owner.close()
    if handed != (number // burst * burst,) * 2 + (0,):
        raise SystemExit(f"the hand-off lost frames: (handed off, received, dropped) = {handed}")
    return elapsed / (number // burst * burst) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=64_000)
    parser.add_argument("--runs", type=int, default=5)
    args, _ = parser.parse_known_args()
    for burst in (1, 4, 32):
        figures = {name: statistics.median(measure(args.number, burst) for _ in range(args.runs))
                   for name, measure in (("batched relay", relay_batched), ("plain relay", relay_plain),
                                         ("hand-off", handoff))}
        print(f"bursts of {burst:2d}: " + ", ".join(f"{name} {value:.2f} µs" for name, value in figures.items())
              + " per datagram")


if __name__ == "__main__":
    main()
