"""Hypothesis and large-sample properties of destination selection (issue: selection).

Never an inactive destination; picks proportional to weight; with flag c, taking one of
N destinations out moves only its keys, spread evenly, and bringing it back moves
exactly those keys back; against Kamailio's next-index rule the spread is even.
"""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.micro.spread import fastds_picks, kamailio_picks, survivor_spread, uris
from fastds._ext import dshash

F, U, D, C = (dshash.FLAG_FAILOVER, dshash.FLAG_USER_ONLY, dshash.FLAG_DEFAULT, dshash.FLAG_CONSISTENT)


@settings(max_examples=400, deadline=None)
@given(weights=st.lists(st.integers(0, 20), min_size=1, max_size=30), data=st.data(),
       alg=st.integers(0, 10), flags=st.sets(st.sampled_from([F, U, D, C])), key=st.binary(max_size=40),
       max_results=st.integers(1, 40))
def test_never_an_inactive_destination(weights, data, alg, flags, key, max_results):
    table = dshash.SetTable(weights, [b"sip:10.0.0.%d" % i for i in range(len(weights))])
    states = data.draw(st.lists(st.sampled_from([0, 1, 2]), min_size=len(weights), max_size=len(weights)))
    for i, state in enumerate(states):
        table.set_state(i, state)
        table.set_load(i, data.draw(st.integers(0, 100)))
        table.set_rtt(i, data.draw(st.floats(-1, 500)))
    bits = sum(flags)
    order = dshash.select_key(table, key if alg in (0, 1, 2, 3, 5, 7) else None, alg, bits, max_results)
    assert all(states[i] == 0 for i in order)
    assert len(order) == len(set(order))
    has_default = bits & D and states[-1] == 0
    assert len(order) <= max_results + (1 if has_default else 0)
    selectable = [i for i, state in enumerate(states[:-1] if bits & D else states) if state == 0]
    assert bool(order) == bool(selectable or has_default)
    if bits & D and order and order[0] == len(weights) - 1:
        assert not selectable  # the default only when nothing else is up
    if not bits & F:
        assert len(order) <= 1


def proportions(flags, alg=0, keys=200_000):
    table = dshash.SetTable([1, 2, 7], [b"sip:a", b"sip:b", b"sip:c"])
    counts = [0, 0, 0]
    for i in range(keys):
        counts[dshash.select_key(table, b"call-%d@example.com" % i, alg, flags)[0]] += 1
    return [count / keys for count in counts]


def test_picks_are_proportional_to_weight_within_2_percent():
    for flags, alg in ((0, 0), (C, 0), (0, 6)):
        shares = proportions(flags, alg)
        for share, expected in zip(shares, (0.1, 0.2, 0.7)):
            assert abs(share - expected) <= 0.02 * expected + 0.002, (flags, alg, shares)


_RNG = random.Random(20261126)
KEYS = [b"%d-%s" % (i, _RNG.randbytes(6).hex().encode()) for i in range(200_000)]


def check_rendezvous_leave_and_return(n, leaving, topology):
    """topology: the destination is removed from the set (else it goes down)."""
    destinations = uris(n)
    before = fastds_picks(KEYS, destinations, C)
    if topology:
        during = fastds_picks(KEYS, destinations[:leaving] + destinations[leaving + 1:], C)
    else:
        during = fastds_picks(KEYS, destinations, C, down=leaving)
    moved = [i for i, (b, d) in enumerate(zip(before, during)) if b != d]
    assert all(before[i] == destinations[leaving] for i in moved), "only the leaving destination's keys move"
    assert len(moved) / len(KEYS) <= 1 / n + 0.01
    survivors = [u for u in destinations if u != destinations[leaving]]
    if survivors:
        spread, _ = survivor_spread(during, survivors)
        assert spread <= 1.1
        # the moved keys themselves spread evenly wherever the sample gives each survivor enough of them
        if len(moved) / len(survivors) >= 1000:
            moved_spread, _ = survivor_spread([during[i] for i in moved], survivors)
            assert moved_spread <= 1.1
    after = fastds_picks(KEYS, destinations, C)
    assert after == before, "coming back moves exactly those keys back"


@settings(max_examples=6, deadline=None)
@given(n=st.integers(2, 50), data=st.data(), topology=st.booleans())
def test_rendezvous_moves_only_the_leaving_destinations_keys(n, data, topology):
    check_rendezvous_leave_and_return(n, data.draw(st.integers(0, n - 1)), topology)


def test_rendezvous_at_the_bounds():
    check_rendezvous_leave_and_return(2, 0, False)
    check_rendezvous_leave_and_return(50, 17, True)


def test_load_spread_compared_with_kamailio_next_index():
    """The table of the closing note, asserted: N=5, one destination down."""
    keys = KEYS[:100_000]
    n, down = 5, 2
    kamailio = kamailio_picks(keys, n, down)
    kamailio_spread, _ = survivor_spread(kamailio, [i for i in range(n) if i != down])
    assert kamailio_spread >= 1.5  # the neighbour takes all of the down one's calls
    destinations = uris(n)
    for flags in (0, C):
        picks = fastds_picks(keys, destinations, flags, down=down)
        spread, _ = survivor_spread(picks, [u for u in destinations if u != destinations[down]])
        assert spread <= 1.05


def test_rehash_keeps_a_key_on_the_same_survivor_while_the_active_set_is_unchanged():
    table = dshash.SetTable([3, 1, 4, 1, 5], uris(5))
    table.set_state(2, 2)
    rng = random.Random(3)
    for _ in range(200):
        key = rng.randbytes(10)
        assert len({dshash.select_key(table, key, 0)[0] for _ in range(3)}) == 1
