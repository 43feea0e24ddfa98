"""A selection rule: which set, which algorithm, which flags, how many results.

Owns the OpenSIPS ds_select_dst arguments (modules/dispatcher/dispatcher.c) as fastds validates them:
algorithms 0-10, flags f u d a (case-insensitive, spaces ignored) plus fastds's c,
max_results default 1000. An unknown algorithm or flag is an error here, at load
time, never a silent fallback at call time.
"""

from __future__ import annotations

import dataclasses

FLAG_BITS = {"f": 1, "u": 2, "d": 4, "a": 8, "c": 16}  # c: ours, weighted rendezvous hashing
ALGORITHMS = {
    0: "hash over Call-ID", 1: "hash over From URI", 2: "hash over To URI", 3: "hash over Request-URI",
    4: "weighted round-robin", 5: "hash over auth username, else round-robin", 6: "weighted random",
    7: "hash over the key template", 8: "first (highest priority)", 9: "lowest in-flight load",
    10: "lowest probe latency",
}
DEFAULT_MAX_RESULTS = 1000


def parse_flags(letters: str) -> int:
    """"F d" -> bits; ValueError naming the first unknown letter."""
    bits = 0
    for letter in letters.replace(" ", "").lower():
        if letter not in FLAG_BITS:
            raise ValueError(f"unknown flag {letter!r} (expected letters among f, u, d, a, c)")
        bits |= FLAG_BITS[letter]
    return bits


@dataclasses.dataclass(frozen=True)
class SelectionRule:
    set_id: int
    algorithm: int
    flags: int = 0
    max_results: int = DEFAULT_MAX_RESULTS

    def __post_init__(self):
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algorithm!r}: expected 0 to 10")
        if self.set_id < 0:
            raise ValueError(f"set id {self.set_id} is negative")
        if self.max_results < 1:
            raise ValueError(f"max_results {self.max_results} must be at least 1")
        if not 0 <= self.flags < 32:
            raise ValueError(f"flags {self.flags} out of range")

    @classmethod
    def parse(cls, set_id: int, algorithm: int, flags: str = "", max_results: int = DEFAULT_MAX_RESULTS):
        return cls(set_id, algorithm, parse_flags(flags), max_results)
