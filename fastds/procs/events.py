"""Delivering the prober's state-change events: datagrams to MI subscribers, POSTs to webhooks.

Owns the sending side of fastds/dispatch/events.py: one UDP socket for the subscribers'
JSON-RPC notifications (the egress check applies), and per FASTDS_EVENT_WEBHOOKS URL a
bounded queue drained in order by one task (aiohttp) that retries a failed POST with back-off,
so a dead receiver never slows the prober: what does not fit in the queue is dropped, counted
and logged once per outage. Counters: delivered, failed (each failed attempt), dropped.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
from collections.abc import Callable

import aiohttp

from fastds.config import masked_url
from fastds.dispatch.events import notification

log = logging.getLogger("fastds.events")
WEBHOOK_QUEUE = 1000  # events waiting per webhook; the oldest go first when it is full
WEBHOOK_TIMEOUT_S = 5.0
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0


class Webhook:
    def __init__(self, url: str, counters: collections.Counter):
        self.url = url
        self.waiting: collections.deque[bytes] = collections.deque()
        self.ready = asyncio.Event()
        self.counters = counters
        self.task: asyncio.Task | None = None

    def put(self, body: bytes) -> None:
        if len(self.waiting) >= WEBHOOK_QUEUE:
            self.waiting.popleft()
            self.counters["dropped"] += 1
        self.waiting.append(body)
        self.ready.set()

    async def run(self, session: aiohttp.ClientSession) -> None:
        retry, failing = RETRY_FIRST_S, False
        while True:
            await self.ready.wait()
            self.ready.clear()  # before draining: a put() meanwhile is drained now or wakes the next turn
            while self.waiting:
                body = self.waiting[0]
                try:
                    async with session.post(self.url, data=body,
                                            headers={"Content-Type": "application/json"}) as response:
                        if response.status >= 300:
                            raise aiohttp.ClientResponseError(response.request_info, (), status=response.status)
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    self.counters["failed"] += 1
                    if not failing:
                        log.warning("event webhook %s failed (%s); retrying with back-off", masked_url(self.url),
                                    getattr(exc, "status", None) or type(exc).__name__)
                    failing = True
                    await asyncio.sleep(retry)
                    retry = min(2 * retry, RETRY_MAX_S)
                    continue
                if self.waiting and self.waiting[0] is body:  # not already pushed out by a full queue meanwhile
                    self.waiting.popleft()
                self.counters["delivered"] += 1
                if failing:
                    log.info("event webhook %s delivers again", masked_url(self.url))
                retry, failing = RETRY_FIRST_S, False


class EventSender:
    def __init__(self, webhooks: tuple[str, ...], may_send_to: Callable[[str, float], bool]):
        self.counters: collections.Counter[str] = collections.Counter()
        self._webhooks = [Webhook(url, self.counters) for url in webhooks]
        self._may_send_to = may_send_to
        self._socket: dict[int, socket.socket] = {}  # by address family
        self._session: aiohttp.ClientSession | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._webhooks:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S))
            for webhook in self._webhooks:
                webhook.task = loop.create_task(webhook.run(self._session))

    def send(self, params: dict, targets: list[tuple[str, int]], now: float) -> None:
        """One event: a datagram to each subscriber now, queued for each webhook."""
        body = notification(params)
        for host, port in targets:
            if not self._may_send_to(host, now):
                self.counters["failed"] += 1
                continue
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = self._socket.get(family)
            if sock is None:
                sock = self._socket[family] = socket.socket(family, socket.SOCK_DGRAM)
                sock.setblocking(False)
            try:
                sock.sendto(body, (host, port))
                self.counters["delivered"] += 1
            except OSError:
                self.counters["failed"] += 1
        for webhook in self._webhooks:
            webhook.put(body)

    async def close(self) -> None:
        for webhook in self._webhooks:
            if webhook.task is not None:
                webhook.task.cancel()
        if self._session is not None:
            await self._session.close()
        for sock in self._socket.values():
            sock.close()
