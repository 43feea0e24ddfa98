"""Destination selection against hand-computed expectations (OpenSIPS modules/dispatcher/dispatch.c, ds_select_dst)."""

import pytest
import xxhash

from bench.micro.messages import INVITE
from fastds._ext import dshash
from fastds.dispatch import keys
from fastds.dispatch.rules import SelectionRule, parse_flags
from fastds.dispatch.selector import Selector
from fastds.dispatch.sets import build_sets
from fastds.sip import scan

F, U, D, C = (dshash.FLAG_FAILOVER, dshash.FLAG_USER_ONLY, dshash.FLAG_DEFAULT, dshash.FLAG_CONSISTENT)


def table(weights, states=None):
    t = dshash.SetTable(weights, [b"sip:10.0.0.%d" % i for i in range(len(weights))])
    for i, state in enumerate(states or []):
        t.set_state(i, state)
    return t


def h(key: bytes) -> int:
    return xxhash.xxh3_64_intdigest(key)


def cumulative_pick(r, weights, eligible):
    running = 0
    for i in eligible:
        running += weights[i]
        if r < running:
            return i


def message(**replace):
    data = INVITE
    for old, new in replace.items():
        data = data.replace(old.encode(), new.encode())
    return scan(data)

# -- keys ----------------------------------------------------------------------------


def test_keys_of_the_hash_algorithms():
    m = scan(INVITE)
    assert dshash.key_of(m, 0) == b"1-3571@127.0.0.1"
    assert dshash.key_of(m, 1) == b"+12125550100@127.0.0.1:5070"
    assert dshash.key_of(m, 2) == b"+14155550123@127.0.0.1"  # default port 5060 dropped
    assert dshash.key_of(m, 3) == b"+14155550123@127.0.0.1"
    assert dshash.key_of(m, 3, U) == b"+14155550123"
    assert dshash.key_of(m, 4) is None and dshash.key_of(m, 8) is None
    assert dshash.key_of(m, 5) is None


def test_uri_keys_lower_case_the_host_and_drop_only_the_default_port():
    m = scan(INVITE.replace(b"To: <sip:+14155550123@127.0.0.1:5060>", b"To: <sips:Bob@Example.COM:5061>"))
    assert dshash.key_of(m, 2) == b"Bob@example.com"
    m = scan(INVITE.replace(b"To: <sip:+14155550123@127.0.0.1:5060>", b"To: <sips:bob@example.com:5060>"))
    assert dshash.key_of(m, 2) == b"bob@example.com:5060"
    m = scan(INVITE.replace(b"To: <sip:+14155550123@127.0.0.1:5060>", b"To: <tel:+1-555-0100>"))
    assert dshash.key_of(m, 2) == b"+1-555-0100"
    m = scan(INVITE.replace(b"To: <sip:+14155550123@127.0.0.1:5060>", b"To: <sip:gateway.example.com>"))
    assert dshash.key_of(m, 2) == dshash.key_of(m, 2, U) == b"@gateway.example.com"  # no user: whole key


def test_auth_username_key_prefers_proxy_authorization():
    extra = b'Authorization: Digest username="alice", realm="r"\r\nProxy-Authorization: Digest username="bob"\r\n'
    m = scan(INVITE.replace(b"CSeq: 1 INVITE\r\n", b"CSeq: 1 INVITE\r\n" + extra))
    assert dshash.key_of(m, 5) == b"bob"


def test_key_template():
    template = dshash.KeyTemplate(keys.compile_key_template("$fU@$ci/$si/$rd"))
    assert dshash.key_of(scan(INVITE), 7, 0, template, b"10.1.2.3") == b"+12125550100@1-3571@127.0.0.1/10.1.2.3/127.0.0.1"
    with pytest.raises(ValueError, match=r"unknown variable \$zz"):
        keys.compile_key_template("$fU$zz")
    with pytest.raises(ValueError):
        keys.compile_key_template("static")


def test_key_part_numbers_match_the_extension():
    for name in ("LITERAL", "FROM_USER", "FROM_HOST", "TO_USER", "TO_HOST", "RURI_USER", "RURI_HOST", "CALL_ID",
                 "FROM_TAG", "SOURCE_IP", "AUTH_USER"):
        assert getattr(keys, name) == getattr(dshash, "KEY_" + name)
    for letter, bit in (("f", F), ("u", U), ("d", D), ("c", C)):
        assert parse_flags(letter) == bit

# -- hashing algorithms -----------------------------------------------------------------


