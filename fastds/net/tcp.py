"""Stream transports of one worker: the TCP and TLS listeners it shares, the connections it accepted.

Owns running a worker's TCP and TLS listening sockets (bound by the master with SO_REUSEPORT,
like the public UDP one: the kernel spreads new connections over the workers; TLS through
Python's ssl on uvloop, fastds/net/tls.py) on the event loop, one
asyncio protocol per accepted connection, cutting each connection's bytes into messages
(fastds/sip/stream.py), and what happens at its edges: pings answered, a framing error answered
(400 / 408 / 513 where the head is a request) before the connection is closed, the idle timeout
and the per-worker cap (fastds/net/connections.py), a peer that does not read closed once
FASTDS_TCP_MAX_UNSENT_BYTES wait for it, and writing what the proxy sends to a peer
on a connection -- here when this worker holds it, else handed to the worker that does
(fastds/net/handoff.py). Every message read goes to `deliver`, which hands it to its Call-ID's
owner (fastds/net/udp.py). A peer on a connection is addressed (IP, port, connection id).
Outgoing connections (to TCP destinations) are not opened yet: the proxy refuses what would
need one (fastds/dispatch/proxy.py next_hop_of).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable

from fastds.dispatch.txn import connection_owner
from fastds.net.connections import ConnectionTable
from fastds.net.handoff import Handoff
from fastds.sip.stream import PONG, FramingError, StreamFramer, framing_error_response

log = logging.getLogger("fastds.tcp")
MAX_HEADER_BYTES = 16384  # a header block longer than this (or than the whole-message bound) is 513
LISTEN_BACKLOG = 1024

Deliver = Callable[[list[bytes], tuple, float], None]  # messages read on a connection, its peer, the loop time


class StreamEndpoint:
    def __init__(self, loop: asyncio.AbstractEventLoop, index: int, table: ConnectionTable, max_message_bytes: int,
                 message_timeout_s: float, handoff: Handoff | None, max_unsent_bytes: int):
        self._loop = loop
        self._index = index
        self._handoff = handoff
        self.table = table
        self._max_message_bytes = max_message_bytes
        self._max_header_bytes = min(MAX_HEADER_BYTES, max_message_bytes)
        self._message_timeout_s = message_timeout_s
        self._max_unsent_bytes = max_unsent_bytes
        self._servers: list[asyncio.AbstractServer] = []
        self._streams: dict[int, _Stream] = {}  # by connection id
        self.deliver: Deliver | None = None  # set before start() (the UDP endpoint's on_stream_messages)
        self.accepted = 0
        self.handshake_failures = 0
        self.framing_errors = 0
        self.writes_lost = 0  # for a connection that had gone by the time the answer was ready
        self.slow_readers = 0  # connections closed: more than max_unsent_bytes waited for their peer to read

    async def start(self, listener: socket.socket, transport: str = "tcp", tls: ssl.SSLContext | None = None) -> None:
        """Accept on a listener: plain TCP, or TLS with `tls` (a connection counts once its
        handshake is done, within the message deadline; one that fails it is only counted)."""
        listener.listen(LISTEN_BACKLOG)
        self._servers.append(await self._loop.create_server(
            lambda: _Stream(self, transport), sock=listener, ssl=tls,
            ssl_handshake_timeout=self._message_timeout_s if tls is not None else None))

    def connections(self, kind: str) -> int:
        """Connections of one kind (tcp, tls) this worker holds now."""
        return sum(1 for stream in self._streams.values() if stream.kind == kind)

    def close(self) -> None:
        for server in self._servers:
            server.close()
        for stream in list(self._streams.values()):
            stream.transport.abort()

    def send(self, data: bytes, peer: tuple) -> None:
        """Write to a peer on a connection: this worker's, or handed to the worker holding it."""
        holder = connection_owner(peer[2])
        if holder == self._index:
            self.write(data, peer)
        elif self._handoff is not None:
            self._handoff.write(holder, data, peer)
        else:
            self.writes_lost += 1

    def write(self, data: bytes, peer: tuple) -> None:
        """Write on one of this worker's connections (a write handed here by another worker too)."""
        stream = self._streams.get(peer[2])
        if stream is None:
            self.writes_lost += 1
            return
        stream.transport.write(data)
        self.table.used(peer[2], self._loop.time())
        if stream.transport.get_write_buffer_size() > self._max_unsent_bytes:
            self.slow_readers += 1  # a peer that does not read must not make this worker hold its answers
            log.info("tcp %s:%d closed: more than %d bytes waited for it to read", peer[0], peer[1],
                     self._max_unsent_bytes)
            self._streams.pop(peer[2], None)  # gone at once: what else comes for it is lost, not written
            self.table.remove(peer[2])
            stream.transport.abort()

    def sweep(self) -> None:
        """Close what the idle timeout and the message deadline say must go (every second)."""
        now = self._loop.time()
        for connection in self.table.idle(now):
            connection.handle.close()
        for stream in list(self._streams.values()):
            if stream.framer.overdue(now):
                self.framing_errors += 1
                stream.framer.closed()
                log.info("tcp %s:%d closed: a message not whole within %g s", stream.peer[0], stream.peer[1],
                         self._message_timeout_s)
                stream.transport.abort()

    def _opened(self, stream: _Stream) -> None:
        peer = stream.transport.get_extra_info("peername")
        connection, evicted = self.table.add((peer[0], peer[1]), stream.kind, stream.transport, self._loop.time())
        for old in evicted:
            old.handle.abort()
        stream.peer = (peer[0], peer[1], connection.id)
        stream.framer = StreamFramer(self._max_message_bytes, self._max_header_bytes, self._message_timeout_s)
        self._streams[connection.id] = stream
        self.accepted += 1

    def _closed(self, stream: _Stream) -> None:
        if stream.peer is None:
            return
        if stream.framer.closed():
            self.framing_errors += 1  # the peer closed mid-message
        self._streams.pop(stream.peer[2], None)
        self.table.remove(stream.peer[2])

    def _read(self, stream: _Stream, data: bytes) -> None:
        now = self._loop.time()
        self.table.used(stream.peer[2], now)
        try:
            frames = stream.framer.feed(data, now)
        except FramingError as error:
            self.framing_errors += 1
            stream.framer.closed()  # what is left cannot be framed: not counted again when the connection goes
            log.info("tcp %s:%d closed: %s", stream.peer[0], stream.peer[1], error)
            response = framing_error_response(error)
            if response is not None:
                stream.transport.write(response)
            stream.transport.close()
            return
        if frames.pings:
            stream.transport.write(PONG * frames.pings)
        if frames.messages:
            self.deliver(frames.messages, stream.peer, now)


class _Stream(asyncio.Protocol):
    """One accepted connection."""

    def __init__(self, endpoint: StreamEndpoint, kind: str):
        self._endpoint = endpoint
        self.kind = kind  # tcp or tls
        self.transport: asyncio.Transport | None = None
        self.peer: tuple | None = None
        self.framer: StreamFramer | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # TLS: once the handshake is done
        self._endpoint._opened(self)

    def __del__(self) -> None:
        # made for an accepted TLS connection, let go without connection_made(): its handshake
        # failed (the TLS layer drops a failed handshake without telling the protocol)
        if self.kind == "tls" and self.transport is None:
            self._endpoint.handshake_failures += 1

    def data_received(self, data: bytes) -> None:
        self._endpoint._read(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._endpoint._closed(self)
