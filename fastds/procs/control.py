"""Requests from the API process to the prober, which alone writes topology and states.

Owns the little protocol on the prober's control socket (abstract unix datagram, named after
the master's pid): one JSON object per datagram, each request with an `id` its reply repeats
(the client drops it from what it returns). Requests: set_state {destination, state, mi} and
reload {inherit, cluster} (applied in the order received), ping, cluster, status_report and
unblock {ip}. Replies: {"ok": true, ...} or {"ok": false, "error": "..."}.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from fastds.errors import ProberUnavailable

log = logging.getLogger("fastds.control")

REPLY_TIMEOUT_S = 30.0  # a reload re-reads the store and resolves host names
# a status/report reply with 200 events of the longest destination URIs is ~70 KB; a unix
# datagram may be as large as the send buffer (net.core.wmem_default, 208 KiB by default)
MAX_DATAGRAM = 160 * 1024


def control_address(master_pid: int) -> str:
    return f"\0fastds-{master_pid}-control"


class ControlClient:
    """The API process's side: `await client.request(op, **fields)` -> the reply dict."""

    def __init__(self, address: str):
        self._address = address
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind("")  # Linux autobind: an abstract address the prober can reply to
        self._socket.setblocking(False)
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self._reader_installed = False

    def _on_readable(self) -> None:
        while True:
            try:
                data = self._socket.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            try:
                reply = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            future = self._waiting.pop(reply.pop("id", None), None)  # the id matched it: not part of the answer
            if future is not None and not future.done():
                future.set_result(reply)

    async def request(self, op: str, timeout_s: float = REPLY_TIMEOUT_S, **fields: Any) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        if not self._reader_installed:
            loop.add_reader(self._socket.fileno(), self._on_readable)
            self._reader_installed = True
        request_id = next(self._ids)
        future = self._waiting[request_id] = loop.create_future()
        try:
            self._socket.sendto(orjson.dumps({"id": request_id, "op": op, **fields}), self._address)
            return await asyncio.wait_for(future, timeout_s)
        except (OSError, asyncio.TimeoutError) as exc:
            raise ProberUnavailable(f"the prober did not answer {op!r}: "
                                    f"{exc.strerror if isinstance(exc, OSError) else 'timed out'}") from None
        finally:
            self._waiting.pop(request_id, None)

    def close(self) -> None:
        if self._reader_installed:
            asyncio.get_running_loop().remove_reader(self._socket.fileno())
        self._socket.close()


class ControlServer:
    """The prober's side: each request becomes a task of `handler(request)`, started in
    the order the requests arrived (the handler keeps them in order); its reply is sent back."""

    def __init__(self, address: str, handler: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]):
        self._handler = handler
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(address)
        self._socket.setblocking(False)
        self._tasks: set[asyncio.Task] = set()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_reader(self._socket.fileno(), self._on_readable, loop)

    def _on_readable(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                data, sender = self._socket.recvfrom(MAX_DATAGRAM)
            except OSError:
                return
            try:
                request = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if isinstance(request, dict):
                task = loop.create_task(self._answer(request, sender))
                self._tasks.add(task)  # a task nobody references may be collected mid-flight
                task.add_done_callback(self._tasks.discard)

    async def _answer(self, request: dict[str, Any], sender: str) -> None:
        reply = await self._handler(request)
        try:
            self._socket.sendto(orjson.dumps({"id": request.get("id"), **reply}), sender)
        except OSError as exc:
            log.warning("cannot answer the API's %r request: %s", request.get("op"), exc)
