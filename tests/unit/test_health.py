"""The prober's state machine with an injected clock (OpenSIPS modules/dispatcher/dispatch.c semantics)."""

from fastds.dispatch.health import ACTIVE, INACTIVE, PROBING, Health, ProbeFailed
from fastds.dispatch.sets import build_sets

INTERVAL = 10.0


def health(threshold=3, probing_mode=0, reply_codes=frozenset(), states=(0, 0, 1), probe_modes=(0, 0, 0)):
    sets, _ = build_sets([{"id": i + 1, "setid": 1, "destination": f"sip:127.0.0.1:{6001 + i}", "state": s,
                           "probe_mode": p} for i, (s, p) in enumerate(zip(states, probe_modes))])
    h = Health(threshold, probing_mode, reply_codes, INTERVAL)
    h.load([(d, slot) for slot, d in enumerate(sets[1].destinations)], 0.0, inherit=False)
    return h


def ids(tracked):
    return sorted(t.destination.id for t in tracked)


def test_mode_0_probes_only_probing_destinations_never_inactive_ones():
    h = health(states=(0, 2, 1))
    assert ids(h.due(0.0)) == [2]
    assert h.due(1.0) == []  # one probe in flight at a time
    h.probe_result(2, None)
    assert h.due(INTERVAL - 0.1) == [] and ids(h.due(INTERVAL)) == [2]


def test_mode_1_and_probe_mode_1_probe_active_ones_too():
    assert ids(health(probing_mode=1).due(0.0)) == [1, 2]
    assert ids(health(probe_modes=(1, 0, 1)).due(0.0)) == [1]


def test_failures_reach_the_threshold_then_probing():
    h = health(threshold=3)
    assert h.traffic_failure(1, "503 from traffic", now=0.0) is None
    assert h.traffic_failure(1, "503 from traffic", now=0.0) is None
    change = h.traffic_failure(1, "503 from traffic", now=0.0)
    assert (change.old, change.new) == (ACTIVE, PROBING)
    assert change.log_line() == "set 1 sip:127.0.0.1:6001 active -> probing (503 from traffic)"
    assert h.traffic_failure(1, "again", now=0.0) is None


def test_positive_probe_reactivates_and_resets_the_count():
    h = health(threshold=2)
    h.traffic_failure(1, "x", now=0.0)
    h.traffic_failure(1, "x", now=0.0)
    assert ids(h.due(0.0)) == [1]
    change = h.probe_result(1, 200)
    assert (change.old, change.new, change.reason) == (PROBING, ACTIVE, "200 to probe")
    assert h.traffic_failure(1, "x", now=0.0) is None  # the count restarted from 0


def test_reply_codes_count_as_alive_and_others_keep_probing():
    h = health(threshold=1, reply_codes=frozenset({405}))
    h.traffic_failure(1, "x", now=0.0)
    h.due(0.0)
    assert type(h.probe_result(1, 404)) is ProbeFailed and h.tracked[1].state == PROBING
    h.due(INTERVAL)
    assert h.probe_result(1, 405).new == ACTIVE


def test_negative_probes_move_active_to_probing_in_mode_1():
    h = health(threshold=2, probing_mode=1)
    h.due(0.0)
    assert type(h.probe_result(1, 503)) is ProbeFailed and h.tracked[1].state == ACTIVE
    h.due(INTERVAL)
    assert h.probe_result(1, None).reason == "probe timeout"


