"""The egress check every send passes (docs/architecture.md §2: no open relay, no reflection).

Owns FASTDS_EGRESS_ALLOW as a decision per destination IP, cached, and the counting and
once-a-minute logging of what it blocks. Where a packet goes is partly chosen by its
sender (Via, Route, Request-URI), so this is the one choke point before sendto().
"""

from __future__ import annotations

import ipaddress
import logging

log = logging.getLogger("fastds.egress")

_CACHE_LIMIT = 65536
_LOG_INTERVAL_S = 60.0


class EgressPolicy:
    def __init__(self, allowed_networks):
        self._networks = tuple(allowed_networks)
        self._allows_all = any(network.prefixlen == 0 for network in self._networks) and {
            network.version for network in self._networks if network.prefixlen == 0} == {4, 6}
        self._cache: dict[str, bool] = {}
        self.blocked = 0
        self._last_log = float("-inf")

    def _decide(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:a.b.c.d is checked as a.b.c.d
        return any(address in network for network in self._networks if network.version == address.version)

    def allows(self, ip: str, now: float) -> bool:
        if self._allows_all:
            return True
        decision = self._cache.get(ip)
        if decision is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            decision = self._cache[ip] = self._decide(ip)
        if not decision:
            self.blocked += 1
            if now - self._last_log >= _LOG_INTERVAL_S:
                self._last_log = now
                log.warning("egress to %s blocked by FASTDS_EGRESS_ALLOW (%d blocked so far)", ip, self.blocked)
        return decision