@pytest.mark.parametrize("key", [b"a", b"call-1@host", b"x" * 300])
def test_weighted_hash_pick_is_h_mod_total_over_cumulative_weights(key):
    weights = [1, 2, 7]
    expected = cumulative_pick(h(key) % 10, weights, range(3))
    assert dshash.select_key(table(weights), key, 0) == [expected]


@pytest.mark.parametrize("key", [b"k%d" % i for i in range(40)])
def test_inactive_candidate_rehashes_over_the_active_subset(key):
    weights = [3, 1, 4, 2]
    candidate = cumulative_pick(h(key) % 10, weights, range(4))
    states = [0, 0, 0, 0]
    states[candidate] = 2
    active = [i for i in range(4) if i != candidate]
    expected = cumulative_pick(h(key) % sum(weights[i] for i in active), weights, active)
    assert dshash.select_key(table(weights, states), key, 0) == [expected]


def test_all_zero_weights_hash_over_the_count():
    assert dshash.select_key(table([0, 0, 0]), b"key", 0) == [h(b"key") % 3]
    for key in (b"key", b"other", b"third", b"fourth"):
        candidate = h(key) % 3
        expected = candidate if candidate != 0 else [1, 2][h(key) % 2]
        assert dshash.select_key(table([0, 0, 0], [1, 0, 0]), key, 0) == [expected]


def test_zero_weight_destination_is_never_hashed_to_but_stays_in_failover():
    t = table([0, 1])
    assert {dshash.select_key(t, b"%d" % i, 0)[0] for i in range(200)} == {1}
    assert dshash.select_key(t, b"k", 0, F) == [1, 0]


def test_failover_list_is_selected_then_following_indexes_wrapping_active_only():
    t = table([1] * 5, [0, 0, 2, 0, 1])
    for i in range(50):
        order = dshash.select_key(t, b"%d" % i, 0, F)
        first = order[0]
        expected = [first] + [j % 5 for j in range(first + 1, first + 5) if j % 5 in (0, 1, 3)]
        assert order == expected


def test_without_f_only_the_selected_destination():
    assert len(dshash.select_key(table([1, 1, 1]), b"k", 0)) == 1


def test_max_results_cuts_the_tail_but_keeps_the_default():
    t = table([1] * 6)
    order = dshash.select_key(t, b"k", 0, F | D, 3)
    assert len(order) == 4 and order[-1] == 5 and 5 not in order[:3]
    assert dshash.select_key(t, b"k", 0, F, 1) == dshash.select_key(t, b"k", 0)


def test_default_destination_only_when_nothing_else_is_active():
    t = table([1, 1, 1])
    assert all(dshash.select_key(t, b"%d" % i, 0, D)[0] != 2 for i in range(100))
    t.set_state(0, 1)
    t.set_state(1, 2)
    assert dshash.select_key(t, b"k", 0, D) == [2]
    assert dshash.select_key(t, b"k", 8, F | D) == [2]
    t.set_state(2, 2)
    assert dshash.select_key(t, b"k", 0, D | F) == []


def test_nothing_active_means_no_destination():
    for alg in range(11):
        key = b"k" if alg in (0, 1, 2, 3, 5, 7) else None
        assert dshash.select_key(table([1, 1], [2, 1]), key, alg, F) == []
    assert dshash.select_key(table([]), b"k", 0, F | D) == []


def test_unknown_algorithm_is_an_error_not_a_fallback():
    with pytest.raises(ValueError, match="unknown algorithm 11"):
        SelectionRule(1, 11)
    with pytest.raises(ValueError, match="unknown flag 's'"):
        SelectionRule.parse(1, 0, "fs")
    with pytest.raises(ValueError):
        dshash.select_key(table([1]), b"k", 12)

# -- algorithms without a hash --------------------------------------------------------


def test_weighted_round_robin_picks_each_weight_times_in_a_row():
    t = table([2, 1, 3])
    assert [dshash.select_key(t, None, 4)[0] for _ in range(12)] == [0, 0, 1, 2, 2, 2, 0, 0, 1, 2, 2, 2]
    t.set_state(1, 2)
    assert [dshash.select_key(t, None, 4)[0] for _ in range(7)] == [0, 0, 2, 2, 2, 0, 0]


def test_round_robin_failover_is_the_following_indexes():
    t = table([1, 1, 1])
    assert dshash.select_key(t, None, 4, F) == [0, 1, 2]
    assert dshash.select_key(t, None, 4, F) == [1, 2, 0]


def test_auth_username_falls_back_to_plain_round_robin():
    t = table([5, 1, 1])
    assert [dshash.select_key(t, None, 5)[0] for _ in range(4)] == [0, 1, 2, 0]
    assert dshash.select_key(t, b"bob", 5) == [cumulative_pick(h(b"bob") % 7, [5, 1, 1], range(3))]


