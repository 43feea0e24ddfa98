"""UDP transport of one worker: the public and the private socket, and the one timer.

Owns running the sockets a worker bound (fastds/net/bind.py): the public one
(SO_REUSEPORT, shared by the workers), whose datagrams go to their Call-ID's owner
(fastds/net/handoff.py) once the flood limit admits them (fastds/dispatch/pike.py),
and the private one whose port goes in our Via, so responses
return to this worker; feeding datagrams and the loop clock to the sans-IO Proxy,
applying its actions through the egress check, and keeping exactly one loop.call_at
armed for the proxy's next deadline (docs/architecture.md §2-§3). A datagram whose
handling fails is counted and logged in one line, never a traceback, and never stops
the loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from fastds.dispatch.pike import FloodGuard
from fastds.dispatch.proxy import Proxy
from fastds.dispatch.txn import ReportFailure, Send
from fastds.net.egress import EgressPolicy
from fastds.net.handoff import Handoff

log = logging.getLogger("fastds.udp")


def sent_by(sock: socket.socket, advertised_host: str) -> bytes:
    port = sock.getsockname()[1]
    host = f"[{advertised_host}]" if ":" in advertised_host else advertised_host
    return f"{host}:{port}".encode()


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: "UdpEndpoint", upstream: bool):
        self._endpoint = endpoint
        self._upstream = upstream

    def connection_made(self, transport: asyncio.DatagramTransport) -> None:
        self._endpoint.attach(transport, self._upstream)

    def datagram_received(self, data: bytes, addr) -> None:
        self._endpoint.datagram_received(data, addr, self._upstream)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable on a send
        self._endpoint.send_errors += 1


class UdpEndpoint:
    def __init__(self, loop: asyncio.AbstractEventLoop, proxy: Proxy, egress: EgressPolicy,
                 on_failure: Callable[[ReportFailure], None], handoff: Handoff | None = None,
                 guard: FloodGuard | None = None):
        """handoff: this worker's end of the Call-ID ownership hand-off (None: it owns all);
        guard: the flood limit every public datagram passes first (None: no limit)."""
        self._loop = loop
        self._guard = guard
        self._handoff = handoff
        self._proxy = proxy
        self._egress = egress
        self._on_failure = on_failure
        self._public: asyncio.DatagramTransport | None = None
        self._private: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None
        self.packets_out = 0
        self.send_errors = 0
        self.handler_errors = 0

    async def start(self, public_sock: socket.socket, private_sock: socket.socket) -> None:
        """The private socket first: a datagram waiting on the public one may be read as
        soon as it is attached, and what it causes goes out on both."""
        await self._loop.create_datagram_endpoint(lambda: _Protocol(self, False), sock=private_sock)
        if self._handoff is not None:
            self._loop.add_reader(self._handoff.socket.fileno(), self._on_handoff)
        await self._loop.create_datagram_endpoint(lambda: _Protocol(self, True), sock=public_sock)

    def attach(self, transport: asyncio.DatagramTransport, upstream: bool) -> None:
        if upstream:
            self._public = transport
        else:
            self._private = transport

    def close(self) -> None:
        if self._handoff is not None:
            self._loop.remove_reader(self._handoff.socket.fileno())
        for transport in (self._public, self._private):
            if transport is not None:
                transport.close()
        if self._timer is not None:
            self._timer.cancel()

    def datagram_received(self, data: bytes, addr, upstream: bool) -> None:
        """A datagram on the public socket is handled by its Call-ID's owner (handed to it
        when that is another worker); on the private one, the responses to this worker's
        own client transactions, here. A public datagram the flood limit refuses goes nowhere."""
        if upstream and self._guard is not None and not self._guard.admit(data, addr[0], addr[1], self._loop.time()):
            return
        if upstream and self._handoff is not None:
            owner = self._handoff.owner(data)
            if owner != self._handoff.index:
                if self._handoff.send(owner, data, (addr[0], addr[1])):
                    self._loop.call_soon(self._handoff.flush)  # after this turn's other datagrams
                return
        self._handle(data, addr)

    def _on_handoff(self) -> None:
        for data, source in self._handoff.receive():
            self._handle(data, source)

    def _handle(self, data: bytes, addr) -> None:
        try:
            self._apply(self._proxy.receive(data, (addr[0], addr[1]), self._loop.time()))
        except Exception as exc:  # noqa: BLE001 - one bad datagram must not reach the loop's handler
            self.handler_errors += 1
            log.error("datagram from %s:%d dropped, handling failed: %s: %s", addr[0], addr[1], type(exc).__name__, exc)

    def _fire(self) -> None:
        self._timer = None
        self._armed_at = None
        self._apply(self._proxy.timer(self._loop.time()))

    def _apply(self, actions: list) -> None:
        now = self._loop.time()
        for action in actions:
            if type(action) is Send:
                if not self._egress.allows(action.addr[0], now):
                    continue
                transport = self._public if action.upstream else self._private
                try:
                    transport.sendto(action.data, action.addr)
                    self.packets_out += 1
                except OSError:
                    self.send_errors += 1
            elif type(action) is ReportFailure:
                self._on_failure(action)
        deadline = self._proxy.next_deadline()
        if deadline is not None and (self._armed_at is None or deadline < self._armed_at):
            if self._timer is not None:
                self._timer.cancel()
            self._armed_at = deadline
            self._timer = self._loop.call_at(deadline, self._fire)
