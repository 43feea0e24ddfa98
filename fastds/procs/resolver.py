"""The prober's DNS lookups: a destination's name to its targets, with the answer's TTL.

Owns asking DNS (dnspython's asyncio resolver: SRV, A and AAAA with their TTLs, on the
prober's own loop, no thread per lookup) what fastds/dispatch/dns.py's questions ask: SRV
first for a name without a port (RFC 3263 §4.2), each SRV target's A/AAAA records (taken
from the answer's additional section when the server put them there), else the name's
own A/AAAA records. FASTDS_DNS_SERVERS names the servers (IP:port); empty, the system's
(/etc/resolv.conf), and then a name DNS does not know is tried through the system's
getaddrinfo too (/etc/hosts), its TTL the floor.
"""

from __future__ import annotations

import asyncio
import socket

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from fastds.dispatch.dns import DEFAULT_PORT, Question, Target

LOOKUP_TIMEOUT_S = 3.0


class LookupFailed(Exception):
    pass


class NoSuchName(LookupFailed):
    pass


class Resolver:
    def __init__(self, servers: tuple[tuple[str, int], ...] = ()):
        self._system = not servers
        self._resolver = dns.asyncresolver.Resolver(configure=self._system)
        if servers:
            self._resolver.nameservers = [host for host, _ in servers]
            self._resolver.nameserver_ports = {host: port for host, port in servers}
        self._resolver.cache = None  # the TTLs are fastds/dispatch/dns.py's to keep

    async def lookup(self, question: Question) -> tuple[list[Target], float]:
        """(targets, TTL in seconds); LookupFailed saying why when there are none."""
        if question.srv_name is not None:
            found = await self._srv(question)
            if found is not None:
                return found
        port = question.port or DEFAULT_PORT[question.transport]
        addresses, ttl = await self._addresses(question.name)
        return [Target(0, 1, address, port) for address in addresses], ttl

    async def _query(self, name: str, rdtype: str):
        """The answer, or None when the name has no such records; NoSuchName when the name
        does not exist; LookupFailed otherwise."""
        try:
            return await self._resolver.resolve(name, rdtype, lifetime=LOOKUP_TIMEOUT_S, search=False)
        except dns.resolver.NoAnswer:
            return None
        except dns.resolver.NXDOMAIN:
            raise NoSuchName(f"{name}: no such name (NXDOMAIN)") from None
        except dns.exception.Timeout:
            raise LookupFailed(f"no answer to {rdtype} {name} within {LOOKUP_TIMEOUT_S:g} s") from None
        except dns.exception.DNSException as exc:
            raise LookupFailed(f"{rdtype} {name}: {exc}") from None

    async def _srv(self, question: Question) -> tuple[list[Target], float] | None:
        try:
            answer = await self._query(question.srv_name, "SRV")
        except NoSuchName:
            return None  # no SRV records: the name's own addresses (RFC 3263 §4.2)
        if answer is None:
            return None
        extra = {}  # target name -> addresses the server sent along
        for rrset in answer.response.additional:
            if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                extra.setdefault(rrset.name.to_text(omit_final_dot=True).lower(), []).extend(r.address for r in rrset)
        targets, ttl = [], answer.rrset.ttl
        for record in answer:
            name = record.target.to_text(omit_final_dot=True).lower()
            if name in ("", "."):
                continue  # "." : the service is decidedly not available here (RFC 2782)
            if name in extra:
                addresses = extra[name]
            else:
                addresses, address_ttl = await self._addresses(name)
                ttl = min(ttl, address_ttl)
            targets += [Target(record.priority, record.weight, address, record.port) for address in addresses]
        if not targets:
            raise LookupFailed(f"SRV {question.srv_name}: no target has an address")
        return targets, ttl

    async def _addresses(self, name: str) -> tuple[list[str], float]:
        addresses, ttls = [], []
        try:
            for rdtype in ("A", "AAAA"):
                answer = await self._query(name, rdtype)
                if answer is not None:
                    addresses += [record.address for record in answer]
                    ttls.append(answer.rrset.ttl)
        except NoSuchName as exc:
            missing = exc
        else:
            missing = LookupFailed(f"{name} has no A or AAAA records")
        if addresses:
            return addresses, min(ttls)
        if self._system:  # /etc/hosts and the rest of nsswitch, as getaddrinfo had it before
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(name, None, type=socket.SOCK_DGRAM)
            except OSError as exc:
                raise LookupFailed(f"{name}: {exc.strerror or exc}") from None
            return sorted({info[4][0] for info in infos}), 0.0
        raise missing
