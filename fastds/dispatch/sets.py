"""Destination sets built from `dispatcher` table rows (OpenSIPS 3.4, version 9).

Owns what a row must be to become a destination (the OpenSIPS 3.4 dispatcher table, version 9): a SIP URI
with a host, over UDP, TCP (;transport=tcp) or TLS (sips: or ;transport=tls) -- a TCP or TLS
one only when fastds listens on that transport too (its dialog is record-routed there, so the
callee's in-dialog requests come back over it: refused, never downgraded to UDP, when there is
no such listener) -- the host name its TLS certificate must show (the attrs' tls_name=, else
the URI's host), a non-negative integer weight (OpenSIPS stores it as text), state 0/1/2,
probe_mode 0/1; NULL priority and probe_mode read as 0. A bad row is reported, naming
it, and skipped, never the whole set. A set is ordered by descending priority, equal
priorities keeping row order (index 0 = highest priority, as in OpenSIPS).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from fastds.dispatch.state import DestinationState
from fastds.errors import SipParseError
from fastds.sip import parse_uri


class BadUri(ValueError):
    """The destination column is not a URI fastds can send to; `expected` says what would be."""

    def __init__(self, uri_text: str, problem: str, expected: str):
        super().__init__(f"destination {uri_text!r} {problem}: expected {expected}")
        self.expected = expected


@dataclasses.dataclass(frozen=True)
class SkippedRow:
    """A dispatcher row a load could not use: its id, why, and the line the log gives it."""
    id: Any
    reason: str
    where: str = ""  # (row N, set S, destination D), for the log line

    def __str__(self) -> str:
        return f"dispatcher row id={self.id}{' ' + self.where if self.where else ''}: {self.reason}; row skipped"

    def as_json(self) -> dict:
        return {"id": self.id, "reason": self.reason}


class UnsupportedTransport(ValueError):
    """A destination over TCP or TLS while fastds has no listener of that transport: a
    silent downgrade of sips: or transport=tls|tcp to UDP is what it must never do."""


ALL_TRANSPORTS = frozenset({"udp", "tcp", "tls"})


@dataclasses.dataclass(frozen=True)
class Destination:
    id: int
    set_id: int
    uri: str
    weight: int
    priority: int
    state: DestinationState  # as the store had it when the row was loaded
    probe_mode: int
    attrs: str
    socket: str
    description: str
    host: str           # where packets go: the URI's host and port (default 5060 / 5061)
    port: int
    transport: str      # udp, tcp, tls (the URI's transport parameter; sips: tls)


@dataclasses.dataclass(frozen=True)
class DestinationSet:
    set_id: int
    destinations: tuple[Destination, ...]


def _integer(value: Any, column: str, *, minimum: int | None = None, allowed: Iterable[int] | None = None,
             null: int | None = None) -> int:
    if value is None and null is not None:
        return null
    try:
        number = int(str(value).strip(), 10)
    except ValueError:
        raise ValueError(f"{column} {value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ValueError(f"{column} {value!r} must be {minimum} or more")
    if allowed is not None and number not in allowed:
        raise ValueError(f"{column} {value!r} must be one of {', '.join(map(str, allowed))}")
    return number


def attribute(attrs: str, name: str) -> str | None:
    """One name=value of a row's attrs (OpenSIPS keeps them as ;-separated pairs)."""
    for pair in attrs.split(";"):
        key, equals, value = pair.partition("=")
        if equals and key.strip() == name:
            return value.strip()
    return None


def tls_name(destination: Destination) -> str:
    """The name a TLS destination's certificate must show: its attrs' tls_name=, else the
    host its URI names (before the prober resolved it)."""
    return attribute(destination.attrs, "tls_name") or parse_uri(destination.uri.encode()).host.decode().strip("[]")


def tls_name_at(destinations: Iterable[Destination], host: str, port: int) -> str:
    """The name the certificate of the TLS destination at host:port must show; for a next hop
    that is no destination, its host."""
    for destination in destinations:
        if destination.transport == "tls" and destination.host == host and destination.port == port:
            return tls_name(destination)
    return host


def destination_from_row(row: Mapping[str, Any], listeners: frozenset[str] = ALL_TRANSPORTS) -> Destination:
    """One dispatcher row as a Destination; ValueError saying which column is wrong.
    listeners: the transports fastds listens on (a TCP or TLS destination needs its own)."""
    if row.get("setid") is None:
        raise ValueError("setid is NULL")
    uri_text = str(row.get("destination") or "").strip()
    try:
        uri = parse_uri(uri_text.encode())
    except SipParseError:
        port = re.search(r"^sips?:[^;?>]*:(\d+)(?:[;?>]|$)", uri_text, re.IGNORECASE)
        if port and not 1 <= int(port.group(1)) <= 65535:
            raise BadUri(uri_text, f"has port {port.group(1)}", "a port from 1 to 65535") from None
        raise BadUri(uri_text, "is not a SIP URI", "a sip: or sips: URI with a host") from None
    if uri.kind not in ("sip", "sips") or not uri.host:
        raise BadUri(uri_text, "has no host" if uri.kind in ("sip", "sips") else f"is a {uri.scheme.decode()}: URI",
                     "a sip: or sips: URI with a host")
    transport = (uri.param("transport") or (b"tls" if uri.kind == "sips" else b"udp")).decode().lower()
    if transport not in ("udp", "tcp", "tls"):
        raise BadUri(uri_text, f"has transport {transport!r}", "transport udp, tcp or tls")
    if transport not in listeners:
        raise UnsupportedTransport(
            f"destination {uri_text!r} needs {'TLS (sips:)' if uri.kind == 'sips' else transport.upper()} and "
            f"FASTDS_SIP_LISTEN has no {transport}: listener for its in-dialog requests to come back over: "
            "refused rather than sent over UDP")
    return Destination(
        id=_integer(row.get("id", 0), "id", null=0),
        set_id=_integer(row["setid"], "setid", minimum=0),
        uri=uri_text,
        weight=_integer(row.get("weight"), "weight", minimum=0, null=1),
        priority=_integer(row.get("priority"), "priority", null=0),
        state=DestinationState(_integer(row.get("state"), "state", allowed=tuple(DestinationState), null=0)),
        probe_mode=_integer(row.get("probe_mode"), "probe_mode", allowed=(0, 1), null=0),
        attrs=str(row.get("attrs") or ""),
        socket=str(row.get("socket") or ""),
        description=str(row.get("description") or ""),
        host=uri.host.decode().strip("[]"),
        port=uri.port or (5061 if transport == "tls" else 5060),
        transport=transport,
    )


def build_sets(rows: Iterable[Mapping[str, Any]], listeners: frozenset[str] = frozenset({"udp"})
               ) -> tuple[dict[int, DestinationSet], list[SkippedRow]]:
    """Sets from dispatcher rows, and a problem line for each row skipped; listeners: the
    transports fastds listens on (UDP only unless told)."""
    members: dict[int, list[Destination]] = {}
    problems = []
    for position, row in enumerate(rows):
        try:
            destination = destination_from_row(row, listeners)
        except (ValueError, TypeError) as exc:
            problems.append(SkippedRow(row.get("id", "?"), str(exc), f"(row {position + 1}, set {row.get('setid')!r}, "
                                                                     f"destination {row.get('destination')!r})"))
            continue
        members.setdefault(destination.set_id, []).append(destination)
    sets = {
        set_id: DestinationSet(set_id, tuple(sorted(found, key=lambda d: -d.priority)))  # sorted() is stable
        for set_id, found in sorted(members.items())
    }
    return sets, problems
