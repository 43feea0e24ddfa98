"""Destinations given by DNS name: what each name resolved to, when to ask again, and the
destinations a row becomes (sans-IO: answers and the clock come in as arguments).

Owns the RFC 3263 choice of question (a name with no port in its URI is looked up by SRV,
_sip._udp / _sip._tcp / _sips._tcp, falling back to its A/AAAA records and the default
port; a name with a port by A/AAAA), the answers' lifetime (the records' TTL held between
a floor and a ceiling), a name that stops resolving keeping its last targets (marked
stale) instead of vanishing, and expanding a row into one destination per target. The
row's id stays on its first target; the others get target ids, -(row id * 256 + n), n from
a hash of the address (target_numbers), so states and counters follow an address across
re-resolutions and every node of a cluster numbers the same answer alike. SRV priority:
the targets of the best priority share the calls by their weights (times the row's
weight); worse ones get weight 0, so they take calls only when no better one is active,
and every failover list holds them. The resolver itself is fastds/procs/resolver.py's; workers never do DNS.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable

import xxhash

from fastds.dispatch.sets import Destination, DestinationSet, SkippedRow
from fastds.sip import parse_uri

TARGET_IDS = 256  # targets a row may expand into (its own id and 255 target ids)
SRV_PREFIX = {"udp": "_sip._udp.", "tcp": "_sip._tcp.", "tls": "_sips._tcp."}
DEFAULT_PORT = {"udp": 5060, "tcp": 5060, "tls": 5061}


@dataclasses.dataclass(frozen=True)
class Target:
    priority: int  # SRV priority, lower first; 0 for an A/AAAA answer
    weight: int    # SRV weight; 1 for an A/AAAA answer
    host: str      # an IP address
    port: int


@dataclasses.dataclass(frozen=True)
class Question:
    name: str
    port: int | None  # the URI's explicit port; None: look for SRV records first
    transport: str    # udp, tcp, tls

    @property
    def srv_name(self) -> str | None:
        return None if self.port is not None else SRV_PREFIX[self.transport] + self.name

    def __str__(self) -> str:
        return self.name if self.port is None else f"{self.name}:{self.port}"


@dataclasses.dataclass
class Answer:
    targets: tuple[Target, ...]  # the last good answer's (kept while the name fails)
    expires: float               # when to ask again
    failing_since: float | None = None
    error: str = ""              # why the last lookup failed


def is_name(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return False
    except ValueError:
        return True


def question_of(destination: Destination, explicit_port: bool) -> Question:
    return Question(destination.host.lower().rstrip("."), destination.port if explicit_port else None,
                    destination.transport)


def questions_of(sets: dict[int, DestinationSet]) -> dict[int, Question]:
    """Row id -> its question, for each destination whose URI names a host."""
    return {d.id: question_of(d, explicit_port=parse_uri(d.uri.encode()).port != 0)
            for found in sets.values() for d in found.destinations if is_name(d.host)}


def targets_of(row_id: int, ids: Iterable[int]) -> list[int]:
    """The target ids among `ids` that row `row_id` expanded into (its own id not included)."""
    return [dest_id for dest_id in ids if dest_id < 0 and -dest_id // TARGET_IDS == row_id]


class DnsTable:
    def __init__(self, ttl_min_s: float, ttl_max_s: float, retry_s: float = 5.0):
        """TTLs are held within [ttl_min_s, ttl_max_s]; a failed lookup is tried again after
        retry_s (at most ttl_max_s)."""
        self.ttl_min_s, self.ttl_max_s = ttl_min_s, ttl_max_s
        self.retry_s = min(retry_s, ttl_max_s)
        self.answers: dict[Question, Answer] = {}

    def due(self, questions: Iterable[Question], now: float) -> list[Question]:
        """The questions never answered, or whose answer expired."""
        return [q for q in questions if q not in self.answers or self.answers[q].expires <= now]

    def answered(self, question: Question, targets: Iterable[Target], ttl_s: float, now: float) -> bool:
        """A lookup gave `targets` (none: the name has no records); True when that changes
        which destinations the name makes."""
        found = tuple(sorted(set(targets), key=lambda t: (t.priority, -t.weight, t.host, t.port)))
        if not found:
            return self.failed(question, "no address records", now)
        known = self.answers.get(question)
        expires = now + min(max(ttl_s, self.ttl_min_s), self.ttl_max_s)
        self.answers[question] = Answer(found, expires)
        return known is None or known.targets != found or known.failing_since is not None

    def failed(self, question: Question, error: str, now: float) -> bool:
        """A lookup failed: the last targets stay (stale); True when that is news."""
        known = self.answers.get(question)
        if known is None:
            self.answers[question] = Answer((), now + self.retry_s, now, error)
            return True
        news = known.failing_since is None or known.error != error
        self.answers[question] = Answer(known.targets, now + self.retry_s, known.failing_since or now, error)
        return news

    def forget_except(self, questions: Iterable[Question]) -> None:
        """Drop the answers no loaded row asks for any more."""
        wanted = set(questions)
        for question in [q for q in self.answers if q not in wanted]:
            del self.answers[question]

    def expand(self, sets: dict[int, DestinationSet], questions: dict[int, Question]
               ) -> tuple[dict[int, DestinationSet], list[SkippedRow], dict[int, dict]]:
        """Each row named by DNS (`questions`: by row id) becomes its targets; a name never
        resolved skips its row. Returns the sets, the rows skipped and, per destination id
        made from a name, what the API shows of it."""
        skipped: list[SkippedRow] = []
        shown: dict[int, dict] = {}
        expanded = {}
        for set_id, destination_set in sets.items():
            kept: list[Destination] = []
            for destination in destination_set.destinations:
                question = questions.get(destination.id)
                if question is None:
                    kept.append(destination)
                    continue
                answer = self.answers.get(question)
                if answer is None or not answer.targets:
                    why = answer.error if answer is not None else "not looked up yet"
                    skipped.append(SkippedRow(destination.id, f"could not resolve {question}: {why}"))
                    continue
                for dest_id, target, made in destinations_of(destination, answer.targets):
                    kept.append(made)
                    shown[dest_id] = {"name": str(question), "srv": question.port is None,
                                      "priority": target.priority, "weight": target.weight,
                                      "stale": answer.failing_since is not None, "error": answer.error or None}
            expanded[set_id] = DestinationSet(set_id, tuple(kept))
        return expanded, skipped, shown



def destinations_of(destination: Destination, targets: tuple[Target, ...]):
    """(id, target, destination) for each target a row named by DNS resolved to."""
    targets = targets[:TARGET_IDS]
    best = min(t.priority for t in targets)
    for target, n in zip(targets, target_numbers(targets)):
        dest_id = destination.id if n == 0 else -(destination.id * TARGET_IDS + n)
        weight = destination.weight * max(1, target.weight) if target.priority == best else 0
        yield dest_id, target, dataclasses.replace(destination, id=dest_id, host=target.host, port=target.port,
                                                   weight=weight)


def target_numbers(targets: tuple[Target, ...]) -> list[int]:
    """n of each target's id: 0 (the row's own id) for the first, else 1..TARGET_IDS-1 from a hash
    of its address, the next free one on a collision (addresses taken in sorted order). Every node
    of a cluster given the same answer numbers it alike, and an address keeps its number while it
    stays in the answer (unless it becomes the first, or a collision moves it)."""
    numbers = {(targets[0].host, targets[0].port): 0}
    taken = {0}
    for host, port in sorted({(t.host, t.port) for t in targets[1:]} - set(numbers)):
        n = 1 + xxhash.xxh32_intdigest(f"{host}:{port}".encode()) % (TARGET_IDS - 1)
        while n in taken:
            n = n % (TARGET_IDS - 1) + 1
        taken.add(n)
        numbers[(host, port)] = n
    return [numbers[(t.host, t.port)] for t in targets]
