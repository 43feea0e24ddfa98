"""The per-source flood limit of one worker (OpenSIPS `pike`, Kamailio `pike`), sans-IO.

Owns counting requests per source IP in a fixed window (FASTDS_PIKE_WINDOW_MS), blocking
an IP that sends more than FASTDS_PIKE_REQS in one window for FASTDS_PIKE_BLOCK_S (its
requests are dropped; a flood that goes on is blocked again within one window after
the block ends), releasing early on request (MI `pike_rm`), and the bound on memory: at
most `capacity` IPs are tracked, the least recently seen forgotten first, so a spray of
forged source addresses cannot grow the table (docs/architecture.md §9). Time enters as
`now`; the worker logs what sweep() returns and publishes blocked() to shared memory.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Protocol


class SourceTrust(Protocol):
    def source_trusted(self, ip: str, port: int, transport: str = "udp") -> bool: ...


@dataclasses.dataclass(frozen=True, slots=True)
class BlockedSource:
    ip: str
    since: float    # when the block started (the clock of `now`)
    until: float
    dropped: int    # requests dropped during this block


class _Source:
    __slots__ = ("window_start", "count", "blocked_since", "blocked_until", "dropped")

    def __init__(self, now: float):
        self.window_start = now
        self.count = 0
        self.blocked_since = 0.0
        self.blocked_until = 0.0  # 0: not blocked
        self.dropped = 0


class Pike:
    def __init__(self, limit: int, window_s: float, block_s: float, capacity: int):
        self.limit = limit
        self.window_s = window_s
        self.block_s = block_s
        self.capacity = capacity
        self._sources: OrderedDict[str, _Source] = OrderedDict()
        self._blocked: dict[str, _Source] = {}
        self._newly_blocked: list[BlockedSource] = []
        self._released: list[BlockedSource] = []  # blocks ended by a request, for the next sweep
        self.dropped = 0   # requests dropped, all blocks
        self.blocks = 0    # times an IP was blocked
        self.evicted = 0   # IPs forgotten to keep the table within capacity

    def admit(self, ip: str, now: float) -> bool:
        """One request from `ip` at `now`: False when it must be dropped."""
        source = self._sources.get(ip)
        if source is None:
            source = self._sources[ip] = _Source(now)
            if len(self._sources) > self.capacity:
                forgotten, _ = self._sources.popitem(last=False)
                self._blocked.pop(forgotten, None)
                self.evicted += 1
        else:
            self._sources.move_to_end(ip)
        if source.blocked_until:
            if now < source.blocked_until:
                source.dropped += 1
                self.dropped += 1
                return False
            self._released.append(self._view(ip, source))
            self._release(ip, source, now)
        if now - source.window_start >= self.window_s:
            source.window_start, source.count = now, 0
        source.count += 1
        if source.count <= self.limit:
            return True
        source.blocked_since, source.blocked_until, source.dropped = now, now + self.block_s, 1
        self._blocked[ip] = source
        self._newly_blocked.append(self._view(ip, source))
        self.blocks += 1
        self.dropped += 1
        return False

    def _release(self, ip: str, source: _Source, now: float) -> None:
        source.blocked_until = 0.0
        source.window_start, source.count = now, 0
        self._blocked.pop(ip, None)

    def unblock(self, ip: str, now: float) -> bool:
        """Release `ip` at once (MI pike_rm); False when it is not blocked."""
        source = self._blocked.get(ip)
        if source is None:
            return False
        self._release(ip, source, now)
        return True

    def sweep(self, now: float) -> tuple[list[BlockedSource], list[BlockedSource]]:
        """(IPs blocked since the last sweep, IPs whose block ended by `now`): one log line each."""
        newly, self._newly_blocked = self._newly_blocked, []
        released, self._released = self._released, []
        for ip, source in list(self._blocked.items()):
            if now >= source.blocked_until:
                released.append(self._view(ip, source))
                self._release(ip, source, now)
        return newly, released

    def blocked(self) -> list[BlockedSource]:
        return [self._view(ip, source) for ip, source in self._blocked.items()]

    def __len__(self) -> int:
        return len(self._sources)

    @staticmethod
    def _view(ip: str, source: _Source) -> BlockedSource:
        return BlockedSource(ip, source.blocked_since, source.blocked_until, source.dropped)


class FloodGuard:
    """What a worker asks of every datagram on its public socket and every message read on a
    TCP connection before anything else (before the Call-ID hand-off: a flood is dropped
    where it lands): requests count
    against their source IP, unless trusted (and FASTDS_PIKE_TRUSTED is off); responses
    never count."""

    def __init__(self, pike: Pike, trust: SourceTrust, limit_trusted: bool):
        self.pike = pike
        self.trust = trust
        self.limit_trusted = limit_trusted

    def admit(self, data: bytes, ip: str, port: int, now: float, transport: str = "udp") -> bool:
        if data[:8].upper() == b"SIP/2.0 ":
            return True
        if not self.limit_trusted and self.trust.source_trusted(ip, port, transport):
            return True
        return self.pike.admit(ip, now)
