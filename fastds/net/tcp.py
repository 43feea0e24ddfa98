"""Stream transports (TCP, TLS) of one worker, or of the prober: the listeners it shares, the
connections it accepts and the ones it opens (docs/architecture.md §2 "Streams").

Owns each connection's protocol on the loop: its bytes cut into messages (fastds/sip/stream.py)
and given to `deliver`; pings, framing errors, the idle timeout, the cap and slow readers at its
edges; writes queued per connection and sent once per loop turn (flush()), here when this
worker holds the connection, else handed to the one that does; dial addresses
(fastds/dispatch/peers.py) opened on first use, a failure told to `broken` so what waited fails
over at once; a write for a gone connection reconnects (RFC 3261 §18.2.2).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable

from fastds.dispatch.peers import connection_owner, dial, is_dial, is_tls
from fastds.net.connections import ConnectionTable
from fastds.net.handoff import Handoff
from fastds.net.tls import load_certificate
from fastds.sip.stream import PONG, FramingError, StreamFramer, framing_error_response

log = logging.getLogger("fastds.tcp")
MAX_HEADER_BYTES = 16384  # a header block longer than this (or than the whole-message bound) is 513
LISTEN_BACKLOG = 1024

Deliver = Callable[[list[bytes], tuple, float], None]  # messages read on a connection, its peer, the loop time
Broken = Callable[[tuple, str], None]  # a dial address whose connection failed or broke, and why
TlsName = Callable[[str, int], str]  # the name the certificate at IP, port must show


class StreamEndpoint:
    def __init__(self, loop: asyncio.AbstractEventLoop, index: int, table: ConnectionTable, max_message_bytes: int,
                 message_timeout_s: float, handoff: Handoff | None, max_unsent_bytes: int, connect_timeout_s: float,
                 client_tls: ssl.SSLContext | None = None, tls_name: TlsName | None = None):
        """client_tls, tls_name: for the TLS connections this opens (None: it opens none)."""
        self._loop = loop
        self._index = index
        self._handoff = handoff
        self.table = table
        self._max_message_bytes = max_message_bytes
        self._max_header_bytes = min(MAX_HEADER_BYTES, max_message_bytes)
        self._message_timeout_s = message_timeout_s
        self._max_unsent_bytes = max_unsent_bytes
        self._connect_timeout_s = connect_timeout_s
        self._client_tls = client_tls
        self._tls_name = tls_name
        self._servers: list[asyncio.AbstractServer] = []
        self._streams: dict[int, _Stream] = {}  # by connection id
        self._dialled: dict[tuple, _Stream | list[bytes]] = {}  # by dial address: open, or what waits for it
        self._dials: set[asyncio.Task] = set()
        self._corked: list[_Stream] = []  # connections with writes queued this loop turn
        self.deliver: Deliver | None = None  # set before start() (the message pump's on_stream_messages)
        self.broken: Broken | None = None  # set before anything is sent to a dial address
        self.accepted = 0
        self.handshake_failures = 0
        self.framing_errors = 0
        self.writes_lost = 0  # for a connection that had gone by the time the answer was ready
        self.slow_readers = 0  # connections closed: more than max_unsent_bytes waited for their peer to read
        self.dialled = 0  # connections opened
        self.connect_failures = 0  # connections that could not be opened (TLS: handshake included) or broke

    def reload_certificate(self, cert_file: str, key_file: str) -> None:
        """SIGHUP: the certificate offered on the connections this opens (ValueError: the old one stays)."""
        if cert_file:
            load_certificate(self._client_tls, cert_file, key_file)

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
        for task in self._dials:
            task.cancel()
        for stream in list(self._streams.values()):
            stream.transport.abort()

    def send(self, data: bytes, peer: tuple) -> None:
        """Write to a peer on a connection: this worker's, or handed to the worker holding it;
        to a dial address on this worker's connection there."""
        if is_dial(peer):
            self._send_dialled(data, peer)
            return
        holder = connection_owner(peer[2])
        if holder == self._index:
            self.write(data, peer)
        elif self._handoff is not None:
            self._handoff.write(holder, data, peer)
        else:
            self.writes_lost += 1

    def write(self, data: bytes, peer: tuple) -> None:
        """Write on one of this worker's connections (a write handed here by another worker too);
        the connection gone, over a new one to the address the peer names."""
        stream = self._streams.get(peer[2])
        if stream is None:
            self._send_dialled(data, dial(peer[0], peer[1], "tls" if is_tls(peer[2]) else "tcp"))
            return
        self._write(stream, data)

    def _write(self, stream: _Stream, data: bytes) -> None:
        """Queued until flush(): what one loop turn writes on a connection goes in one send."""
        if not stream.unsent:
            self._corked.append(stream)
        stream.unsent.append(data)
        self.table.used(stream.peer[2], self._loop.time())

    def flush(self) -> None:
        """Write what this loop turn queued, a send per connection (the loop's turn ends with it:
        fastds/net/pump.py _after_batch), most turns nothing: then no new list."""
        if not self._corked:
            return
        corked, self._corked = self._corked, []
        for stream in corked:
            if stream.unsent:
                self._flush(stream)

    def _flush(self, stream: _Stream) -> None:
        unsent = stream.unsent
        stream.unsent = []
        if self._streams.get(stream.peer[2]) is not stream:
            return  # closed meanwhile: lost with it
        stream.transport.write(unsent[0] if len(unsent) == 1 else b"".join(unsent))
        if stream.transport.get_write_buffer_size() > self._max_unsent_bytes:
            self.slow_readers += 1  # a peer that does not read must not make this worker hold its answers
            peer = stream.peer
            log.info("%s %s:%d closed: more than %d bytes waited for it to read", stream.kind, peer[0], peer[1],
                     self._max_unsent_bytes)
            self._forget(stream)  # gone at once: what else comes for it is lost, not written
            stream.transport.abort()

    def _send_dialled(self, data: bytes, address: tuple) -> None:
        """On this worker's connection to a dial address; opened when there is none."""
        entry = self._dialled.get(address)
        if type(entry) is _Stream:
            self._write(entry, data)
            return
        if entry is None:
            if is_tls(address[2]) and self._client_tls is None:
                self.writes_lost += 1
                return
            entry = self._dialled[address] = []
            task = self._loop.create_task(self._dial(address))
            self._dials.add(task)
            task.add_done_callback(self._dials.discard)
        if sum(map(len, entry)) + len(data) > self._max_unsent_bytes:
            self.writes_lost += 1  # a connection that does not come up must not make this worker hold its messages
            return
        entry.append(data)

    async def _dial(self, address: tuple) -> None:
        host, port, marker = address
        kind = "tls" if is_tls(marker) else "tcp"
        tls = self._client_tls if kind == "tls" else None
        try:
            await asyncio.wait_for(self._loop.create_connection(
                lambda: _Stream(self, kind, address), host, port, ssl=tls,
                server_hostname=self._tls_name(host, port) if tls is not None else None,
                ssl_handshake_timeout=self._connect_timeout_s if tls is not None else None), self._connect_timeout_s)
        except OSError as exc:  # refused, unreachable, timed out (TimeoutError), a TLS handshake or certificate failure
            waiting = self._dialled.pop(address, None)
            self.connect_failures += 1
            if isinstance(exc, ssl.SSLError):
                self.handshake_failures += 1
            why = f"{kind} connect to {host}:{port} failed: {_reason(exc)}"
            lost = len(waiting) if type(waiting) is list else 0
            self.writes_lost += lost
            log.info("%s (%d message%s not sent)", why, lost, "" if lost == 1 else "s")
            self.broken(address, why)

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
        dialled = stream.dial is not None
        connection, evicted = self.table.add((peer[0], peer[1]), stream.kind, stream.transport, self._loop.time(),
                                             dialled)
        for old in evicted:
            old.handle.abort()
        stream.peer = (peer[0], peer[1], connection.id)
        stream.framer = StreamFramer(self._max_message_bytes, self._max_header_bytes, self._message_timeout_s)
        self._streams[connection.id] = stream
        if not dialled:
            self.accepted += 1
            return
        self.dialled += 1
        waiting = self._dialled.get(stream.dial)
        self._dialled[stream.dial] = stream
        if waiting:
            stream.unsent = waiting
            self._flush(stream)

    def _forget(self, stream: _Stream) -> None:
        self._streams.pop(stream.peer[2], None)
        self.table.remove(stream.peer[2])
        if stream.dial is not None and self._dialled.get(stream.dial) is stream:
            del self._dialled[stream.dial]

    def _closed(self, stream: _Stream, exc: Exception | None) -> None:
        if stream.peer is None:
            return
        if stream.framer.closed():
            self.framing_errors += 1  # the peer closed mid-message
        known = self._streams.get(stream.peer[2]) is stream
        self._forget(stream)
        if stream.dial is not None and known:  # what still waits for an answer on it fails over now
            if exc is not None:
                self.connect_failures += 1
            self.broken(stream.dial, f"{stream.kind} connection to {stream.peer[0]}:{stream.peer[1]} "
                                     f"{'lost: ' + _reason(exc) if exc is not None else 'closed'}")

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
            if stream.unsent:
                self._flush(stream)  # what was answered before it
            if response is not None:
                stream.transport.write(response)
            stream.transport.close()
            return
        if frames.pings:
            stream.transport.write(PONG * frames.pings)
        if frames.messages:
            self.deliver(frames.messages, stream.peer, now)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not accepted ({exc.verify_message})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


class _Stream(asyncio.Protocol):
    """One connection: accepted, or opened to a dial address (`dial`)."""

    def __init__(self, endpoint: StreamEndpoint, kind: str, dial: tuple | None = None):
        self._endpoint = endpoint
        self.kind = kind  # tcp or tls
        self.dial = dial
        self.unsent: list[bytes] = []  # written this loop turn, not yet handed to the transport
        self.transport: asyncio.Transport | None = None
        self.peer: tuple | None = None
        self.framer: StreamFramer | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # TLS: once the handshake is done
        self._endpoint._opened(self)

    def __del__(self) -> None:
        # made for an accepted TLS connection, let go without connection_made(): its handshake
        # failed (the TLS layer drops a failed handshake without telling the protocol)
        if self.kind == "tls" and self.transport is None and self.dial is None:
            self._endpoint.handshake_failures += 1

    def data_received(self, data: bytes) -> None:
        self._endpoint._read(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._endpoint._closed(self, exc)
