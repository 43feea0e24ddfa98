"""The worker's message pump: every message it reads, whichever transport brought it, goes
to the sans-IO proxy core, and what the core sends goes out.

Owns the worker's UDP sockets on the loop -- the public one (its datagrams go to their
Call-ID's owner, fastds/net/handoff.py, once the flood limit admits them) and the private one
(responses to what this worker forwarded) -- read in batches (ext/udpio.pyx); the messages
the stream endpoint (fastds/net/tcp.py) reads; the egress check and one outbox per socket
and connection, flushed once per batch (with the HEP capture's, fastds/net/hep.py, when
on); and the one timer armed for the core's next deadline (docs/architecture.md §2-§3). A
message whose handling fails is counted and logged in one line, never stopping the loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from fastds._ext.udpio import DatagramIO
from fastds.dispatch.peers import is_dialled, on_stream, transport_of
from fastds.dispatch.pike import FloodGuard
from fastds.dispatch.proxy import Proxy
from fastds.dispatch.txn import ReportFailure, Send
from fastds.net.egress import EgressPolicy
from fastds.net.handoff import Handoff
from fastds.net.hep import HepCapture
from fastds.net.tcp import StreamEndpoint

log = logging.getLogger("fastds.udp")
BATCH = 64  # datagrams per recvmmsg / sendmmsg
BATCHES_PER_TURN = 4  # then the loop's other readers and timers get their turn
MAX_DATAGRAM = 65535


def sent_by(sock: socket.socket, advertised_host: str) -> bytes:
    port = sock.getsockname()[1]
    host = f"[{advertised_host}]" if ":" in advertised_host else advertised_host
    return f"{host}:{port}".encode()


class MessagePump:
    def __init__(self, loop: asyncio.AbstractEventLoop, proxy: Proxy, egress: EgressPolicy,
                 on_failure: Callable[[ReportFailure], None], handoff: Handoff | None = None,
                 guard: FloodGuard | None = None, streams: StreamEndpoint | None = None,
                 capture: HepCapture | None = None):
        """handoff: this worker's end of the Call-ID ownership hand-off (None: it owns all);
        guard: the flood limit every public datagram and stream message passes first (None: no
        limit); streams: the TCP endpoint, for what goes to a peer on a connection (None: no TCP);
        capture: HEP copies of what the core receives and sends (None: off, one compare a message)."""
        self._capture = capture
        self._loop = loop
        self._guard = guard
        self._handoff = handoff
        self._streams = streams
        self._streams_written = False  # something went to the stream endpoint this turn: flush it
        self._proxy = proxy
        self._egress = egress
        self._on_failure = on_failure
        self._sockets: list[socket.socket] = []
        self._public: DatagramIO | None = None
        self._private: DatagramIO | None = None
        self._to_public: list[tuple[bytes, tuple]] = []  # sent by _after_batch() at the end of each loop callback
        self._to_private: list[tuple[bytes, tuple]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None
        self._handoff_watched: set[int] = set()  # owners whose sender fd is watched for room
        self.packets_out = 0
        self.handler_errors = 0

    @property
    def send_errors(self) -> int:
        return sum(io.send_errors for io in (self._public, self._private) if io is not None)

    @property
    def truncated(self) -> int:
        """Datagrams longer than MAX_DATAGRAM, dropped on receipt."""
        return sum(io.truncated for io in (self._public, self._private) if io is not None)

    async def start(self, public_sock: socket.socket, private_sock: socket.socket) -> None:
        """Both sockets are ready to send before either is read: a datagram waiting on the
        public one may cause sends on both."""
        self._sockets = [public_sock, private_sock]
        self._public = DatagramIO(public_sock.fileno(), public_sock.family, BATCH, MAX_DATAGRAM)
        self._private = DatagramIO(private_sock.fileno(), private_sock.family, BATCH, MAX_DATAGRAM)
        self._loop.add_reader(private_sock.fileno(), self._on_private)
        if self._handoff is not None:
            self._loop.add_reader(self._handoff.socket.fileno(), self._on_handoff)
        self._loop.add_reader(public_sock.fileno(), self._on_public)

    def close(self) -> None:
        if self._handoff is not None:
            self._loop.remove_reader(self._handoff.socket.fileno())
        for sock in self._sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()
        if self._timer is not None:
            self._timer.cancel()

    def _on_public(self) -> None:
        """A datagram on the public socket is handled by its Call-ID's owner."""
        self._read(self._public, True)

    def on_stream_messages(self, messages: list[bytes], peer: tuple, now: float) -> None:
        """Messages read on a TCP connection (fastds/net/tcp.py): each to its Call-ID's owner."""
        guard = None if is_dialled(peer[2]) else self._guard
        for data in messages:
            self._to_owner(data, peer, now, guard)
        self._after_batch()

    def on_connection_broken(self, address: tuple, why: str) -> None:
        """A connection this worker opened failed or broke (fastds/net/tcp.py): what waited on it fails over."""
        now = self._loop.time()
        self._apply(self._proxy.connection_failed(address, why, now), now)
        self._after_batch()

    def _to_owner(self, data: bytes, source: tuple, now: float, guard: FloodGuard | None) -> None:
        """Handle a message here, or hand it to the worker that owns its Call-ID. A message
        the flood limit refuses goes nowhere."""
        handoff = self._handoff
        if guard is not None and not guard.admit(data, source[0], source[1], now, transport_of(source)):
            return
        if handoff is not None:
            owner = handoff.owner(data)
            if owner != handoff.index:
                handoff.send(owner, data, source)
                return
        self._handle(data, source, now)

    def _on_private(self) -> None:
        """The responses to this worker's own client transactions."""
        self._read(self._private, False)

    def _read(self, io: DatagramIO, public: bool) -> None:
        """Up to BATCHES_PER_TURN batches from one socket while it has more, each message
        with the loop time its batch was read at: a public one to its Call-ID's owner, a
        private one to the core here; then what they caused goes out."""
        for _ in range(BATCHES_PER_TURN):
            batch = io.receive()
            now = self._loop.time()
            for data, addr in batch:
                if public:
                    self._to_owner(data, addr, now, self._guard)
                else:
                    self._handle(data, addr, now, True)
            if len(batch) < BATCH:
                break
        self._after_batch()

    def _on_handoff(self) -> None:
        """Messages whose Call-ID this worker owns, and writes for its TCP connections."""
        now = self._loop.time()
        messages, writes = self._handoff.receive(1)
        for data, source in messages:
            self._handle(data, source, now)
        if writes and self._streams is not None:
            for data, peer in writes:
                self._streams.write(data, peer)
            self._streams_written = True
        self._after_batch()

    def _handle(self, data: bytes, addr: tuple, now: float, private: bool = False) -> None:
        """One message for the core; `private`: it came to the private socket."""
        if self._capture is not None:
            self._capture.received(data, addr, private)
        try:
            self._apply(self._proxy.receive(data, addr, now), now)
        except Exception as exc:  # noqa: BLE001 - one bad datagram must not reach the loop's handler
            self.handler_errors += 1
            log.error("datagram from %s:%d dropped, handling failed: %s: %s", addr[0], addr[1], type(exc).__name__, exc)

    def _fire(self) -> None:
        self._timer = None
        self._armed_at = None
        now = self._loop.time()
        self._apply(self._proxy.timer(now), now)
        self._after_batch()

    def _apply(self, actions: list, now: float) -> None:
        for action in actions:
            if type(action) is Send:
                send = action  # typed (pump.pxd): its fields are C reads
                if not self._egress.allows(send.addr[0], now):
                    continue
                if self._capture is not None:
                    self._capture.sent(send.data, send.addr, send.upstream)
                if on_stream(send.addr):  # only the TCP endpoint's messages have such sources
                    self.packets_out += 1
                    self._streams.send(send.data, send.addr)
                    self._streams_written = True
                else:
                    (self._to_public if send.upstream else self._to_private).append((send.data, send.addr))
            elif type(action) is ReportFailure:
                self._on_failure(action)

    def _handoff_writable(self, owner: int, fd: int) -> None:
        """An owner whose queue was full has room again: what waited for it goes."""
        if self._handoff.retry(owner):
            self._loop.remove_writer(fd)
            self._handoff_watched.discard(owner)

    def _after_batch(self) -> None:
        """Send what the batch produced (hand-offs too), then keep the timer armed for the
        next deadline."""
        if self._handoff is not None:
            self._handoff.flush()
            for owner, fd in self._handoff.waiting():
                if owner not in self._handoff_watched:
                    self._handoff_watched.add(owner)
                    self._loop.add_writer(fd, self._handoff_writable, owner, fd)
        if self._streams_written:  # only the pump writes to it (its flush() runs as bytecode)
            self._streams_written = False
            self._streams.flush()
        if self._to_public:
            self.packets_out += self._public.send(self._to_public)
            self._to_public = []
        if self._to_private:
            self.packets_out += self._private.send(self._to_private)
            self._to_private = []
        if self._capture is not None:
            self._capture.flush()
        deadline = self._proxy.next_deadline()
        if deadline is not None and (self._armed_at is None or deadline < self._armed_at):
            if self._timer is not None:
                self._timer.cancel()
            self._armed_at = deadline
            self._timer = self._loop.call_at(deadline, self._fire)
