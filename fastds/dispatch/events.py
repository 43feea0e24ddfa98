"""State-change events in OpenSIPS's shape: E_DISPATCHER_STATUS and who subscribed to it (sans-IO).

Owns the event's parameters (OpenSIPS 3.4 modules/dispatcher: group, address, status --
"active" or "inactive", probing reported as inactive, raised when a destination crosses between
the two -- and reason; partition only outside the default one, which fastds never has), the
JSON-RPC 2.0 notification that event_datagram sends, and the MI subscriptions of
evi/event_interface.c: event_subscribe (udp:HOST:PORT, an expiry in seconds, default 3600, 0
unsubscribes), events_list and subscribers_list in their shapes. Time enters as `now`.
"""

from __future__ import annotations

import dataclasses
import ipaddress

import orjson

from fastds.dispatch.health import StateChange
from fastds.dispatch.state import DestinationState

EVENT = "E_DISPATCHER_STATUS"
EVENT_IDS = {EVENT: 0}  # the events fastds raises, with the id events_list gives them
DEFAULT_EXPIRE_S = 3600  # OpenSIPS's, when event_subscribe names none


class BadSubscription(ValueError):
    """An event_subscribe fastds cannot serve (OpenSIPS answers 400 "Bad parameter value")."""


class UnknownEvent(LookupError):
    """An event fastds does not raise (OpenSIPS: 404 "Event not published")."""


@dataclasses.dataclass
class Subscriber:
    host: str
    port: int
    expire_s: int
    expires_at: float

    @property
    def socket(self) -> str:
        return f"udp:{self.host}:{self.port}" if ":" not in self.host else f"udp:[{self.host}]:{self.port}"

    def as_mi(self) -> dict:
        return {"socket": self.socket, "expire": self.expire_s}


def status_params(change: StateChange) -> dict | None:
    """The event's parameters for a state change, or None when the destination stays on the
    same side of active / not active (probing <-> inactive raises nothing, as in OpenSIPS)."""
    was, now = change.old == DestinationState.ACTIVE, change.new == DestinationState.ACTIVE
    if was == now:
        return None
    d = change.destination
    return {"group": d.set_id, "address": d.uri, "status": "active" if now else "inactive", "reason": change.reason}


def notification(params: dict) -> bytes:
    """What event_datagram sends a subscriber: a JSON-RPC 2.0 notification named after the event."""
    return orjson.dumps({"jsonrpc": "2.0", "method": EVENT, "params": params})


def parse_socket(text: str) -> tuple[str, int]:
    """udp:IP:port (IPv6 in brackets) -> (IP, port); BadSubscription otherwise."""
    transport, _, rest = text.partition(":")
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise BadSubscription(text) from None
    if transport.lower() != "udp" or not 1 <= number <= 65535:
        raise BadSubscription(text)
    return host, number


class Subscriptions:
    def __init__(self):
        self._by_socket: dict[tuple[str, int], Subscriber] = {}

    def subscribe(self, event: str, socket: str, expire_s: int, now: float) -> None:
        """Add or renew a subscriber (expire_s 0: remove it). BadSubscription, UnknownEvent."""
        if event not in EVENT_IDS:
            raise BadSubscription(event)
        if expire_s < 0:
            raise BadSubscription(str(expire_s))
        address = parse_socket(socket)
        if expire_s == 0:
            self._by_socket.pop(address, None)
            return
        self._by_socket[address] = Subscriber(*address, expire_s, now + expire_s)

    def targets(self, now: float) -> list[tuple[str, int]]:
        """Where an event goes now (expired subscribers dropped)."""
        for address in [a for a, s in self._by_socket.items() if s.expires_at <= now]:
            del self._by_socket[address]
        return list(self._by_socket)

    def events_list(self) -> dict:
        return {"Events": [{"name": name, "id": number} for name, number in EVENT_IDS.items()]}

    def subscribers_list(self, now: float, event: str | None = None, socket: str | None = None) -> dict:
        """All events with subscribers; one event; or one subscriber of one event (MI shapes)."""
        self.targets(now)
        subscribers = [s.as_mi() for s in self._by_socket.values()]
        if event is None:
            return {"Events": [{"name": EVENT, "id": EVENT_IDS[EVENT], "Subscribers": subscribers}]
                    if subscribers else []}
        if event not in EVENT_IDS:
            raise UnknownEvent(event)
        if socket is None:
            return {"Event": {"name": event, "id": EVENT_IDS[event], "Subscribers": subscribers}}
        try:
            found = self._by_socket.get(parse_socket(socket))
        except BadSubscription:
            found = None
        if found is None:
            raise LookupError(socket)
        return {"Event": {"name": event, "id": EVENT_IDS[event], "Subscriber": found.as_mi()}}