def test_first_is_the_highest_priority_active():
    sets, problems = build_sets([
        {"id": 1, "setid": 1, "destination": "sip:10.0.0.1", "priority": 1},
        {"id": 2, "setid": 1, "destination": "sip:10.0.0.2", "priority": 9},
        {"id": 3, "setid": 1, "destination": "sip:10.0.0.3", "priority": 5},
    ])
    selector = Selector(sets)
    rule = SelectionRule.parse(1, 8, "f")
    assert [d.id for d in selector.select(scan(INVITE), rule)] == [2, 3, 1]
    selector.table(1).set_state(0, 2)
    assert [d.id for d in selector.select(scan(INVITE), rule)] == [3, 1]


def test_lowest_load_and_lowest_latency():
    t = table([1, 1, 1, 1])
    for i, load in enumerate([7, 2, 9, 2]):
        t.set_load(i, load)
    assert dshash.select_key(t, None, 9, F) == [1, 3, 0, 2]
    t.set_state(1, 1)
    assert dshash.select_key(t, None, 9, F) == [3, 0, 2]
    for i, rtt in enumerate([12.5, -1, 3.0, 40.0]):
        t.set_rtt(i, rtt)
    assert dshash.select_key(t, None, 10, F) == [2, 0, 3]  # 1 inactive; unknown RTT would sort last
    t.set_state(1, 0)
    assert dshash.select_key(t, None, 10, F) == [2, 0, 3, 1]


def test_random_is_weighted_and_reseedable():
    t = table([1, 3])
    dshash.seed_random(7)
    first = [dshash.select_key(t, None, 6)[0] for _ in range(20)]
    dshash.seed_random(7)
    assert [dshash.select_key(t, None, 6)[0] for _ in range(20)] == first
    picks = [dshash.select_key(t, None, 6)[0] for _ in range(40_000)]
    assert abs(picks.count(1) / len(picks) - 0.75) < 0.02

# -- flag c -----------------------------------------------------------------------------


def test_consistent_failover_order_is_the_rendezvous_runner_up():
    t = table([1] * 8)
    for i in range(100):
        key = b"%d" % i
        order = dshash.select_key(t, key, 0, F | C)
        assert sorted(order) == list(range(8))
        t.set_state(order[0], 2)
        assert dshash.select_key(t, key, 0, C) == [order[1]]
        t.set_state(order[0], 0)


def test_consistent_hashing_follows_the_destination_not_its_index():
    uris = [b"sip:10.0.0.%d" % i for i in range(6)]
    full = dshash.SetTable([1] * 6, uris)
    without_2 = dshash.SetTable([1] * 5, uris[:2] + uris[3:])
    for i in range(500):
        before = uris[dshash.select_key(full, b"%d" % i, 0, C)[0]]
        after = (uris[:2] + uris[3:])[dshash.select_key(without_2, b"%d" % i, 0, C)[0]]
        assert before == after or before == uris[2]

# -- append mode and the selector -----------------------------------------------------------


def test_append_puts_the_new_selection_in_front_of_the_previous_list():
    sets, _ = build_sets([{"id": i, "setid": 1 + i // 2, "destination": f"sip:10.0.0.{i}"} for i in range(4)])
    selector = Selector(sets)
    first = selector.select(scan(INVITE), SelectionRule.parse(1, 8, "f"))
    both = selector.select(scan(INVITE), SelectionRule.parse(2, 8, "fa"), previous=first)
    assert [d.id for d in both] == [2, 3, 0, 1]
    assert [d.id for d in selector.select(scan(INVITE), SelectionRule.parse(2, 8, "f"), previous=first)] == [2, 3]
    assert selector.select(scan(INVITE), SelectionRule.parse(9, 0, "f")) == []


def test_selector_algorithm_7_needs_a_template():
    sets, _ = build_sets([{"id": 1, "setid": 1, "destination": "sip:10.0.0.1"}])
    with pytest.raises(ValueError, match="FASTDS_HASH_KEY"):
        Selector(sets).select(scan(INVITE), SelectionRule(1, 7))
    assert len(Selector(sets, "$fU").select(scan(INVITE), SelectionRule(1, 7))) == 1


def test_zero_weight_survivors_share_equally_with_and_without_c():
    """Found by hypothesis: with c, survivors all of weight 0 once got nothing."""
    for flags in (0, C):
        t = table([0, 0, 1], [0, 0, 2])
        assert {dshash.select_key(t, b"%d" % i, 0, flags)[0] for i in range(200)} == {0, 1}
