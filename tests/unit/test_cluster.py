"""The cluster's rules, sans-IO: which change wins, who probes what, degraded mode."""

from collections import Counter

from fastds.dispatch.cluster import ClusterState, StateRecord, probe_owner
from fastds.dispatch.health import Health
from fastds.dispatch.sets import build_sets
from fastds.dispatch.state import DestinationState


def test_the_later_record_wins_and_a_tie_goes_to_the_higher_node_id():
    early, late = StateRecord(1, 2, 1000, "b"), StateRecord(1, 0, 1001, "a")
    assert late.wins_over(early) and not early.wins_over(late) and early.wins_over(None)
    assert StateRecord(1, 0, 1000, "c").wins_over(early) and not early.wins_over(early)
    assert StateRecord.decode(late.encode()) == late and StateRecord.decode(b"nope") is None


def test_records_seen_in_any_order_converge_on_every_node():
    records = [StateRecord(7, state, at, node) for at, node, state in
               [(10, "a", 2), (12, "b", 0), (11, "c", 2), (12, "a", 1)]]
    finals = set()
    for order in (records, records[::-1], records[1:] + records[:1]):
        node = ClusterState("x")
        for record in order:
            node.remote(record)
        finals.add(node.latest[7])
    assert finals == {StateRecord(7, 0, 12, "b")}


def test_own_records_coming_back_change_nothing_and_are_kept_until_published():
    node = ClusterState("a")
    record = node.local(3, 2, 500, "probe timeout")
    assert node.unpublished == [record] and not node.remote(record)
    node.published([record])
    assert node.unpublished == []


def test_probing_is_shared_out_and_only_a_leaving_nodes_destinations_move():
    nodes = {"a", "b", "c"}
    owners = {dest: probe_owner(dest, nodes) for dest in range(3000)}
    assert all(900 < count < 1100 for count in Counter(owners.values()).values())
    after = {dest: probe_owner(dest, nodes - {"c"}) for dest in range(3000)}
    assert all(after[dest] == owner for dest, owner in owners.items() if owner != "c")
    node = ClusterState("a")
    node.live = frozenset(nodes)
    assert sum(node.probes(d) for d in range(3000)) == Counter(owners.values())["a"]
    node.degraded = True
    assert all(node.probes(d) for d in range(3000))  # Redis away: everything probed here


def test_health_probes_only_what_the_cluster_gives_it_and_applies_remote_changes():
    sets, _ = build_sets([{"id": i, "setid": 1, "destination": f"sip:127.0.0.1:{6000 + i}", "state": 2}
                          for i in (1, 2)])
    health = Health(1, 0, frozenset(), 10.0)
    health.load([(d, slot) for slot, d in enumerate(sets[1].destinations)], 0.0, inherit=False)
    health.probes_here = lambda dest_id: dest_id == 1
    assert [t.destination.id for t in health.due(0.0)] == [1]
    change = health.apply_remote(2, DestinationState.ACTIVE, "200 to probe; from node b")
    assert change.new == DestinationState.ACTIVE and health.unstored() == []  # node b writes it back
    health.traffic_failure(2, "503 from traffic", now=0.0)
    assert health.tracked[2].state == DestinationState.PROBING and health.unstored() == [(2, DestinationState.PROBING)]


def test_a_reload_before_the_origin_wrote_a_remote_change_keeps_it():
    sets, _ = build_sets([{"id": 1, "setid": 1, "destination": "sip:127.0.0.1:6001", "state": 0}])
    health = Health(1, 0, frozenset(), 10.0)
    pairs = [(d, slot) for slot, d in enumerate(sets[1].destinations)]
    health.load(pairs, 0.0, inherit=False)
    health.apply_remote(1, DestinationState.PROBING, "timeout; from node b")
    states, changes = health.load(pairs, 1.0, inherit=True)  # the store still says active
    assert states == {1: DestinationState.PROBING} and changes == [] and health.unstored() == []
    written, _ = build_sets([{"id": 1, "setid": 1, "destination": "sip:127.0.0.1:6001", "state": 2}])
    states, _ = health.load([(d, 0) for d in written[1].destinations], 2.0, inherit=True)  # node b wrote it
    assert states == {1: DestinationState.PROBING}
