"""A worker's routing over the shared-memory table, rebuilt when the generation moves.

Owns the generation check a worker makes before each selection, route and trust check
(one aligned 8-byte read, a C load once compiled: live.pxd), and rebuilding the Selector,
the Router and the trusted sources from the new area after a reload; states, loads and
RTTs are read in place, so a state change by the prober is seen by the very next selection.
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


class _Live:
    """What a worker builds from one generation of the shared table, rebuilt when it moves."""

    def __init__(self, view: ShmView):
        self._view = view
        self._generation_word = view.generation_word  # its one element: the generation, read in place
        self.generation = -1
        self._built = None
        self.current()

    def current(self):
        generation = self._generation_word[0]
        if generation != self.generation:
            self._built = self._build(generation)
            self.generation = generation
        return self._built

    def _build(self, generation: int):
        raise NotImplementedError


class LiveSelector(_Live):
    def __init__(self, view: ShmView, key_template: str | None):
        self._key_template = key_template
        super().__init__(view)

    def _build(self, generation: int) -> Selector:
        sets, first_slot = self._view.sets(generation)
        return Selector(sets, self._key_template, live=lambda set_id: self._view.live(generation, first_slot[set_id]))

    def _selector(self) -> Selector:
        """The current generation's selector, typed (live.pxd): the calls below are C calls."""
        return self.current()

    def select(self, message: SipMessage, rule: SelectionRule, source_ip: bytes = b"",
               previous: Sequence[Destination] = ()) -> list[Destination]:
        return self._selector().select(message, rule, source_ip, previous)

    def count_pick(self, destination: Destination) -> None:
        self._selector().count_pick(destination)

    def count_failover(self, destination: Destination) -> None:
        self._selector().count_failover(destination)

    def count_reply(self, destination: Destination, code: int) -> None:
        self._selector().count_reply(destination, code)

    def count_timeout(self, destination: Destination) -> None:
        self._selector().count_timeout(destination)

    def hold_load(self, destination: Destination) -> Release | None:
        return self._selector().hold_load(destination)


class LiveRouter(_Live):
    def __init__(self, view: ShmView, default: SelectionRule):
        self._default = default
        self.problems: list[str] = []
        super().__init__(view)

    def _build(self, generation: int) -> Router:
        router = Router(self._view.dialplan(generation), self._default)
        self.problems = router.problems
        return router

    def route(self, number: bytes | None) -> Route:
        return self.current().route(number)


class LiveTrust(_Live):
    def __init__(self, view: ShmView, group: int, networks: Sequence[Network]):
        self._group = group
        self._networks = tuple(networks)
        super().__init__(view)

    def _build(self, generation: int) -> TrustedSources:
        sets, _ = self._view.sets(generation)
        rules, _ = address_rules(self._view.addresses(generation))  # the prober logged the rows skipped
        return TrustedSources(rules, self._group, self._networks,
                              [d.host for found in sets.values() for d in found.destinations])

    def accepts(self, ip: str, port: int, request_uri: bytes, transport: str = "udp") -> bool:
        return self.current().accepts(ip, port, request_uri, transport)

    def source_trusted(self, ip: str, port: int, transport: str = "udp") -> bool:
        return self.current().source_trusted(ip, port, transport)
