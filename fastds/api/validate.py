"""What a destination or an address row written through the API must be, checked before anything is written.

Owns turning a JSON body (the OpenSIPS 3.4 dispatcher or address columns) into the row
the store writes, or a FieldError naming the field, the value and what was expected.
The rules are fastds/dispatch/sets.py's and fastds/dispatch/trust.py's (a row the prober
would skip is refused here) plus the column sizes of the OpenSIPS schema, so a write
never fails half-way in the database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastds.dispatch.sets import BadUri, destination_from_row
from fastds.dispatch.state import DestinationState
from fastds.dispatch.trust import ADDRESS_COLUMNS, AddressRule, BadAddressRow
from fastds.errors import FieldError

WRITABLE = ("setid", "destination", "socket", "state", "probe_mode", "weight", "priority", "attrs", "description")
DEFAULTS = {"socket": None, "state": 0, "probe_mode": 0, "weight": "1", "priority": 0, "attrs": "",
            "description": ""}
TEXT_SIZES = {"destination": 192, "socket": 128, "attrs": 128, "description": 64}  # CHAR(n) in the schema
INT32_MAX = 2**31 - 1
# OpenSIPS socket syntax: proto:host[:port], IPv6 hosts in brackets
SOCKET = re.compile(r"^(udp|tcp|tls|sctp|ws|wss):(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$")


def _integer(field: str, value: Any, low: int, high: int, what: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,10}", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FieldError(field, value, what)
    return value


def _text(field: str, value: Any, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise FieldError(field, value, "a string" + (" or null" if nullable else ""))
    if len(value) > TEXT_SIZES[field]:
        raise FieldError(field, value, f"at most {TEXT_SIZES[field]} characters")
    return value


def state_number(field: str, value: Any) -> DestinationState:
    """0/1/2 or active/inactive/probing -> the state."""
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        try:
            return DestinationState.parse(value)
        except ValueError:
            raise FieldError(field, value, "0, 1, 2 or active, inactive, probing") from None
    return DestinationState(_integer(field, value, 0, 2, "0, 1, 2 or active, inactive, probing"))


def destination_fields(body: Any, current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The row to write: `body` over `current` (an update) or over the defaults (a new
    destination, which needs setid and destination). FieldError on the first problem."""
    if not isinstance(body, dict):
        raise FieldError("body", body, "a JSON object with the dispatcher columns")
    for field in body:
        if field not in WRITABLE:
            raise FieldError(field, body[field], "no such field; the fields are " + ", ".join(WRITABLE)
                             + (" (id is assigned by the store)" if field == "id" else ""))
    if current is None:
        for field in ("setid", "destination"):
            if field not in body:
                raise FieldError(field, None, "a value (required)")
        base = dict(DEFAULTS)
    else:
        base = {field: current.get(field) for field in WRITABLE}
    merged = {**base, **body}
    row = {
        "setid": _integer("setid", merged["setid"], 0, INT32_MAX, "a set id: an integer from 0 to 2147483647"),
        "destination": (_text("destination", merged["destination"]) or "").strip(),
        "socket": _text("socket", merged["socket"], nullable=True) or None,
        "state": int(state_number("state", merged["state"])),
        "probe_mode": _integer("probe_mode", merged["probe_mode"], 0, 1, "0 (probe when probing) or 1 (always)"),
        "weight": str(_integer("weight", merged["weight"], 0, INT32_MAX, "an integer weight, 0 or more")),
        "priority": _integer("priority", merged["priority"], -INT32_MAX - 1, INT32_MAX, "an integer"),
        "attrs": _text("attrs", merged["attrs"] if merged["attrs"] is not None else ""),
        "description": _text("description", merged["description"] if merged["description"] is not None else ""),
    }
    if row["socket"] is not None and not SOCKET.match(row["socket"]):
        raise FieldError("socket", row["socket"], "proto:host[:port], e.g. udp:10.0.0.10:5060")
    try:
        destination_from_row(row)  # a TCP or TLS one loads where there is a listener for it (fastds/dispatch/sets.py)
    except BadUri as exc:  # says which part of the URI is wrong (a port out of range, a transport)
        raise FieldError("destination", row["destination"], exc.expected) from None
    except ValueError:
        raise FieldError("destination", row["destination"],
                         "a sip: or sips: URI with a host (transport udp, tcp or tls)") from None
    return row


ADDRESS_WRITABLE = tuple(column for column in ADDRESS_COLUMNS if column != "id")


def address_fields(body: Any, current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The address row to write: `body` over `current` (an update) or over the defaults
    (a new row, which needs ip; mask defaults to one address). FieldError on the first problem."""
    if not isinstance(body, dict):
        raise FieldError("body", body, "a JSON object with the address columns")
    for field in body:
        if field not in ADDRESS_WRITABLE:
            raise FieldError(field, body[field], "no such field; the fields are " + ", ".join(ADDRESS_WRITABLE)
                             + (" (id is assigned by the store)" if field == "id" else ""))
    if current is None and "ip" not in body:
        raise FieldError("ip", None, "a value (required)")
    merged = {**(current or {}), **body}
    try:
        rule = AddressRule.from_row(merged)
    except BadAddressRow as exc:
        raise FieldError(exc.column, exc.value, exc.expected) from None
    row = rule.as_row()
    del row["id"]
    return row
