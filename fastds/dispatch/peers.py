"""How fastds addresses a peer, the one home of the connection-id bit layout.

An Address is (IP, port) over UDP, or (IP, port, connection id) on a TCP or TLS
connection. A connection id packs the index of the worker holding the connection, whether
it is TLS and whether fastds opened it above a serial (fastds/net/connections.py hands the
ids out); a serial of 0 names no connection but a dial: "the sending worker's own
connection to IP:port over TCP or TLS, opened if it has none" (destinations, in-dialog next
hops). Sans-IO: the core and the transports both read addresses through these.
"""

from __future__ import annotations

Address = tuple  # (IP, port) of a datagram's peer; (IP, port, connection id) of a stream's
# a connection id: the holding worker's index << 40 | TLS_CONNECTION if TLS | DIALED_CONNECTION if fastds
# opened it | a serial (below 1 << 38; 0 in a dial address)
CONNECTION_OWNER_SHIFT = 40
TLS_CONNECTION = 1 << 39
DIALED_CONNECTION = 1 << 38
SERIAL_MASK = DIALED_CONNECTION - 1


def on_stream(address: Address) -> bool:
    """The peer is on a TCP or TLS connection: what is sent to it goes on that connection."""
    return len(address) == 3


def dial(host: str, port: int, transport: str) -> Address:
    """The address of a peer reached over this worker's own connection to host:port over
    `transport` (tcp or tls), opened when it has none."""
    return (host, port, DIALED_CONNECTION | (TLS_CONNECTION if transport == "tls" else 0))


def is_dial(address: Address) -> bool:
    """`address` names no connection yet, only where to open one (dial())."""
    return not address[2] & SERIAL_MASK


def connection_id(worker_index: int, transport: str, dialled: bool, serial: int) -> int:
    """The id of a connection `worker_index` holds (serial 1..SERIAL_MASK)."""
    flags = (TLS_CONNECTION if transport == "tls" else 0) | (DIALED_CONNECTION if dialled else 0)
    return worker_index << CONNECTION_OWNER_SHIFT | flags | serial


def connection_owner(connection_id: int) -> int:
    """The index of the worker that holds a connection."""
    return connection_id >> CONNECTION_OWNER_SHIFT


def is_tls(connection_id: int) -> bool:
    return bool(connection_id & TLS_CONNECTION)


def is_dialled(connection_id: int) -> bool:
    """fastds opened the connection (a destination's, a next hop's), rather than accepted it."""
    return bool(connection_id & DIALED_CONNECTION)


def transport_of(address: Address) -> str:
    """udp, tcp or tls: how the peer at `address` reaches fastds."""
    if not on_stream(address):
        return "udp"
    return "tls" if is_tls(address[2]) else "tcp"
