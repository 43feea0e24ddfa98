"""The prober's sans-IO core with an injected clock: probes, retransmission, timeout, RTT.

Destinations of set 1: id 1 at 127.0.0.1:6001 (probing), id 2 at 127.0.0.1:6002
(active), id 3 at 127.0.0.1:6003 (inactive). Probing mode 0: only probing ones are probed.
"""

from fastds.dispatch.health import Health, ProbeFailed, StateChange
from fastds.dispatch.peers import dial
from fastds.dispatch.probing import ProbeConfig, ProbeRtt, ProbeSend, Probing
from fastds.dispatch.sets import ALL_TRANSPORTS, build_sets
from fastds.dispatch.state import DestinationState
from fastds.sip import BranchFactory, build_response, scan

T1, T2, TIMEOUT, INTERVAL = 0.5, 4.0, 5.0, 10.0
D1, D2 = ("127.0.0.1", 6001), ("127.0.0.1", 6002)


def make_probing(states=(2, 0, 1), threshold=1, probing_mode=0, allowed=lambda host, now: True) -> Probing:
    sets, _ = build_sets([{"id": i + 1, "setid": 1, "destination": f"sip:127.0.0.1:{6001 + i}", "state": state}
                          for i, state in enumerate(states)])
    health = Health(threshold, probing_mode, frozenset(), INTERVAL)
    health.load([(d, slot) for slot, d in enumerate(sets[1].destinations)], 0.0, inherit=False)
    config = ProbeConfig(t1=T1, t2=T2, timeout=TIMEOUT, sent_by=b"127.0.0.1:5099", call_id_prefix=b"probe-test")
    return Probing(health, config, BranchFactory(b"unit-test-secret", "probe"), allowed)


def of(actions, kind):
    return [action for action in actions if isinstance(action, kind)]


def test_a_probing_destination_is_probed_at_once_with_an_options_of_ours():
    probing = make_probing()
    assert probing.next_deadline() == 0.0
    (send,) = probing.timer(0.0)
    probe = scan(send.data)
    assert (send.addr, probe.method, probe.request_uri) == (D1, b"OPTIONS", b"sip:127.0.0.1:6001")
    assert probe.top_via == b"SIP/2.0/UDP 127.0.0.1:5099;branch=" + probe.branch
    assert probing.branches.is_ours(probe.branch) and probe.call_id.startswith(b"probe-test-")
    assert probing.next_deadline() == T1  # the retransmission; no other destination is due


def tcp_probing(state=2, probing_mode=0) -> Probing:
    sets, _ = build_sets([{"id": 1, "setid": 1, "destination": "sip:127.0.0.1:6001;transport=tcp", "state": state}],
                         ALL_TRANSPORTS)
    health = Health(1, probing_mode, frozenset(), INTERVAL)
    health.load([(sets[1].destinations[0], 0)], 0.0, inherit=False)
    config = ProbeConfig(t1=T1, t2=T2, timeout=TIMEOUT, sent_by=b"127.0.0.1:5099", call_id_prefix=b"probe-test")
    return Probing(health, config, BranchFactory(b"unit-test-secret", "probe"), lambda host, now: True)


def test_a_tcp_destination_is_probed_over_its_connection_without_retransmission():
    probing = tcp_probing()
    (send,) = probing.timer(0.0)
    assert send.addr == dial("127.0.0.1", 6001, "tcp")
    assert scan(send.data).top_via.startswith(b"SIP/2.0/TCP 127.0.0.1:5099;branch=")
    assert probing.next_deadline() == TIMEOUT and probing.timer(T1 * 3) == []  # reliable: the timeout only
    (rtt, change) = probing.receive(build_response(scan(send.data), 200), 0.25)
    assert rtt.rtt_ms == 250.0 and change.new is DestinationState.ACTIVE


def test_a_failed_connection_fails_its_probe_at_once():
    probing = tcp_probing(state=0, probing_mode=1)  # active, probed all the same
    (send,) = probing.timer(0.0)
    assert probing.connection_failed(("127.0.0.1", 6001)) == []  # another address: nothing
    (change,) = probing.connection_failed(send.addr)  # not at the 5 s timeout
    assert (change.old, change.new) == (DestinationState.ACTIVE, DestinationState.PROBING) and not probing.pending


