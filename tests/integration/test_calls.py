"""Calls through `fastds run` with real SIPp on loopback (issue: stateful proxy, a-h)."""

import socket
import time

from fastds._ext import dshash
from fastds.sip import scan
from tests.harness import LoopbackDestination, free_udp_port, wait_for

CALLS = 40


def counts(stats, *names):
    return tuple(int(stats[name]) for name in names)


def expected_split(harness, ports, calls):
    """How algorithm 2 (hash over the To URI) splits the UAC's calls over `ports`."""
    table = dshash.SetTable([1] * len(ports), [b"sip:127.0.0.1:%d" % port for port in ports])
    picks = [dshash.select_key(table, b"cust-%d@127.0.0.1:%d" % (n, harness.port), 2)[0] for n in range(1, calls + 1)]
    return [picks.count(i) for i in range(len(ports))], picks


def test_a_two_healthy_callees_take_the_calls_the_algorithm_gives_them(harness):
    ports = [free_udp_port(), free_udp_port()]
    for port in ports:
        harness.add_destination(port)
    callees = [harness.uas("uas.xml", port) for port in ports]
    harness.start_fastds(default_alg=2)
    code, stats = harness.uac("uac.xml", CALLS)
    assert code == 0 and counts(stats, "SuccessfulCall(C)", "FailedCall(C)") == (CALLS, 0)
    expected, _ = expected_split(harness, ports, CALLS)
    received = [counts(callee.stop(), "IncomingCall(C)", "SuccessfulCall(C)") for callee in callees]
    assert received == [(n, n) for n in expected] and all(expected)


def test_b_a_callee_answering_503_is_failed_over(harness):
    ports = [free_udp_port(), free_udp_port()]
    for port in ports:
        harness.add_destination(port)
    broken, healthy = harness.uas("uas_503.xml", ports[0]), harness.uas("uas.xml", ports[1])
    harness.start_fastds(default_alg=2, probing_threshold=1000, confirm_failures=0)  # failover alone: no probe
    code, stats = harness.uac("uac.xml", CALLS)
    assert code == 0 and counts(stats, "SuccessfulCall(C)", "FailedCall(C)") == (CALLS, 0)
    expected, _ = expected_split(harness, ports, CALLS)
    assert counts(broken.stop(), "IncomingCall(C)")[0] == expected[0] > 0
    assert counts(healthy.stop(), "SuccessfulCall(C)")[0] == CALLS


def test_c_a_dead_destination_costs_one_fr_timeout(harness):
    """What fastds did, not SIPp's timing buckets: the dead destination saw each of its
    calls' INVITE within one FR timer (Timer A retransmissions only), never again, and
    fastds failed each of them over exactly once."""
    dead, live = LoopbackDestination(), free_udp_port()  # it never answers
    harness.add_destination(dead.port)
    harness.add_destination(live)
    callee = harness.uas("uas.xml", live)
    harness.start_fastds(default_alg=2, fr_timeout_ms=1000, probing_threshold=1000)
    try:
        code, stats = harness.uac("uac.xml", 20, rate=10)
    finally:
        dead.stop()
    assert code == 0 and counts(stats, "SuccessfulCall(C)", "FailedCall(C)") == (20, 0)
    assert counts(callee.stop(), "SuccessfulCall(C)")[0] == 20
    _, picks = expected_split(harness, [dead.port, live], 20)
    hashed_to_dead = {n + 1 for n, pick in enumerate(picks) if pick == 0}
    arrivals: dict[int, list[float]] = {}
    for at, data in dead.received:
        message = scan(data)
        assert message.method == b"INVITE", data[:200]
        arrivals.setdefault(int(message.to_uri.split(b"@")[0].split(b"-")[1]), []).append(at)
    assert hashed_to_dead and set(arrivals) == hashed_to_dead
    for times in arrivals.values():  # sent, then Timer A at T1 (500 ms); FR (1 s) ends the branch
        assert len(times) <= 2 and times[-1] - times[0] < 1.0

    def failed_over():  # workers publish their counters every second
        totals = harness.api("GET", "/api/v1/stats")[1]["totals"]
        return (totals["timeouts"], totals["failovers"]) == (len(hashed_to_dead), len(hashed_to_dead))

    wait_for(failed_over, 10, "one timeout and one failover per call hashed to the dead destination")


