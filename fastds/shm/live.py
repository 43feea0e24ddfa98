"""A worker's routing over the shared-memory table, rebuilt when the generation moves.

Owns the generation check a worker makes before each selection, route and trust check
(one aligned 8-byte read), and rebuilding the Selector, the Router and the trusted
sources from the new area after a reload; states, loads and RTTs are read in place, so
a state change by the prober is seen by the very next selection.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastds._ext.sipscan import SipMessage
from fastds.dispatch.routes import Route, Router
from fastds.dispatch.rules import SelectionRule
from fastds.dispatch.selector import Release, Selector
from fastds.dispatch.sets import Destination
from fastds.dispatch.trust import Network, TrustedSources, address_rules
from fastds.shm.layout import ShmView


class LiveSelector:
    def __init__(self, view: ShmView, key_template: str | None):
        self._view = view
        self._key_template = key_template
        self.generation = -1
        self._selector: Selector | None = None
        self.current()

    def current(self) -> Selector:
        generation = self._view.generation
        if generation != self.generation:
            sets, first_slot = self._view.sets(generation)
            self._selector = Selector(sets, self._key_template,
                                      live=lambda set_id: self._view.live(generation, first_slot[set_id]))
            self.generation = generation
        return self._selector

    def select(self, message: SipMessage, rule: SelectionRule, source_ip: bytes = b"",
               previous: Sequence[Destination] = ()) -> list[Destination]:
        return self.current().select(message, rule, source_ip, previous)

    def count_pick(self, destination: Destination) -> None:
        self.current().count_pick(destination)

    def count_failover(self, destination: Destination) -> None:
        self.current().count_failover(destination)

    def hold_load(self, destination: Destination) -> Release | None:
        return self.current().hold_load(destination)


class LiveRouter:
    def __init__(self, view: ShmView, default: SelectionRule):
        self._view = view
        self._default = default
        self.generation = -1
        self._router: Router | None = None
        self.problems: list[str] = []
        self.current()

    def current(self) -> Router:
        generation = self._view.generation
        if generation != self.generation:
            self._router = Router(self._view.dialplan(generation), self._default)
            self.problems = self._router.problems
            self.generation = generation
        return self._router

    def route(self, number: bytes | None) -> Route:
        return self.current().route(number)


class LiveTrust:
    def __init__(self, view: ShmView, group: int, networks: Sequence[Network]):
        self._view = view
        self._group = group
        self._networks = tuple(networks)
        self.generation = -1
        self._trust: TrustedSources | None = None
        self.current()

    def current(self) -> TrustedSources:
        generation = self._view.generation
        if generation != self.generation:
            sets, _ = self._view.sets(generation)
            rules, _ = address_rules(self._view.addresses(generation))  # the prober logged the rows skipped
            self._trust = TrustedSources(rules, self._group, self._networks,
                                         [d.host for found in sets.values() for d in found.destinations])
            self.generation = generation
        return self._trust

    def accepts(self, ip: str, port: int, request_uri: bytes, transport: str = "udp") -> bool:
        return self.current().accepts(ip, port, request_uri, transport)

    def source_trusted(self, ip: str, port: int, transport: str = "udp") -> bool:
        return self.current().source_trusted(ip, port, transport)