def test_why_probes_fail_is_told_once_per_state_and_reason():
    """A destination that stays probing (here: loaded so) says why its probes fail, once for
    each reason, and again after a state change; a change's own line says it otherwise."""
    h = health(threshold=1, states=(2, 0, 1))
    told = []
    for step, code in enumerate((None, None, 404, 404, None)):
        h.due(step * INTERVAL)
        result = h.probe_result(1, code)
        told.append(None if result is None else result.log_line())
    assert told == ["set 1 sip:127.0.0.1:6001 stays probing: probe failed (probe timeout)", None,
                    "set 1 sip:127.0.0.1:6001 stays probing: probe failed (404 to probe)", None,
                    "set 1 sip:127.0.0.1:6001 stays probing: probe failed (probe timeout)"]
    h.due(5 * INTERVAL)
    assert h.probe_result(1, 200).new == ACTIVE
    h.traffic_failure(1, "503 from traffic", now=6 * INTERVAL)  # threshold 1: probing again, told by the change
    h.due(6 * INTERVAL)
    assert h.probe_result(1, None, "unparsable reply: bad Via").log_line() == \
        "set 1 sip:127.0.0.1:6001 stays probing: probe failed (unparsable reply: bad Via)"
    assert h.probe_result(3, None) is None  # inactive: not probed, nothing to say


def test_inactive_is_untouched_by_failures_and_probes():
    h = health(threshold=1)
    assert h.traffic_failure(3, "x", now=0.0) is None and h.tracked[3].state == INACTIVE
    assert h.probe_result(3, 200) is None and h.tracked[3].state == INACTIVE


def test_reload_inherits_runtime_state_unless_told_not_to():
    h = health(threshold=1)
    h.traffic_failure(1, "x", now=0.0)
    pairs = [(t.destination, t.slot) for t in h.tracked.values()]
    assert h.load(pairs, 5.0, inherit=True) == ({1: PROBING, 2: ACTIVE, 3: INACTIVE}, [])
    states, (change,) = h.load(pairs, 5.0, inherit=False)
    assert states[1] == ACTIVE and (change.destination.id, change.old, change.new) == (1, PROBING, ACTIVE)
    assert change.log_line().endswith("probing -> active (reloaded without inherit_state)")


def test_reload_applies_a_state_an_operator_changed_in_the_store():
    import dataclasses

    h = health(threshold=1)
    h.traffic_failure(1, "x", now=0.0)  # runtime: probing; store still says active
    edited = [(dataclasses.replace(t.destination, state=INACTIVE) if t.destination.id == 2 else t.destination, t.slot)
              for t in h.tracked.values()]
    states, (change,) = h.load(edited, 5.0, inherit=True)
    assert states[1] == PROBING and states[2] == INACTIVE
    assert change.log_line() == "set 1 sip:127.0.0.1:6002 active -> inactive (set in the store, reloaded)"


def test_operator_state_changes():
    h = health()
    assert h.set_state(1, INACTIVE, "ds_set_state").new == INACTIVE
    assert h.due(0.0) == []
    assert h.set_state(1, ACTIVE, "ds_set_state").new == ACTIVE
    assert h.set_state(99, ACTIVE, "x") is None


def test_next_deadline_is_the_earliest_probe():
    h = health(states=(0, 2, 2))
    assert h.next_deadline() == 0.0
    h.due(0.0)
    assert h.next_deadline() is None  # both in flight
    h.probe_result(2, 503)
    assert h.next_deadline() == INTERVAL


def test_a_respawned_prober_starts_from_the_states_in_shared_memory():
    h = health()
    pairs = [(t.destination, t.slot) for t in h.tracked.values()]
    fresh = Health(3, 0, frozenset(), INTERVAL)
    assert fresh.load(pairs, 0.0, inherit=False, runtime={1: PROBING}) == ({1: PROBING, 2: ACTIVE, 3: INACTIVE}, [])


def test_mi_probing_request_counts_towards_the_threshold_and_reenables_an_inactive_one():
    h = health(threshold=2, states=(0, 0, 1))
    assert h.mark_probing(1, "MI command") is None and h.tracked[1].state == ACTIVE
    assert h.mark_probing(1, "MI command").new == PROBING
    change = h.mark_probing(3, "MI command")  # inactive: probing ignored, inactive cleared
    assert (change.old, change.new) == (INACTIVE, ACTIVE)
    assert h.mark_probing(99, "MI command") is None
