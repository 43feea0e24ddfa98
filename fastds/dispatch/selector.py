"""The selector: one worker's picking state over one generation of destination sets.

Owns turning a SelectionRule and a scanned request into the ordered destinations to try
(selected first, then the failover list), and counting per destination what the proxy
reports (picks, failovers, requests in flight). The arithmetic is in ext/dshash.pyx, one
call per selection; this module maps sets to SetTables and applies append mode (flag a);
nothing outside it touches a SetTable. The live state, load and RTT arrays
are the tables' own (seeded from each destination's state) or, with `live`, slices of
the shared-memory table that the prober writes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

from fastds._ext import dshash
from fastds._ext.sipscan import SipMessage
from fastds.dispatch.keys import compile_key_template
from fastds.dispatch.rules import FLAG_BITS, SelectionRule
from fastds.dispatch.sets import Destination, DestinationSet

_APPEND = FLAG_BITS["a"]
Release = Callable[[], object]  # gives back what hold_load() took


class Selector:
    def __init__(self, sets: Mapping[int, DestinationSet], key_template: str | None = None,
                 live: Callable[[int], tuple] | None = None):
        """live: set id -> the `live` argument of dshash.SetTable (shared memory)."""
        self.sets = dict(sets)
        self._tables: dict[int, dshash.SetTable] = {}
        self._where: dict[tuple[int, int], tuple[dshash.SetTable, int]] = {}
        for set_id, destination_set in self.sets.items():
            destinations = destination_set.destinations
            table = dshash.SetTable([d.weight for d in destinations], [d.uri.encode() for d in destinations],
                                    live(set_id) if live else None)
            for index, destination in enumerate(destinations):
                if live is None:
                    table.set_state(index, destination.state)
                self._where[(set_id, destination.id)] = (table, index)
            self._tables[set_id] = table
        self._template = dshash.KeyTemplate(compile_key_template(key_template)) if key_template else None

    def table(self, set_id: int) -> dshash.SetTable:
        """The live table of a set: set_state / set_load / set_rtt by destination index."""
        return self._tables[set_id]

    def count_pick(self, destination: Destination) -> None:
        """`destination` was chosen first for a request (OpenSIPS first_hit_counter)."""
        where = self._where.get((destination.set_id, destination.id))
        if where is not None:
            table = where[0]  # a SetTable (selector.pxd): the add is a C call
            table.add_pick(where[1])

    def count_failover(self, destination: Destination) -> None:
        """A request failed over away from `destination`."""
        where = self._where.get((destination.set_id, destination.id))
        if where is not None:
            table = where[0]
            table.add_failover(where[1])

    def count_reply(self, destination: Destination, code: int) -> None:
        """`destination` sent a final response to a request fastds forwarded to it."""
        where = self._where.get((destination.set_id, destination.id))
        if where is not None:
            table = where[0]
            table.add_reply(where[1], code)

    def count_timeout(self, destination: Destination) -> None:
        """A request forwarded to `destination` got no final response in time."""
        where = self._where.get((destination.set_id, destination.id))
        if where is not None:
            table = where[0]
            table.add_timeout(where[1])

    def hold_load(self, destination: Destination) -> Release | None:
        """One more request in flight to `destination` (algorithm 9 reads the count) until
        the returned release() is called, once -- in this generation's table, even after a
        reload."""
        where = self._where.get((destination.set_id, destination.id))
        if where is None:
            return None
        table, index = where
        table.add_load(index, 1)
        return functools.partial(where[0].add_load, index, -1)  # the bound method, not the C one

    def select(self, message: SipMessage, rule: SelectionRule, source_ip: bytes = b"",
               previous: Sequence[Destination] = ()) -> list[Destination]:
        """Destinations to try in order; empty when the set has none active. With flag a
        the new selection goes in front of `previous` (a failover list from another set)."""
        if rule.algorithm == 7 and self._template is None:
            raise ValueError("algorithm 7 needs FASTDS_HASH_KEY")
        table = self._tables.get(rule.set_id)
        chosen: list[Destination] = []
        if table is not None:
            destinations = self.sets[rule.set_id].destinations
            indexes = dshash.select(table, message, rule.algorithm, rule.flags & ~_APPEND, rule.max_results,
                                    self._template, source_ip)
            chosen = [destinations[index] for index in indexes]
        return chosen + list(previous) if rule.flags & _APPEND else chosen
