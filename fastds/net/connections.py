"""The stream connections (TCP, TLS) one worker holds: their ids, idle timeout and cap.

Owns the bookkeeping of docs/architecture.md §2 "Streams": each connection a worker accepted
or opened gets an id unique in the node (laid out by fastds/dispatch/peers.py: the holding
worker, TLS or not, opened by fastds or not), so a message handed to its Call-ID's owner names
the connection its answer goes back on; one unused for FASTDS_TCP_IDLE_TIMEOUT_S is due to
close; at FASTDS_TCP_MAX_CONNECTIONS the least recently used is closed to make room. Sans-IO:
a connection's transport is an opaque handle, time comes in as arguments, closing is the caller's.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from fastds.dispatch.peers import SERIAL_MASK, Address, connection_id


@dataclasses.dataclass(slots=True)
class Connection:
    id: int
    remote: Address
    transport: str     # "tcp" or "tls"
    handle: Any        # the caller's transport object
    last_used: float


class ConnectionTable:
    def __init__(self, worker_index: int, max_connections: int, idle_timeout_s: float, first_serial: int = 0):
        """first_serial: where ids start (a worker starts at a random one, so that an id a
        restarted worker gives out is not one an old Record-Route still names)."""
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        self.worker_index = worker_index
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self._serial = first_serial
        self._by_id: collections.OrderedDict[int, Connection] = collections.OrderedDict()  # least recently used first

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, remote: Address, transport: str, handle: Any, now: float,
            dialled: bool = False) -> tuple[Connection, list[Connection]]:
        """Record a new connection (dialled: fastds opened it); returns it and those to close
        for it (the least recently used, while the table is full)."""
        evicted = []
        while len(self._by_id) >= self.max_connections:
            evicted.append(self.remove(next(iter(self._by_id))))
        self._serial = self._serial % SERIAL_MASK + 1  # never 0: that is a dial address's
        connection = Connection(connection_id(self.worker_index, transport, dialled, self._serial), remote,
                                transport, handle, now)
        self._by_id[connection.id] = connection
        return connection, evicted

    def get(self, connection_id: int) -> Connection | None:
        return self._by_id.get(connection_id)

    def used(self, connection_id: int, now: float) -> None:
        """Something was read from or written to the connection."""
        connection = self._by_id.get(connection_id)
        if connection is not None:
            connection.last_used = now
            self._by_id.move_to_end(connection_id)

    def remove(self, connection_id: int) -> Connection | None:
        """Forget a connection (closed by either side); the removed one, or None."""
        return self._by_id.pop(connection_id, None)

    def idle(self, now: float) -> list[Connection]:
        """The connections unused for the idle timeout, removed: the caller closes them."""
        expired = []
        while self._by_id:
            oldest = next(iter(self._by_id.values()))
            if now - oldest.last_used < self.idle_timeout_s:
                break
            expired.append(self.remove(oldest.id))
        return expired