def test_retransmission_doubles_from_t1_to_t2_then_the_timeout_is_a_failure():
    probing = make_probing()
    (first,) = probing.timer(0.0)
    sent_at, told = [], []
    now = 0.0
    while probing.pending:
        now = probing.next_deadline()
        actions = probing.timer(now)
        if of(actions, ProbeSend):
            assert of(actions, ProbeSend)[0].data == first.data
            sent_at.append(now)
        assert of(actions, StateChange) == []  # a probing destination that stays silent changes nothing
        told += [failed.log_line() for failed in of(actions, ProbeFailed)]
    assert sent_at == [0.5, 1.5, 3.5] and now == TIMEOUT  # intervals 0.5, 1, 2, then the 5 s timeout
    assert told == ["set 1 sip:127.0.0.1:6001 stays probing: probe failed (probe timeout)"]  # said why, once
    assert probing.next_deadline() == INTERVAL  # probed again one interval after the first probe


def test_a_reply_gives_the_rtt_and_brings_the_destination_back():
    probing = make_probing()
    (send,) = probing.timer(0.0)
    assert probing.receive(build_response(scan(send.data), 180), 0.1) == []  # provisional: still in flight
    actions = probing.receive(build_response(scan(send.data), 200), 0.25)
    assert of(actions, ProbeRtt) == [ProbeRtt(0, 250.0, 1)]
    (change,) = of(actions, StateChange)
    assert (change.destination.id, change.old, change.new) == (1, DestinationState.PROBING, DestinationState.ACTIVE)
    assert probing.pending == {} and probing.next_deadline() is None  # active, mode 0: not probed any more
    assert probing.receive(build_response(scan(send.data), 200), 0.3) == []  # a retransmitted reply


def test_what_is_not_a_reply_to_a_probe_in_flight_is_ignored():
    probing = make_probing()
    (send,) = probing.timer(0.0)
    assert probing.receive(b"garbage", 0.1) == []
    assert probing.receive(send.data, 0.1) == []  # a request (our own probe, looped back)
    stranger = build_response(scan(send.data.replace(scan(send.data).branch, b"z9hG4bK-other")), 200)
    assert probing.receive(stranger, 0.1) == [] and len(probing.pending) == 1


def test_a_failing_reply_counts_and_a_late_timer_fires_once():
    probing = make_probing(states=(0, 0, 1), threshold=2, probing_mode=1)
    sends = probing.timer(0.0)
    assert sorted(send.addr for send in sends) == [D1, D2]  # mode 1: active ones too, never inactive
    by_addr = {send.addr: send for send in sends}
    actions = probing.receive(build_response(scan(by_addr[D1].data), 503), 0.1)
    assert actions[0].rtt_ms == 100.0 and of(actions, StateChange) == []  # answered: 1 failure of 2
    assert [failed.outcome for failed in of(actions, ProbeFailed)] == ["503 to probe"]
    actions = probing.timer(TIMEOUT + 3.0)  # woken late: the timeout wins over the retransmissions
    assert of(actions, ProbeSend) == [] and of(actions, StateChange) == []
    (change,) = probing.traffic_failure(1, "503 from traffic", now=0.0)
    assert (change.new, change.reason) == (DestinationState.PROBING, "503 from traffic")


def test_a_destination_the_egress_check_refuses_fails_without_a_send():
    probing = make_probing(allowed=lambda host, now: False)
    (failed,) = probing.timer(0.0)
    assert probing.pending == {} and failed.outcome == "not sent: FASTDS_EGRESS_ALLOW"
    assert probing.next_deadline() == INTERVAL


def test_an_unparsable_reply_to_a_probe_fails_it_saying_why():
    probing = make_probing()
    (send,) = probing.timer(0.0)
    reply = build_response(scan(send.data), 200)
    (failed,) = probing.receive(reply.replace(b"\r\nCSeq: 1 ", b"\r\nCSeq: one "), 0.1)
    assert failed.outcome.startswith("unparsable reply: ") and probing.pending == {}


# -- confirming traffic failures (FASTDS_CONFIRM_FAILURES) ----------------------------------------


def confirming(threshold=1, confirm=True) -> Probing:
    probing = make_probing(states=(0, 0, 1), threshold=threshold)
    probing.health.confirm = confirm
    return probing


