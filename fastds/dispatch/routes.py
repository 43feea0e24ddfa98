"""Routes: the dialed number picks the selection rule (OpenSIPS dialplan, version 5).

Owns dp_translate as fastds uses it (OpenSIPS modules/dialplan): the rules of one dpid, string
(match_op 0) and regex (match_op 1) rules tried in ascending `pr` then `id`, disabled
ones skipped, optional case-insensitive matching; a matched rule may rewrite the number
(subst_exp / repl_exp) and its `attrs` name the route: `set=1;alg=2;flags=f;max=10`.
No rule matches: the default route from the environment. Bad rules are reported and
skipped at load, never at call time. Regexes are Python `re` (PCRE-like, `\\1` refs).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from fastds.dispatch.rules import SelectionRule, parse_flags


@dataclasses.dataclass(frozen=True)
class Route:
    rule: SelectionRule
    number: bytes | None  # the translated number, None when unchanged


@dataclasses.dataclass(frozen=True)
class DialplanRule:
    id: int
    priority: int
    pattern: re.Pattern | None  # None: equality match against `exact`
    exact: bytes
    case_insensitive: bool
    subst: re.Pattern | None
    replacement: bytes | None
    selection: SelectionRule

    def translate(self, number: bytes) -> bytes | None | bool:
        """False when the rule does not match; else the new number (None = unchanged)."""
        if self.pattern is None:
            matched = number.lower() == self.exact.lower() if self.case_insensitive else number == self.exact
            if not matched:
                return False
        elif not self.pattern.search(number):
            return False
        if self.replacement is None:
            return None
        if self.subst is None:
            return self.replacement
        return self.subst.sub(self.replacement, number, count=1)


def parse_route_attrs(attrs: str) -> SelectionRule:
    """"set=1;alg=2;flags=f[;max=10]" -> SelectionRule; ValueError naming the field."""
    fields: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in attrs.split(";"))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"attrs item {item!r} is not key=value")
        fields[key.strip().lower()] = value.strip()
    unknown = set(fields) - {"set", "alg", "flags", "max"}
    if unknown:
        raise ValueError(f"unknown attrs key {sorted(unknown)[0]!r} (expected set, alg, flags, max)")
    if "set" not in fields:
        raise ValueError("attrs has no set=")
    try:
        numbers = {key: int(fields[key]) for key in ("set", "alg", "max") if key in fields}
    except ValueError:
        raise ValueError(f"attrs {attrs!r}: set, alg and max must be integers") from None
    return SelectionRule(numbers["set"], numbers.get("alg", 0), parse_flags(fields.get("flags", "")),
                         numbers.get("max", 1000))


def _rule_from_row(row: Mapping[str, Any]) -> DialplanRule:
    if row.get("timerec"):
        raise ValueError("timerec (time recurrence) is not supported by fastds")
    if int(row.get("match_op", 0)) not in (0, 1):
        raise ValueError(f"match_op {row.get('match_op')!r} must be 0 (equal) or 1 (regex)")
    case_insensitive = int(row.get("match_flags") or 0) == 1
    expression = str(row["match_exp"]).encode()
    flags = re.IGNORECASE if case_insensitive else 0
    try:
        pattern = re.compile(expression, flags) if int(row["match_op"]) == 1 else None
        subst = re.compile(str(row["subst_exp"]).encode()) if row.get("subst_exp") else None
    except re.error as exc:
        raise ValueError(f"bad regular expression: {exc}") from None
    replacement = None if row.get("repl_exp") is None else str(row["repl_exp"]).encode()
    if subst is not None and replacement is not None:
        try:
            subst.sub(replacement, b"")  # reject references to groups the regex lacks
        except (re.error, IndexError) as exc:
            raise ValueError(f"repl_exp {row['repl_exp']!r} does not fit subst_exp: {exc}") from None
    return DialplanRule(int(row["id"]), int(row.get("pr") or 0), pattern, expression, case_insensitive, subst,
                        replacement, parse_route_attrs(str(row.get("attrs") or "")))


class Router:
    """Dialplan rules of one dpid, and the default route."""

    def __init__(self, rows: Iterable[Mapping[str, Any]], default: SelectionRule):
        self.default = default
        self._default_route = Route(default, None)  # frozen: one for every call no rule translates
        self.problems: list[str] = []
        rules = []
        for row in rows:
            if int(row.get("disabled") or 0):
                continue
            try:
                rules.append(_rule_from_row(row))
            except (ValueError, KeyError, TypeError) as exc:
                self.problems.append(f"dialplan rule id={row.get('id', '?')}: {exc}; rule skipped")
        self.rules = sorted(rules, key=lambda rule: (rule.priority, rule.id))

    def route(self, number: bytes | None) -> Route:
        if number is not None:
            for rule in self.rules:
                translated = rule.translate(number)
                if translated is not False:
                    return Route(rule.selection, translated)
        return self._default_route
