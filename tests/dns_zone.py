"""A DNS server on loopback for the tests (dnslib's), whose records a test changes while fastds
runs, and a fastds started to resolve through it."""

import sqlite3
import threading

import pytest
from dnslib import QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from tests.harness import free_udp_port

TTL_S = 1


class Zone(BaseResolver):
    """Records by (name, type); the tests change them while fastds runs."""

    def __init__(self):
        self.records: dict[tuple[str, str], list] = {}
        self.lock = threading.Lock()
        self.port = 0  # where it answers, once the fixture started it

    def set(self, name: str, kind: str, values: list) -> None:
        with self.lock:
            if values:
                self.records[(name, kind)] = values
            else:
                self.records.pop((name, kind), None)

    def resolve(self, request, handler):
        reply = request.reply()
        name, kind = str(request.q.qname).rstrip("."), QTYPE[request.q.qtype]
        with self.lock:
            values = self.records.get((name, kind))
            known = any(n == name for n, _ in self.records)
        if values is None:
            if not known:
                reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for value in values:
            reply.add_answer(RR(name, getattr(QTYPE, kind), rdata=value, ttl=TTL_S))
        return reply


@pytest.fixture
def zone():
    resolver = Zone()
    port = free_udp_port()
    server = DNSServer(resolver, port=port, address="127.0.0.1", logger=DNSLogger(logf=lambda line: None))
    server.start_thread()
    resolver.port = port
    yield resolver
    server.stop()


def start(harness, zone: Zone, uri: str):
    """fastds with one destination row, `uri`, resolving through `zone` (TTLs held in 1..2 s)."""
    with sqlite3.connect(harness.db) as db:
        db.execute("INSERT INTO dispatcher (setid, destination) VALUES (1, ?)", (uri,))
    harness.start_fastds(dns_servers=f"127.0.0.1:{zone.port}", dns_ttl_min_s=1, dns_ttl_max_s=2,
                         probing_mode=1, ping_interval_s=1)