def test_a_failure_of_an_answering_destination_waits_for_a_probe_that_dismisses_it():
    from fastds.dispatch.health import FailureDismissed

    probing = confirming()
    assert probing.next_deadline() is None  # active, mode 0: not probed
    assert probing.traffic_failure(1, "timeout (no final reply)", answering=True, now=0.0) == []
    assert probing.health.tracked[1].state == DestinationState.ACTIVE and probing.next_deadline() == 0.0
    (send,) = probing.timer(1.0)
    assert send.addr == D1
    actions = probing.receive(build_response(scan(send.data), 200), 1.05)
    (dismissed,) = of(actions, FailureDismissed)
    assert dismissed.reasons == ("timeout (no final reply)",) and "stays active" in dismissed.log_line()
    assert of(actions, StateChange) == [] and probing.next_deadline() is None


def test_a_failure_confirmed_by_a_silent_probe_counts_then():
    probing = confirming(threshold=2)
    probing.traffic_failure(1, "503 from traffic", answering=True, now=0.0)
    probing.traffic_failure(1, "503 from traffic", answering=True, now=0.0)  # decided by the same probe
    (send,) = probing.timer(0.0)
    assert probing.timer(TIMEOUT - 0.01) != [] and probing.health.tracked[1].state == DestinationState.ACTIVE
    (change,) = of(probing.timer(TIMEOUT), StateChange)
    assert change.new == DestinationState.PROBING and change.reason == "503 from traffic, confirmed by probe timeout"


def test_a_destination_that_keeps_answering_503_is_probed_to_confirm_at_most_once_a_second():
    """503 to calls, 200 to OPTIONS: every failure is dismissed, but not one probe per failed call."""
    from fastds.dispatch.health import CONFIRM_GAP_S

    probing, probes = confirming(threshold=3), 0
    for tick in range(300):  # a failed call every 10 ms for 3 s
        now = tick / 100
        probing.traffic_failure(1, "503 from traffic", answering=True, now=now)
        for send in probing.timer(now):
            probes += 1
            probing.receive(build_response(scan(send.data), 200), now)
    assert probes == 3 == round(3.0 / CONFIRM_GAP_S)  # at 0, 1 and 2 s
    assert probing.health.tracked[1].state == DestinationState.ACTIVE


def test_without_confirmation_or_an_answer_meanwhile_a_failure_counts_at_once():
    for probing, answering in ((confirming(confirm=False), True), (confirming(), False)):
        (change,) = of(probing.traffic_failure(1, "timeout (no final reply)", answering=answering, now=0.0), StateChange)
        assert change.new == DestinationState.PROBING


def test_failure_reports_carry_the_answering_flag_and_their_count():
    from fastds.procs.reports import decode, encode

    assert decode(encode(7, True, 1, "503 from traffic")) == (7, "503 from traffic", True, 1)
    assert decode(b"7 0 12 timeout (no final reply)") == (7, "timeout (no final reply)", False, 12)
    for bad in (b"7 x 1 nope", b"seven 1 1 x", b"7 1 0 none", b"7 1 -2 x"):
        assert decode(bad) is None, bad


def test_a_coalesced_report_counts_as_that_many_failures_up_to_the_threshold():
    probing = confirming(threshold=3, confirm=False)
    assert probing.traffic_failure(1, "503 from traffic", answering=True, count=2, now=0.0) == []
    assert probing.health.tracked[1].failures == 2
    (change,) = of(probing.traffic_failure(1, "503 from traffic", count=40, now=0.0), StateChange)
    assert change.new == DestinationState.PROBING and probing.health.tracked[1].failures == 3


def test_coalesced_failures_to_confirm_fill_the_unconfirmed_list_to_the_threshold():
    probing = confirming(threshold=3)
    probing.traffic_failure(1, "503 from traffic", answering=True, count=2, now=0.0)
    probing.traffic_failure(1, "503 from traffic", answering=True, count=5, now=0.0)
    assert probing.health.tracked[1].unconfirmed == ["503 from traffic"] * 3
    (send,) = probing.timer(0.0)
    (change,) = of(probing.timer(TIMEOUT), StateChange)  # the probe went unanswered: all three count
    assert change.new == DestinationState.PROBING