def test_d_all_destinations_dead_gives_503(harness):
    harness.add_destination(free_udp_port())
    harness.add_destination(free_udp_port())
    harness.start_fastds(fr_timeout_ms=500)
    code, stats = harness.uac("uac_expect_503.xml", 5, rate=5)
    assert code == 0 and counts(stats, "SuccessfulCall(C)", "FailedCall(C)") == (5, 0)


def test_e_no_active_destination_gives_500_no_route_to_media(harness):
    harness.add_destination(free_udp_port(), state=1)
    harness.add_destination(free_udp_port(), state=2)
    harness.start_fastds()
    code, stats = harness.uac("uac_expect_500.xml", 5, rate=5)
    assert code == 0 and counts(stats, "SuccessfulCall(C)", "FailedCall(C)") == (5, 0)
    assert b"SIP/2.0 500 No route to Media" in (harness.directory / "uac-uac_expect_500.xml.messages").read_bytes()


def test_f_cancel_before_the_answer_gives_487_and_reaches_the_callee(harness):
    port = free_udp_port()
    harness.add_destination(port)
    callee = harness.uas("uas_ringing.xml", port)
    harness.start_fastds()
    code, stats = harness.uac("uac_cancel.xml", 10, rate=10)
    assert code == 0 and counts(stats, "SuccessfulCall(C)", "FailedCall(C)") == (10, 0)
    assert counts(callee.stop(), "SuccessfulCall(C)", "FailedCall(C)") == (10, 0)  # each got its CANCEL


def test_g_a_retransmitted_invite_is_one_transaction_downstream(harness):
    port = free_udp_port()
    harness.add_destination(port)
    callee = harness.uas("uas.xml", port)
    harness.start_fastds()
    caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    caller.bind(("127.0.0.1", 0))
    caller.settimeout(5)
    here = caller.getsockname()[1]
    proxy = ("127.0.0.1", harness.port)

    def message(start, cseq, extra=b"", branch=b"z9hG4bK-g-1"):
        return (start + b"\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport\r\n" % (here, branch) +
                b"From: <sip:g@127.0.0.1:%d>;tag=g1\r\n" % here + extra +
                b"Call-ID: g-retransmit@127.0.0.1\r\nCSeq: %s\r\nContact: <sip:g@127.0.0.1:%d>\r\n" % (cseq, here) +
                b"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")

    invite = message(b"INVITE sip:bob@127.0.0.1 SIP/2.0", b"1 INVITE", b"To: <sip:bob@127.0.0.1>\r\n")
    for _ in range(3):
        caller.sendto(invite, proxy)
        time.sleep(0.05)
    responses = {}
    while 200 not in responses:
        response = scan(caller.recv(65535))
        responses[response.status_code] = response
    ok = responses[200]
    route = b"Route: " + ok.record_routes[0] + b"\r\nTo: " + ok.header("To") + b"\r\n"
    contact = ok.contacts[0].strip(b"<>")
    caller.sendto(message(b"ACK %s SIP/2.0" % contact, b"1 ACK", route, b"z9hG4bK-g-2"), proxy)
    caller.sendto(message(b"BYE %s SIP/2.0" % contact, b"2 BYE", route, b"z9hG4bK-g-3"), proxy)
    wait_for(lambda: scan(caller.recv(65535)).cseq_method == b"BYE", 10, "the 200 for the BYE")
    caller.close()
    # SIPp writes its statistics once a second (-fd 1) and not when stopped: a row written
    # between its 200 for the BYE and the end of its scenario shows the call not yet successful
    wait_for(lambda: counts(callee.stats(), "SuccessfulCall(C)")[0] >= 1, 10, "the callee to finish the call")
    stats = callee.stop()
    assert counts(stats, "IncomingCall(C)", "SuccessfulCall(C)", "Retransmissions(C)") == (1, 1, 0)


def test_h_the_callee_hangs_up_through_the_record_route(harness):
    port = free_udp_port()
    harness.add_destination(port)
    callee = harness.uas("uas_hangs_up.xml", port)
    harness.start_fastds()
    code, stats = harness.uac("uac_callee_hangs_up.xml", 10, rate=10)
    assert code == 0 and counts(stats, "SuccessfulCall(C)", "FailedCall(C)") == (10, 0)
    assert counts(callee.stop(), "SuccessfulCall(C)", "FailedCall(C)") == (10, 0)
