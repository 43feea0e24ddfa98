"""Trusted sources: who may send fastds initial requests (sans-IO).

Owns the OpenSIPS permissions `address` table's meaning (table version 5: grp, ip, mask,
port, proto, pattern, context_info) as fastds applies it, and the check a worker makes
of an initial request's source (docs/architecture.md §9): a source is trusted when a row
of FASTDS_TRUSTED_GROUP (0 = any group) matches its IP within the row's mask, its port
(0 = any) and the transport (any / udp), or when it is in FASTDS_TRUSTED_SOURCES, or
when it is a destination of the dispatcher sets (calls from the media servers). A row
with a pattern also needs the Request-URI to match it (shell wildcards, case
sensitive, as OpenSIPS's fnmatch). Nothing is enforced while no row and no CIDR is
configured: every source may then send, as before this existed (but only the sources
named are exempt from the flood limit, fastds/dispatch/pike.py).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
PROTOS = ("any", "udp", "tcp", "tls", "sctp", "ws", "wss")
SPOKEN = ("any", "udp", "tcp", "tls")  # the transports fastds receives requests over today
ADDRESS_COLUMNS = ("id", "grp", "ip", "mask", "port", "proto", "pattern", "context_info")
TEXT_SIZES = {"ip": 50, "proto": 4, "pattern": 64, "context_info": 32}  # CHAR(n) in the schema


class BadAddressRow(ValueError):
    """A column that cannot be what the address table means: names it, the value, what was expected."""

    def __init__(self, column: str, value: Any, expected: str):
        self.column, self.value, self.expected = column, value, expected
        super().__init__(f"{column} {value!r}: expected {expected}")


def _number(row: Mapping[str, Any], column: str, low: int, high: int, default: int) -> int:
    value = row.get(column, default)
    if value is None:
        value = default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadAddressRow(column, value, f"an integer from {low} to {high}")
    return value


def _optional_text(row: Mapping[str, Any], column: str) -> str | None:
    value = row.get(column)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > TEXT_SIZES[column]:
        raise BadAddressRow(column, value, f"text of at most {TEXT_SIZES[column]} characters, or null")
    return value


@dataclasses.dataclass(frozen=True)
class AddressRule:
    id: int
    group: int
    network: Network
    port: int            # 0 = any
    proto: str           # one of PROTOS
    pattern: str | None  # shell wildcards the Request-URI must match; None = any
    context_info: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AddressRule:
        """BadAddressRow naming the column, the value and what was expected."""
        ip = row.get("ip")
        expected_ip = "an IPv4 or IPv6 address (host names are not resolved)"
        if not isinstance(ip, str) or len(ip) > TEXT_SIZES["ip"]:
            raise BadAddressRow("ip", ip, expected_ip)
        try:
            address = ipaddress.ip_address(ip.strip())
        except ValueError:
            raise BadAddressRow("ip", ip, expected_ip) from None
        mask = _number(row, "mask", 0, address.max_prefixlen, address.max_prefixlen)
        proto = row.get("proto") or "any"
        if not isinstance(proto, str) or proto.lower() not in PROTOS:
            raise BadAddressRow("proto", proto, "one of " + ", ".join(PROTOS))
        return cls(id=_number(row, "id", 0, 2**32 - 1, 0), group=_number(row, "grp", 0, 65535, 0),
                   network=ipaddress.ip_network(f"{address}/{mask}", strict=False),
                   port=_number(row, "port", 0, 65535, 0), proto=proto.lower(),
                   pattern=_optional_text(row, "pattern"), context_info=_optional_text(row, "context_info"))

    def as_row(self) -> dict[str, Any]:
        """The row as the store holds it (ip is the network address once masked)."""
        return {"id": self.id, "grp": self.group, "ip": str(self.network.network_address),
                "mask": self.network.prefixlen, "port": self.port, "proto": self.proto, "pattern": self.pattern,
                "context_info": self.context_info}

    @property
    def is_host(self) -> bool:
        """One address (OpenSIPS keeps these in its hash table, shorter masks in its subnet table)."""
        return self.network.prefixlen == self.network.max_prefixlen


def address_rules(rows: Iterable[Mapping[str, Any]]) -> tuple[list[AddressRule], list[str]]:
    """The rules of the rows that are valid, and a line per row skipped (as a bad
    dispatcher row is: reported by id, never taking the others down)."""
    rules, problems = [], []
    for row in rows:
        try:
            rules.append(AddressRule.from_row(row))
        except BadAddressRow as exc:
            problems.append(f"address row id={row.get('id')}: {exc}; row skipped")
    return rules, problems


def _plain_ip(ip: str) -> str:
    """A source as a dual-stack socket reports it (::ffff:192.0.2.1) -> the IPv4 address."""
    return ip[7:] if ip.startswith("::ffff:") and "." in ip else ip


def _as_int(ip: str) -> tuple[int, int] | None:
    """(IP version, the address as an integer); None for text that is not an address.
    IPv4, what sockets report most, is read without building an ipaddress object."""
    if ":" in ip:
        try:
            return 6, int(ipaddress.IPv6Address(ip))
        except ValueError:
            return None
    parts = ip.split(".")
    if len(parts) != 4 or not all(part.isascii() and part.isdigit() and int(part) < 256 for part in parts):
        return None
    return 4, (int(parts[0]) << 24) | (int(parts[1]) << 16) | (int(parts[2]) << 8) | int(parts[3])


def _as_prefix(network: Network) -> tuple[int, int, int]:
    """(IP version, network as an integer, netmask as an integer): an address is in it when
    address & netmask == network."""
    return network.version, int(network.network_address), int(network.netmask)


@dataclasses.dataclass(frozen=True, slots=True)
class _SourceRules:
    """What the rules say of one source IP, worked out once (the cache holds these)."""
    any_port: bool                         # accepted from any port, whatever the Request-URI
    ports: frozenset[int]                  # accepted from these ports, whatever the Request-URI
    patterned: tuple[AddressRule, ...]     # accepted when the port and the Request-URI match
    named_any_port: bool                   # named trusted from any port (patterns not looked at)
    named_ports: frozenset[int]


_NOBODY = _SourceRules(False, frozenset(), (), False, frozenset())  # no rule names the source
_ALWAYS = _SourceRules(True, frozenset(), (), True, frozenset())    # a destination, or a trusted CIDR


class TrustedSources:
    def __init__(self, rules: Iterable[AddressRule], group: int = 0, networks: Iterable[Network] = (),
                 destination_hosts: Iterable[str] = (), cache_size: int = 4096):
        """rules: the address table; group: FASTDS_TRUSTED_GROUP; networks:
        FASTDS_TRUSTED_SOURCES; destination_hosts: the IPs of the dispatcher destinations."""
        self.rules = [r for r in rules if (group == 0 or r.group == group) and r.proto in SPOKEN]
        self.networks = tuple(networks)
        self.enforced = bool(self.rules or self.networks)
        self._hosts: dict[tuple[int, int], list[AddressRule]] = {}
        self._subnets = [(_as_prefix(r.network), r) for r in self.rules if not r.is_host]
        for rule in self.rules:
            if rule.is_host:
                self._hosts.setdefault(_as_prefix(rule.network)[:2], []).append(rule)
        self._always = [_as_prefix(network) for network in self.networks]
        self._destinations = frozenset(_as_int(_plain_ip(h)) for h in destination_hosts) - {None}
        self._rules_for = functools.lru_cache(maxsize=cache_size)(self._find_rules)

    def _find_rules(self, ip: str, transport: str) -> _SourceRules:
        address = _as_int(ip)
        if address is None:
            return _NOBODY
        family, value = address
        if address in self._destinations or any(f == family and value & mask == network
                                                for f, network, mask in self._always):
            return _ALWAYS
        found = list(self._hosts.get(address, ()))
        found += [rule for (f, network, mask), rule in self._subnets if f == family and value & mask == network]
        found = [rule for rule in found if rule.proto in ("any", transport)]  # a TCP row says nothing of UDP
        if not found:
            return _NOBODY
        plain = [rule for rule in found if rule.pattern is None]
        return _SourceRules(any(rule.port == 0 for rule in plain), frozenset(rule.port for rule in plain),
                            tuple(rule for rule in found if rule.pattern is not None),
                            any(rule.port == 0 for rule in found), frozenset(rule.port for rule in found))

    def source_trusted(self, ip: str, port: int, transport: str = "udp") -> bool:
        """Named trusted by address alone (a row's pattern not looked at), whether or not
        trust is enforced: the flood limit's exemption."""
        rules = self._rules_for(_plain_ip(ip), transport)
        return rules.named_any_port or port in rules.named_ports

    def accepts(self, ip: str, port: int, request_uri: bytes, transport: str = "udp") -> bool:
        """May this source send this initial request over `transport` (udp, tcp)?"""
        if not self.enforced:
            return True
        rules = self._rules_for(_plain_ip(ip), transport)
        if rules.any_port or port in rules.ports:
            return True
        uri = None
        for rule in rules.patterned:
            if rule.port not in (0, port):
                continue
            if uri is None:
                uri = request_uri.decode("utf-8", "replace")
            if fnmatch.fnmatchcase(uri, rule.pattern):
                return True
        return False
