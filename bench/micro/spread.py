"""Where calls go when one destination of N goes down: fastds vs Kamailio's rule.

Kamailio 5.8 (src/modules/dispatcher/dispatch.c) sends a down destination's keys to the next active index,
so one neighbour takes double load (kamailio/kamailio#2361). fastds re-hashes over the
survivors as OpenSIPS does, or with flag c uses weighted rendezvous hashing, which also
moves only 1/N of the keys when a destination leaves the set itself (not just goes down).

`python -m bench.micro.spread` prints, for N equal destinations and KEYS random keys:
survivors' max/mean load, the busiest survivor's share of the down one's keys, and the
fraction of all keys that move when a destination goes down / is removed from the set.
"""

from __future__ import annotations

import argparse
import os

import xxhash

from fastds._ext import dshash


def uris(n: int) -> list[bytes]:
    return [b"sip:10.0.0.%d:5060" % i for i in range(n)]


def kamailio_picks(keys: list[bytes], n: int, down: int | None) -> list[int]:
    """Kamailio's hash algorithms: hash % n, then the next active index (linear)."""
    picks = []
    for key in keys:
        index = xxhash.xxh3_64_intdigest(key) % n
        if index == down:
            index = (index + 1) % n
        picks.append(index)
    return picks


def fastds_picks(keys: list[bytes], destinations: list[bytes], flags: int, down: int | None = None) -> list[bytes]:
    """The destination (URI) fastds picks for each key with algorithm 0."""
    table = dshash.SetTable([1] * len(destinations), destinations)
    if down is not None:
        table.set_state(down, dshash.STATE_PROBING)
    return [destinations[dshash.select_key(table, key, 0, flags)[0]] for key in keys]


def survivor_spread(picks: list, survivors: list) -> tuple[float, float]:
    """(max/mean load over the survivors, busiest survivor's share of all picks)."""
    counts = {s: 0 for s in survivors}
    for pick in picks:
        counts[pick] += 1
    mean = len(picks) / len(survivors)
    return max(counts.values()) / mean, max(counts.values()) / len(picks)


def moved(before: list, after: list) -> float:
    return sum(a != b for a, b in zip(before, after)) / len(before)


def report(n: int, key_count: int) -> list[tuple[str, float, float, float, float]]:
    keys = [os.urandom(12) for _ in range(key_count)]
    down = n // 2
    rows = []
    k_before, k_after = kamailio_picks(keys, n, None), kamailio_picks(keys, n, down)
    survivors = [i for i in range(n) if i != down]
    k_spread, _ = survivor_spread(k_after, survivors)
    k_neighbour = sum(1 for b, a in zip(k_before, k_after) if b == down and a == (down + 1) % n) / max(
        1, sum(1 for b in k_before if b == down))
    all_uris = uris(n)
    smaller = all_uris[:down] + all_uris[down + 1:]
    k_removed = [smaller[i] for i in kamailio_picks(keys, n - 1, None)]
    rows.append(("Kamailio next index", k_spread, k_neighbour, moved(k_before, k_after),
                 moved([all_uris[i] for i in k_before], k_removed)))
    for name, flags in (("fastds re-hash (OpenSIPS)", 0), ("fastds flag c (rendezvous)", dshash.FLAG_CONSISTENT)):
        before = fastds_picks(keys, all_uris, flags)
        after = fastds_picks(keys, all_uris, flags, down)
        removed = fastds_picks(keys, smaller, flags)
        spread, _ = survivor_spread(after, [u for u in all_uris if u != all_uris[down]])
        moved_keys = [a for b, a in zip(before, after) if b == all_uris[down]]
        busiest = max(moved_keys.count(u) for u in set(moved_keys)) / max(1, len(moved_keys))
        rows.append((name, spread, busiest, moved(before, after), moved(before, removed)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--sizes", default="3,5,10,20")
    args = parser.parse_args()
    print(f"{'N':>3} {'rule':28} {'max/mean':>9} {'top share of moved':>19} {'moved (down)':>13} {'moved (removed)':>16}")
    for n in (int(size) for size in args.sizes.split(",")):
        for name, spread, share, down_moved, removed_moved in report(n, args.keys):
            print(f"{n:3d} {name:28} {spread:9.3f} {share:19.3f} {down_moved:13.3f} {removed_moved:16.3f}")


if __name__ == "__main__":
    main()
