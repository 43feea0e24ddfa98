"""Loading what a worker routes with: destination sets and dialplan rules from the store.

Owns turning store rows into a Selector and a Router, resolving destination host names
once here (workers never do DNS; a name that does not resolve skips its row, as OpenSIPS
does), and reporting every skipped row or rule.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket

from fastds.config import Settings
from fastds.dispatch.routes import Router
from fastds.dispatch.rules import SelectionRule
from fastds.dispatch.selector import Selector
from fastds.dispatch.sets import DestinationSet, build_sets
from fastds.store import Store


def resolve(sets: dict[int, DestinationSet]) -> tuple[dict[int, DestinationSet], list[str]]:
    problems = []
    resolved = {}
    for set_id, destination_set in sets.items():
        kept = []
        for destination in destination_set.destinations:
            try:
                ipaddress.ip_address(destination.host)
                kept.append(destination)
                continue
            except ValueError:
                pass
            try:
                infos = socket.getaddrinfo(destination.host, destination.port, type=socket.SOCK_DGRAM)
            except OSError as exc:
                problems.append(f"dispatcher row id={destination.id}: could not resolve {destination.host}: "
                                f"{exc.strerror or exc}; row skipped")
                continue
            kept.append(dataclasses.replace(destination, host=infos[0][4][0]))
        resolved[set_id] = DestinationSet(set_id, tuple(kept))
    return resolved, problems


async def load_routing(store: Store, settings: Settings) -> tuple[Selector, Router, list[str]]:
    await store.check_schema()
    sets, problems = build_sets(await store.load_destinations())
    sets, unresolved = resolve(sets)
    default = SelectionRule.parse(settings.default_set, settings.default_alg, settings.default_flags)
    router = Router(await store.load_dialplan(settings.dialplan_id), default)
    return Selector(sets, settings.hash_key), router, problems + unresolved + router.problems
