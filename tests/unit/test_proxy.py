"""The sans-IO proxy core with an injected clock: every state change and timer.

Destinations: set 1 = 6001, 6002 (algorithm 8 with flag f: always 6001 first, then
6002); set 2 = 6003. The caller is 127.0.0.1:5080. Downstream responses are built from
what the proxy forwarded, so they carry our Via on top as a real next hop's would.
"""

from pathlib import Path

import pytest

from fastds.dispatch.peers import TLS_CONNECTION, dial
from fastds.dispatch.proxy import Proxy, ProxyConfig
from fastds.dispatch.routes import Router
from fastds.dispatch.rules import SelectionRule
from fastds.dispatch.selector import Selector
from fastds.dispatch.sets import ALL_TRANSPORTS, build_sets
from fastds.dispatch.txn import ReportFailure, Send, State
from fastds.sip import BranchFactory, RecordRoute, build_response, scan

SECRET = b"unit-test-secret"
CALLER = ("127.0.0.1", 5080)
D1, D2, D3 = ("127.0.0.1", 6001), ("127.0.0.1", 6002), ("127.0.0.1", 6003)
T1, FR, FR_INV = 0.5, 5.0, 120.0
T4 = 5.0  # ProxyConfig's default


def make_proxy(states=(0, 0, 0), dialplan=(), alg=8, flags="f", **config) -> Proxy:
    rows = [{"id": i + 1, "setid": 1 if i < 2 else 2, "destination": f"sip:127.0.0.1:{6001 + i}", "state": s}
            for i, s in enumerate(states)]
    sets, problems = build_sets(rows)
    assert not problems
    settings = dict(private_sent_by=b"127.0.0.1:5099", t1=T1, fr_timeout=FR, fr_inv_timeout=FR_INV)
    settings.update(config)
    return Proxy(ProxyConfig(**settings), Selector(sets), Router(dialplan, SelectionRule.parse(1, alg, flags)),
                 BranchFactory(SECRET, "unit"), RecordRoute(SECRET, b"127.0.0.1:5060"))


def request(method=b"INVITE", ruri=b"sip:+15550100@127.0.0.1:5060", branch=b"z9hG4bK-c1", call_id=b"c1@u",
            cseq=1, to_tag=None, extra=b"", max_forwards=70, cseq_method=None) -> bytes:
    to = b"To: <sip:+15550100@127.0.0.1>" + (b";tag=" + to_tag if to_tag else b"")
    headers = [
        b"Via: SIP/2.0/UDP 127.0.0.1:5080;branch=" + branch + b";rport",
        b"Max-Forwards: %d" % max_forwards,
        b"From: <sip:alice@127.0.0.1:5080>;tag=caller1", to, b"Call-ID: " + call_id,
        b"CSeq: %d %s" % (cseq, cseq_method or method), b"Contact: <sip:alice@127.0.0.1:5080>",
    ]
    return b"%s %s SIP/2.0\r\n" % (method, ruri) + b"".join(h + b"\r\n" for h in headers) + extra + \
        b"Content-Length: 0\r\n\r\n"


def answer(forwarded: bytes, code: int, to_tag=b"callee1", extra=b"") -> bytes:
    """The response a next hop sends to the request fastds forwarded to it."""
    response = build_response(scan(forwarded), code, to_tag=to_tag)
    return response.replace(b"Content-Length: 0\r\n", extra + b"Content-Length: 0\r\n") if extra else response


def sends(actions, to=None):
    return [a for a in actions if isinstance(a, Send) and (to is None or a.addr == to)]


def only(actions, to):
    found = sends(actions, to)
    assert len(found) == 1, actions
    return found[0].data


def start_invite(proxy, now=0.0, **options):
    """INVITE in: returns the forwarded bytes (checked: 100 Trying upstream first)."""
    actions = proxy.receive(request(**options), CALLER, now)
    assert scan(only(actions, CALLER)).status_code == 100
    return only(actions, D1)

# -- the normal call ----------------------------------------------------------------------


def test_invite_is_answered_100_and_forwarded_with_via_record_route_and_received():
    proxy = make_proxy()
    forwarded = scan(start_invite(proxy))
    assert proxy.branches.is_ours(forwarded.branch) and forwarded.via_host == b"127.0.0.1" and forwarded.via_port == 5099
    assert forwarded.vias[1] == b"SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-c1;rport=5080;received=127.0.0.1"
    assert forwarded.max_forwards == 69
    (record_route,) = forwarded.record_routes
    assert record_route.startswith(b"<sip:127.0.0.1:5060;lr;ftag=caller1;fds=")
    assert len(proxy.servers) == 1 and len(proxy.clients) == 1


def test_provisional_relayed_but_not_100_and_2xx_ends_the_client():
    proxy = make_proxy()
    forwarded = start_invite(proxy)
    assert proxy.receive(answer(forwarded, 100), D1, 0.1) == []
    ringing = scan(only(proxy.receive(answer(forwarded, 180), D1, 0.2), CALLER))
    assert ringing.status_code == 180 and len(ringing.vias) == 1 and ringing.branch == b"z9hG4bK-c1"
    ok = scan(only(proxy.receive(answer(forwarded, 200), D1, 0.3), CALLER))
    assert ok.status_code == 200 and len(ok.vias) == 1
    assert proxy.clients == {}
    assert next(iter(proxy.servers.values())).state == State.ACCEPTED


def test_retransmitted_invite_is_absorbed_and_the_last_response_resent():
    proxy = make_proxy()
    forwarded = start_invite(proxy)
    again = proxy.receive(request(), CALLER, 0.2)
    assert [scan(s.data).status_code for s in sends(again)] == [100]
    proxy.receive(answer(forwarded, 180), D1, 0.3)
    assert [scan(s.data).status_code for s in sends(proxy.receive(request(), CALLER, 0.4))] == [180]
    proxy.receive(answer(forwarded, 200), D1, 0.5)
    assert proxy.receive(request(), CALLER, 0.6) == []  # accepted: absorbed, the 2xx retransmits itself
    assert proxy.counters["retransmissions_absorbed"] == 3


def test_accepted_server_transaction_ends_after_64_t1():
    proxy = make_proxy()
    forwarded = start_invite(proxy)
    proxy.receive(answer(forwarded, 200), D1, 1.0)
    proxy.timer(1.0 + 64 * T1 - 0.01)
    assert len(proxy.servers) == 1
    proxy.timer(1.0 + 64 * T1)
    assert proxy.servers == {}


def test_invite_retransmitted_with_timer_a_until_a_provisional():
    proxy = make_proxy()
    forwarded = start_invite(proxy)
    times = []
    now = 0.0
    while now < 4.0:  # every timer pushes the deadline forward, so this ends
        now = proxy.next_deadline()
        if sends(proxy.timer(now), D1):
            times.append(now)
    assert times[:3] == [0.5, 1.5, 3.5]  # T1, then doubling
    proxy.receive(answer(forwarded, 180), D1, 3.6)
    assert sends(proxy.timer(7.5), D1) == []

# -- failover -----------------------------------------------------------------------------


def test_503_is_acked_reported_and_fails_over_to_the_next_destination():
    proxy = make_proxy()
    forwarded = start_invite(proxy)
    actions = proxy.receive(answer(forwarded, 503), D1, 0.2)
    ack = scan(only(actions, D1))
    assert ack.method == b"ACK" and ack.branch == scan(forwarded).branch and ack.to_tag == b"callee1"
    second = scan(only(actions, D2))
    assert second.method == b"INVITE" and second.branch != scan(forwarded).branch
    (report,) = [a for a in actions if isinstance(a, ReportFailure)]
    assert report.destination.port == 6001 and report.reason == "503 from traffic"
    assert sends(actions, CALLER) == []
    final = only(proxy.receive(answer(second.data, 503), D2, 0.3), CALLER)
    assert scan(final).status_code == 503 and scan(final).reason == b"Service Unavailable"


def test_fr_timeout_without_reply_fails_over_without_cancel():
    proxy = make_proxy()
    start_invite(proxy)
    actions = proxy.timer(FR)
    assert b"CANCEL" not in [scan(s.data).method for s in sends(actions, D1)]  # it never answered
    assert scan(only(actions, D2)).method == b"INVITE"
    assert [a.reason for a in actions if isinstance(a, ReportFailure)] == ["timeout (no final reply)"]


def test_fr_inv_after_a_provisional_cancels_the_branch_then_fails_over():
    proxy = make_proxy()
    forwarded = start_invite(proxy)
    proxy.receive(answer(forwarded, 180), D1, 1.0)
    assert sends(proxy.timer(FR + 1), D2) == []  # FR-INV now rules
    actions = proxy.timer(1.0 + FR_INV)
    cancel = scan(only(actions, D1))
    assert cancel.method == b"CANCEL" and cancel.branch == scan(forwarded).branch
    assert scan(only(actions, D2)).method == b"INVITE"
    late = proxy.receive(answer(forwarded, 487), D1, 1.0 + FR_INV + 0.1)
    assert scan(only(late, D1)).method == b"ACK" and sends(late, CALLER) == []


def test_all_destinations_failing_gives_503_and_timer_g_until_the_ack():
    proxy = make_proxy()
    forwarded = start_invite(proxy)
    second = only(proxy.receive(answer(forwarded, 500), D1, 0.1), D2)
    final = only(proxy.receive(answer(second, 502), D2, 0.2), CALLER)
    assert scan(final).status_code == 503
    assert only(proxy.timer(0.2 + T1), CALLER) == final  # timer G
    ack = request(method=b"ACK", to_tag=scan(final).to_tag)
    assert proxy.receive(ack, CALLER, 1.0) == []
    assert sends(proxy.timer(0.2 + 3 * T1), CALLER) == []
    proxy.timer(1.0 + 5.0)  # timer I (T4) ends it
    assert proxy.servers == {}


def test_no_ack_ends_the_server_transaction_with_timer_h():
    proxy = make_proxy(states=(0, 2, 0))
    forwarded = start_invite(proxy)
    proxy.receive(answer(forwarded, 503), D1, 0.0)
    proxy.timer(64 * T1 - 0.01)
    assert len(proxy.servers) == 1
    proxy.timer(64 * T1)
    assert proxy.servers == {}


@pytest.mark.parametrize("code", [486, 404, 603])
def test_non_failover_codes_and_6xx_are_relayed_without_failover(code):
    proxy = make_proxy()
    forwarded = start_invite(proxy)
    actions = proxy.receive(answer(forwarded, code), D1, 0.1)
    assert scan(only(actions, CALLER)).status_code == code
    assert sends(actions, D2) == [] and not [a for a in actions if isinstance(a, ReportFailure)]


def test_6xx_stops_failover_even_when_listed():
    proxy = make_proxy(failover_codes=frozenset(range(500, 700)))
    forwarded = start_invite(proxy)
    actions = proxy.receive(answer(forwarded, 600), D1, 0.1)
    assert scan(only(actions, CALLER)).status_code == 600 and sends(actions, D2) == []


def test_retransmitted_final_is_acked_again_not_relayed():
    proxy = make_proxy(states=(0, 2, 0))
    forwarded = start_invite(proxy)
    first = proxy.receive(answer(forwarded, 486), D1, 0.1)
    again = proxy.receive(answer(forwarded, 486), D1, 0.2)
    assert only(again, D1) == only(first, D1) and sends(again, CALLER) == []

# -- CANCEL --------------------------------------------------------------------------------


def test_cancel_after_a_provisional_is_passed_on_and_the_487_relayed():
    proxy = make_proxy()
    forwarded = start_invite(proxy)
    proxy.receive(answer(forwarded, 180), D1, 0.1)
    actions = proxy.receive(request(method=b"CANCEL"), CALLER, 0.2)
    assert scan(only(actions, CALLER)).status_code == 200
    cancel = scan(only(actions, D1))
    assert cancel.method == b"CANCEL" and cancel.vias == [scan(forwarded).top_via]
    assert proxy.receive(answer(cancel.data, 200), D1, 0.25) == []  # the 200 for our CANCEL stays here
    actions = proxy.receive(answer(forwarded, 487), D1, 0.3)
    assert scan(only(actions, CALLER)).status_code == 487
    assert scan(only(actions, D1)).method == b"ACK" and sends(actions, D2) == []


def test_cancel_before_any_reply_answers_487_and_cancels_once_the_branch_rings():
    proxy = make_proxy()
    forwarded = start_invite(proxy)
    actions = proxy.receive(request(method=b"CANCEL"), CALLER, 0.1)
    assert sorted(scan(s.data).status_code for s in sends(actions, CALLER)) == [200, 487]
    assert sends(actions, D1) == []  # never CANCEL before the branch answered
    actions = proxy.receive(answer(forwarded, 180), D1, 0.2)
    assert scan(only(actions, D1)).method == b"CANCEL" and sends(actions, CALLER) == []


def test_cancel_stops_failover():
    proxy = make_proxy()
    forwarded = start_invite(proxy)
    proxy.receive(answer(forwarded, 180), D1, 0.1)
    proxy.receive(request(method=b"CANCEL"), CALLER, 0.2)
    actions = proxy.receive(answer(forwarded, 503), D1, 0.3)
    assert sends(actions, D2) == [] and scan(only(actions, CALLER)).status_code == 503


def test_cancel_without_transaction_is_481():
    proxy = make_proxy()
    assert scan(only(proxy.receive(request(method=b"CANCEL"), CALLER, 0), CALLER)).status_code == 481

# -- local answers ------------------------------------------------------------------------------


@pytest.mark.parametrize("options, code", [
    (dict(max_forwards=0), 483),
    (dict(method=b"OPTIONS", ruri=b"sip:127.0.0.1:5060"), 200),
    (dict(extra=b"Proxy-Require: foo\r\n"), 420),
    (dict(ruri=b"mailto:bob@example.com"), 416),
])
def test_local_answers(options, code):
    response = scan(only(make_proxy().receive(request(**options), CALLER, 0), CALLER))
    assert response.status_code == code
    if code == 420:
        assert response.header("Unsupported") == b"foo"


def test_loop_is_482():
    proxy = make_proxy()
    forwarded = start_invite(proxy)
    looped = forwarded.replace(b"branch=z9hG4bK-c1", b"branch=z9hG4bK-c2")  # came back to us
    assert scan(only(proxy.receive(looped, D1, 0.1), D1)).status_code == 482


def test_no_active_destination_is_500_no_route_to_media():
    response = scan(only(make_proxy(states=(1, 2, 0)).receive(request(), CALLER, 0), CALLER))
    assert (response.status_code, response.reason) == (500, b"No route to Media") and response.to_tag


def test_over_the_transaction_bound_new_invites_get_503_retry_after_other_requests_pass():
    proxy = make_proxy(max_transactions=1)
    start_invite(proxy)
    busy = scan(only(proxy.receive(request(branch=b"z9hG4bK-c9", call_id=b"c9"), CALLER, 0.1), CALLER))
    assert busy.status_code == 503 and busy.header("Retry-After") == b"5"
    actions = proxy.receive(request(method=b"MESSAGE", branch=b"z9hG4bK-m", call_id=b"m"), CALLER, 0.2)
    assert scan(only(actions, D1)).method == b"MESSAGE"


def test_parse_errors_answer_400_when_the_via_is_readable_else_drop():
    proxy = make_proxy()
    bad = request().replace(b"CSeq: 1 INVITE", b"CSeq: x INVITE")
    response = only(proxy.receive(bad, CALLER, 0), CALLER)  # copies the bad CSeq line as it came
    assert response.startswith(b"SIP/2.0 400 malformed CSeq number\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;")
    assert proxy.receive(b"\x00\xffgarbage", CALLER, 0) == []
    assert proxy.counters["parse_errors"] == 2


def test_dialplan_routes_to_another_set_and_rewrites_the_number():
    rule = {"id": 1, "dpid": 0, "pr": 0, "match_op": 1, "match_exp": r"^\+1555", "match_flags": 0,
            "subst_exp": r"^\+1(.*)$", "repl_exp": r"001\1", "timerec": None, "disabled": 0,
            "attrs": "set=2;alg=0;flags=f"}
    proxy = make_proxy(dialplan=[rule])
    actions = proxy.receive(request(), CALLER, 0)
    assert scan(only(actions, D3)).request_uri == b"sip:0015550100@127.0.0.1:5060"

# -- in-dialog requests ----------------------------------------------------------------------------


def record_route_of(proxy):
    return scan(start_invite(proxy)).record_routes[0]


def test_bye_through_our_record_route_is_loose_routed_to_the_request_uri():
    proxy = make_proxy()
    route = record_route_of(proxy)
    bye = request(method=b"BYE", ruri=b"sip:bob@127.0.0.1:6002", branch=b"z9hG4bK-b1", cseq=2, to_tag=b"callee1",
                  extra=b"Route: " + route + b"\r\n")
    forwarded = scan(only(proxy.receive(bye, CALLER, 1.0), D2))
    assert forwarded.method == b"BYE" and forwarded.routes == [] and forwarded.record_routes == []
    response = scan(only(proxy.receive(answer(forwarded.data, 200), D2, 1.1), CALLER))
    assert (response.status_code, response.cseq_method) == (200, b"BYE")


def test_callee_side_bye_reaches_the_caller_and_the_next_route_wins_over_the_uri():
    proxy = make_proxy()
    route = record_route_of(proxy)
    bye = request(method=b"BYE", ruri=b"sip:alice@127.0.0.1:5080", branch=b"z9hG4bK-b2", cseq=5, to_tag=b"caller1",
                  extra=b"Route: " + route + b", <sip:127.0.0.1:7000;lr>\r\n")
    bye = bye.replace(b"From: <sip:alice@127.0.0.1:5080>;tag=caller1", b"From: <sip:bob@127.0.0.1>;tag=callee1")
    assert scan(only(proxy.receive(bye, D1, 1.0), ("127.0.0.1", 7000))).routes == [b"<sip:127.0.0.1:7000;lr>"]


def test_in_dialog_request_without_our_signed_route_is_refused():
    proxy = make_proxy()
    route = record_route_of(proxy).replace(b"fds=", b"fds=0")
    for extra in (b"", b"Route: <sip:127.0.0.1:5060;lr>\r\n", b"Route: " + route + b"\r\n"):
        bye = request(method=b"BYE", ruri=b"sip:bob@127.0.0.1:6002", branch=b"z9hG4bK-b3", to_tag=b"t", extra=extra)
        assert scan(only(make_proxy().receive(bye, CALLER, 0), CALLER)).status_code == 403


def test_ack_for_2xx_is_forwarded_statelessly_through_our_route():
    proxy = make_proxy()
    route = record_route_of(proxy)
    ack = request(method=b"ACK", ruri=b"sip:bob@127.0.0.1:6001", branch=b"z9hG4bK-a2", to_tag=b"callee1",
                  extra=b"Route: " + route + b"\r\n")
    forwarded = scan(only(proxy.receive(ack, CALLER, 1.0), D1))
    assert forwarded.method == b"ACK" and forwarded.routes == [] and len(proxy.servers) == 1
    assert make_proxy().receive(ack.replace(b"Route: ", b"X-Route: "), CALLER, 0) == []

# -- stray responses and non-INVITE --------------------------------------------------------------


def test_stray_2xx_with_our_via_is_relayed_by_the_next_via_others_dropped():
    proxy = make_proxy()
    forwarded = start_invite(proxy)
    proxy.receive(answer(forwarded, 200), D1, 0.1)
    proxy.timer(100.0)  # every transaction gone
    assert proxy.servers == {}
    retransmitted = only(proxy.receive(answer(forwarded, 200), D1, 101.0), CALLER)  # via rport/received
    assert scan(retransmitted).status_code == 200
    foreign = answer(request(), 200)
    assert proxy.receive(foreign, D1, 101.0) == [] and proxy.counters["stray_responses_dropped"] == 1
    late_final = answer(forwarded, 486)  # ours, but not a 2xx: its transaction ended, the caller had its final
    assert proxy.receive(late_final, D1, 101.0) == [] and proxy.counters["stray_responses_dropped"] == 2


def test_non_invite_retransmits_with_timer_e_capped_at_t2_and_fails_over_on_fr():
    proxy = make_proxy(t2=1.0)
    actions = proxy.receive(request(method=b"MESSAGE", branch=b"z9hG4bK-m1"), CALLER, 0.0)
    assert sends(actions, CALLER) == []  # no 100 Trying for non-INVITE
    times = []
    for _ in range(20):  # bounded: a regression fails instead of spinning
        now = proxy.next_deadline()
        actions = proxy.timer(now)
        if sends(actions, D2):
            break
        times.append(now)
    assert times == [0.5, 1.5, 2.5, 3.5, 4.5] and now == FR


@pytest.mark.parametrize("name", ["unkscm", "novelsc"])
def test_options_with_an_unknown_request_uri_scheme_is_416_not_answered_as_ours(name):
    """RFC 4475 §3.3.2 / §3.3.3: an element rejects them with 416 and never routes by To."""
    proxy = make_proxy()
    data = (Path(__file__).parents[1] / "corpus" / "rfc4475" / f"{name}.dat").read_bytes()
    actions = proxy.receive(data, CALLER, 0.0)
    assert [scan(send.data).status_code for send in sends(actions)] == [416]
    assert sends(actions)[0].addr == CALLER and proxy.servers == {}


def test_from_tags_with_every_token_character_give_a_record_route_the_dialog_can_use():
    """A token may hold % and ` (RFC 4475 intmeth's tag), which a URI parameter may not."""
    tag = b"abcXYZ019-.!%*_+`'~"
    proxy = make_proxy()
    actions = proxy.receive(request().replace(b";tag=caller1", b";tag=" + tag), CALLER, 0.0)
    forwarded = scan(only(actions, D1))
    (record_route,) = forwarded.record_routes
    assert b";ftag=abcXYZ019-.!%25*_+%60'~;" in record_route
    ok = answer(forwarded.data, 200, extra=b"Record-Route: " + record_route + b"\r\n")
    relayed = scan(only(proxy.receive(ok, D1, 0.1), CALLER))
    assert relayed.status_code == 200 and relayed.record_routes == [record_route]
    bye = request(method=b"BYE", ruri=b"sip:bob@127.0.0.1:6002", branch=b"z9hG4bK-b9", cseq=2, to_tag=b"callee1",
                  extra=b"Route: " + record_route + b"\r\n").replace(b";tag=caller1", b";tag=" + tag)
    assert scan(only(proxy.receive(bye, CALLER, 1.0), D2)).method == b"BYE"
    from_callee = bye.replace(b"From: <sip:alice@127.0.0.1:5080>;tag=" + tag, b"From: <sip:bob@127.0.0.1>;tag=callee1")
    from_callee = from_callee.replace(b";tag=callee1\r\nCall-ID", b";tag=" + tag + b"\r\nCall-ID")
    from_callee = from_callee.replace(b"BYE sip:bob@127.0.0.1:6002", b"BYE sip:alice@127.0.0.1:5080")
    from_callee = from_callee.replace(b"z9hG4bK-b9", b"z9hG4bK-b10")
    assert scan(only(proxy.receive(from_callee, D1, 1.1), CALLER)).method == b"BYE"


def test_a_request_too_big_for_a_datagram_once_rewritten_is_answered_513_and_charges_nobody():
    proxy = make_proxy(max_message_bytes=65535)
    body = b"v=0\r\n" + b"a=x-padding:" + b"p" * 65150 + b"\r\n"
    big = request(extra=b"Content-Type: application/sdp\r\n").replace(
        b"Content-Length: 0\r\n\r\n", b"Content-Length: %d\r\n\r\n" % len(body)) + body
    assert len(big) <= 65507
    actions = proxy.receive(big, CALLER, 0.0)
    assert [scan(send.data).status_code for send in sends(actions, CALLER)] == [100, 513]
    assert sends(actions, D1) == sends(actions, D2) == [] and proxy.clients == {}
    assert not [a for a in actions if isinstance(a, ReportFailure)] and proxy.counters["too_large"] == 1


def test_a_message_over_the_configured_size_is_answered_513_where_its_head_reads_and_counted_as_too_large():
    proxy = make_proxy(max_message_bytes=2000)
    body = b"v=0\r\n" + b"a=x-padding:" + b"p" * 3000 + b"\r\n"
    big = request().replace(b"Content-Length: 0\r\n\r\n", b"Content-Length: %d\r\n\r\n" % len(body)) + body
    (reply,) = sends(proxy.receive(big, CALLER, 0.0), CALLER)
    assert (scan(reply.data).status_code, scan(reply.data).call_id) == (513, b"c1@u")
    assert proxy.clients == {} and proxy.counters["too_large"] == 1 and proxy.counters["parse_errors"] == 0
    big_response = answer(request(), 200).replace(b"Content-Length: 0\r\n\r\n",
                                                  b"Content-Length: %d\r\n\r\n" % len(body)) + body
    assert proxy.receive(big_response, D1, 0.1) == []  # a response is never answered
    assert proxy.counters["too_large"] == 2 and proxy.counters["parse_errors"] == 0


def test_crlf_keepalives_are_counted_apart_and_not_answered():
    proxy = make_proxy()
    for keepalive in (b"\r\n\r\n", b"\r\n", b"\0\0\0\0"):
        assert proxy.receive(keepalive, CALLER, 0.0) == []
    assert proxy.counters["keepalives"] == 3 and proxy.counters["parse_errors"] == 0
    assert proxy.receive(b"\r\nGARBAGE\r\n", CALLER, 0.0) == [] and proxy.counters["parse_errors"] == 1


def test_local_responses_fill_rport_and_received_as_relayed_ones_do():
    """RFC 3581: the caller's bare ;rport is filled in 100 Trying, 200 to OPTIONS, 483, 503 ..."""
    behind_nat = ("127.0.0.7", 40001)
    top_via = b"SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-c1;rport=40001;received=127.0.0.7"
    proxy = make_proxy()
    trying = scan(only(proxy.receive(request(), behind_nat, 0.0), behind_nat))
    assert (trying.status_code, trying.vias) == (100, [top_via])
    timed_out = proxy.timer(FR) + proxy.timer(2 * FR)
    assert scan(only(timed_out, behind_nat)).vias == [top_via]
    for message in (request(method=b"OPTIONS", ruri=b"sip:127.0.0.1:5060", branch=b"z9hG4bK-o1"),
                    request(branch=b"z9hG4bK-m0", max_forwards=0)):
        reply = scan(only(make_proxy().receive(message, behind_nat, 0.0), behind_nat))
        assert reply.vias == [top_via.replace(b"z9hG4bK-c1", reply.branch)]


def test_a_late_2xx_after_cancel_goes_where_the_invite_came_from_not_to_the_via_port():
    """The CANCEL won the race; the callee's 200 is relayed without a transaction."""
    source = ("127.0.0.1", 40002)  # the Via says 5080 and asks no rport
    invite = request().replace(b";rport\r\n", b"\r\n")
    proxy = make_proxy()
    forwarded = only(proxy.receive(invite, source, 0.0), D1)
    cancel = request(method=b"CANCEL").replace(b";rport\r\n", b"\r\n")
    assert sorted(scan(s.data).status_code for s in sends(proxy.receive(cancel, source, 0.1), source)) == [200, 487]
    late_ok = proxy.receive(answer(forwarded, 200), D1, 0.2)
    assert scan(only(late_ok, source)).status_code == 200
    retransmitted = proxy.receive(answer(forwarded, 200), D1, 0.3)  # no transaction at all by now
    assert scan(only(retransmitted, source)).status_code == 200


def test_a_branch_holds_its_destinations_in_flight_count_until_it_ends():
    """Algorithm 9 reads the count: one per live branch, given back when the branch ends."""
    proxy = make_proxy()
    in_flight = [lambda index=index: proxy.selector.table(1).add_load(index, 0) for index in (0, 1)]
    forwarded = start_invite(proxy)
    assert [count() for count in in_flight] == [1, 0]
    actions = proxy.receive(answer(forwarded, 503), D1, 0.1)  # fails over to 6002
    assert [count() for count in in_flight] == [1, 1]  # D1's branch lives on for Timer D
    proxy.receive(answer(only(actions, D2), 200), D2, 0.2)
    assert [count() for count in in_flight] == [1, 0]
    proxy.timer(0.1 + 32.0)
    assert [count() for count in in_flight] == [0, 0]


def test_a_saturated_worker_sheds_new_invites_only():
    proxy = make_proxy()
    route = record_route_of(proxy)  # a dialog set up before the worker saturated
    forwarded = only(proxy.receive(request(branch=b"z9hG4bK-c2", call_id=b"c2@u"), CALLER, 0.1), D1)  # in progress
    proxy.saturated = True
    shed = scan(only(proxy.receive(request(branch=b"z9hG4bK-new", call_id=b"new@u"), CALLER, 0.2), CALLER))
    assert (shed.status_code, shed.header_values("Retry-After")) == (503, [b"5"]) and proxy.counters["lag_rejected"] == 1
    bye = request(method=b"BYE", ruri=b"sip:bob@127.0.0.1:6002", branch=b"z9hG4bK-b1", cseq=2, to_tag=b"callee1",
                  extra=b"Route: " + route + b"\r\n")
    assert scan(only(proxy.receive(bye, CALLER, 0.3), D2)).method == b"BYE"  # in-dialog: passes
    assert scan(only(proxy.receive(answer(forwarded, 180), D1, 0.4), CALLER)).status_code == 180  # responses too

# -- the edge: scanners, trusted sources, what a failure report says ----------------------------


def trusted_proxy(action="403"):
    from fastds.dispatch.trust import TrustedSources, address_rules

    proxy = make_proxy(untrusted_action=action, block_user_agents=("friendly-scanner", "sipvicious"))
    proxy.trust = TrustedSources(address_rules([{"id": 1, "ip": "127.0.0.1", "port": 5080}])[0],
                                 destination_hosts=["127.0.0.1"])
    return proxy


def test_a_scanner_user_agent_is_dropped_silently_and_a_normal_one_passes():
    proxy = trusted_proxy()
    scanner = request(method=b"OPTIONS", ruri=b"sip:100@127.0.0.1", extra=b"User-Agent: Friendly-Scanner 2.0\r\n")
    assert proxy.receive(scanner, ("127.0.0.2", 5090), 0.0) == [] and proxy.counters["scanner_dropped"] == 1
    assert proxy.receive(request(extra=b"User-Agent: sipvicious\r\n"), CALLER, 0.0) == []
    start_invite(proxy, extra=b"User-Agent: Linphone/5.2\r\n")
    assert proxy.counters["scanner_dropped"] == 2


@pytest.mark.parametrize("action", ["403", "drop"])
def test_an_untrusted_source_is_refused_or_dropped_and_nothing_is_forwarded(action):
    proxy = trusted_proxy(action)
    stranger = ("127.0.0.2", 5080)
    actions = proxy.receive(request(), stranger, 0.0)
    if action == "403":
        reply = scan(only(actions, stranger))
        assert (reply.status_code, reply.reason) == (403, b"Forbidden (untrusted source)")
        assert proxy.counters["untrusted_rejected"] == 1
    else:
        assert actions == [] and proxy.counters["untrusted_dropped"] == 1
    assert sends(actions, D1) == sends(actions, D2) == [] and proxy.servers == {}
    start_invite(proxy)  # the trusted caller's call goes through


def test_in_dialog_requests_from_a_destination_or_with_our_route_are_not_trust_checked():
    proxy = trusted_proxy()
    route = record_route_of(proxy)
    bye = request(method=b"BYE", ruri=b"sip:alice@127.0.0.1:5080", branch=b"z9hG4bK-b2", cseq=5, to_tag=b"caller1",
                  extra=b"Route: " + route + b"\r\n")
    assert scan(only(proxy.receive(bye, ("127.0.0.9", 6001), 1.0), CALLER)).method == b"BYE"


def test_a_failure_report_says_whether_the_destination_was_answering():
    proxy = make_proxy()
    forwarded = start_invite(proxy)
    (report,) = [a for a in proxy.receive(answer(forwarded, 503), D1, 0.2) if isinstance(a, ReportFailure)]
    assert report.answering  # it answered this very request
    silent = make_proxy()
    start_invite(silent, call_id=b"c1@u")
    (report,) = [a for a in silent.timer(FR) if isinstance(a, ReportFailure)]
    assert not report.answering  # nothing from it at all
    busy = make_proxy()
    start_invite(busy, call_id=b"c1@u")
    other = start_invite(busy, now=1.0, call_id=b"c2@u", branch=b"z9hG4bK-c2")
    busy.receive(answer(other, 200), D1, 2.0)  # it answers the second call while ignoring the first
    (report,) = [a for a in busy.timer(FR) if isinstance(a, ReportFailure)]
    assert report.answering and report.reason == "timeout (no final reply)"


# -- callers on a TCP connection ---------------------------------------------------------------
TCP_CALLER = ("127.0.0.1", 5080, 7 << 40 | 1)  # (IP, port, connection id): a peer on a stream


def stream_proxy() -> Proxy:
    proxy = make_proxy(stream_sent_by={"tcp": b"127.0.0.1:5061", "tls": b"127.0.0.1:5062"})
    proxy.record_route = RecordRoute(SECRET, b"127.0.0.1:5060", {"tcp": b"127.0.0.1:5061", "tls": b"127.0.0.1:5062"})
    return proxy


def test_a_tcp_callers_invite_is_answered_on_its_connection_and_record_routed_twice():
    proxy = stream_proxy()
    invite = request().replace(b"SIP/2.0/UDP 127.0.0.1:5080", b"SIP/2.0/TCP 127.0.0.1:5080")
    actions = proxy.receive(invite, TCP_CALLER, 0.0)
    assert scan(only(actions, TCP_CALLER)).status_code == 100
    forwarded = scan(only(actions, D1))
    # the callee's side first (UDP, where it sends its requests), then the caller's (RFC 5658)
    assert [rr.split(b";lr")[0] for rr in forwarded.record_routes] == [
        b"<sip:127.0.0.1:5060", b"<sip:127.0.0.1:5061;transport=tcp"]
    assert forwarded.vias[1].startswith(b"SIP/2.0/TCP 127.0.0.1:5080")
    ringing = proxy.receive(answer(forwarded.data, 180), D1, 0.1)
    assert scan(only(ringing, TCP_CALLER)).status_code == 180
    assert scan(only(proxy.receive(answer(forwarded.data, 200), D1, 0.2), TCP_CALLER)).status_code == 200


def test_a_udp_callers_invite_keeps_one_record_route():
    forwarded = scan(only(stream_proxy().receive(request(), CALLER, 0.0), D1))
    assert len(forwarded.record_routes) == 1 and b"transport" not in forwarded.record_routes[0]


def test_the_tcp_callers_bye_pops_both_of_our_routes():
    proxy = stream_proxy()
    invite = request().replace(b"SIP/2.0/UDP 127.0.0.1:5080", b"SIP/2.0/TCP 127.0.0.1:5080")
    udp_side, tcp_side = scan(only(proxy.receive(invite, TCP_CALLER, 0.0), D1)).record_routes
    bye = request(method=b"BYE", ruri=b"sip:bob@127.0.0.1:6002", branch=b"z9hG4bK-b1", cseq=2, to_tag=b"callee1",
                  extra=b"Route: " + tcp_side + b", " + udp_side + b"\r\n")  # the caller's route set: reversed
    forwarded = scan(only(proxy.receive(bye, TCP_CALLER, 1.0), D2))
    assert forwarded.method == b"BYE" and forwarded.routes == []
    assert scan(only(proxy.receive(answer(forwarded.data, 200), D2, 1.1), TCP_CALLER)).status_code == 200


def test_the_callees_bye_goes_back_on_the_tcp_callers_connection():
    proxy = stream_proxy()
    invite = request().replace(b"SIP/2.0/UDP 127.0.0.1:5080", b"SIP/2.0/TCP 127.0.0.1:5080")
    udp_side, tcp_side = scan(only(proxy.receive(invite, TCP_CALLER, 0.0), D1)).record_routes
    assert b";fdsc=%x;" % TCP_CALLER[2] in tcp_side and b"fdsc" not in udp_side  # the caller's side names its connection
    bye = request(method=b"BYE", ruri=b"sip:alice@127.0.0.1:5070;transport=tcp", branch=b"z9hG4bK-b9", cseq=5,
                  to_tag=b"caller1", extra=b"Route: " + udp_side + b", " + tcp_side + b"\r\n")  # the callee's route set
    bye = bye.replace(b"From: <sip:alice@127.0.0.1:5080>;tag=caller1", b"From: <sip:bob@127.0.0.1>;tag=callee1")
    # on the caller's connection; the Contact's address kept, to reconnect to if it is gone
    forwarded = scan(only(proxy.receive(bye, D1, 1.0), ("127.0.0.1", 5070, TCP_CALLER[2])))
    assert forwarded.routes == [] and forwarded.vias[0].startswith(b"SIP/2.0/TCP 127.0.0.1:5061;branch=")
    forged = bye.replace(b";fdsc=%x;" % TCP_CALLER[2], b";fdsc=%x;" % (TCP_CALLER[2] + 1)).replace(b"b9", b"b8")
    # a Route naming another connection is not ours (its MAC): never followed to that connection
    assert all(len(send.addr) < 3 or send.addr[2] & 0xFFFF not in (1, 2) for send in sends(proxy.receive(forged, D1, 1.0)))


def test_in_dialog_next_hops_over_tcp_or_tls_are_dialled_never_sent_over_udp():
    proxy = stream_proxy()
    invite = proxy.receive(request(), CALLER, 0.0)
    (route,) = scan(only(invite, D1)).record_routes
    for n, (contact, hop) in enumerate(((b"sip:bob@127.0.0.1:6010;transport=tcp", dial("127.0.0.1", 6010, "tcp")),
                                        (b"sips:bob@127.0.0.1", dial("127.0.0.1", 5061, "tls")))):
        bye = request(method=b"BYE", ruri=contact, branch=b"z9hG4bK-b%d" % n, cseq=2 + n, to_tag=b"callee1",
                      extra=b"Route: " + route + b"\r\n")
        forwarded = scan(only(proxy.receive(bye, CALLER, 1.0), hop))
        assert forwarded.vias[0].split(b" ")[0] == (b"SIP/2.0/TCP" if n == 0 else b"SIP/2.0/TLS")
    ack = request(method=b"ACK", ruri=b"sip:bob@127.0.0.1:6010;transport=tcp", branch=b"z9hG4bK-a9", to_tag=b"callee1",
                  extra=b"Route: " + route + b"\r\n")
    assert scan(only(proxy.receive(ack, CALLER, 1.0), dial("127.0.0.1", 6010, "tcp"))).method == b"ACK"
    sctp = request(method=b"BYE", ruri=b"sip:bob@127.0.0.1:6010;transport=sctp", branch=b"z9hG4bK-b7", cseq=9,
                   to_tag=b"callee1", extra=b"Route: " + route + b"\r\n")
    assert scan(only(proxy.receive(sctp, CALLER, 1.0), CALLER)).status_code == 404


def tcp_destinations_proxy(**config) -> Proxy:
    """Set 1: 6001 over TCP, then 6002 over UDP; set 2: 6003 over TLS."""
    rows = [{"id": 1, "setid": 1, "destination": "sip:127.0.0.1:6001;transport=tcp"},
            {"id": 2, "setid": 1, "destination": "sip:127.0.0.1:6002"},
            {"id": 3, "setid": 2, "destination": "sips:127.0.0.1:6003"}]
    sets, problems = build_sets(rows, ALL_TRANSPORTS)
    assert not problems
    settings = dict(private_sent_by=b"127.0.0.1:5099", t1=T1, fr_timeout=FR, fr_inv_timeout=FR_INV,
                    stream_sent_by={"tcp": b"127.0.0.1:5061", "tls": b"127.0.0.1:5062"})
    settings.update(config)
    return Proxy(ProxyConfig(**settings), Selector(sets), Router((), SelectionRule.parse(1, 8, "f")),
                 BranchFactory(SECRET, "unit"),
                 RecordRoute(SECRET, b"127.0.0.1:5060", {"tcp": b"127.0.0.1:5061", "tls": b"127.0.0.1:5062"}))


TCP_D1 = dial("127.0.0.1", 6001, "tcp")


def test_a_tcp_destination_gets_the_request_over_tcp_record_routed_on_both_transports_and_not_retransmitted():
    proxy = tcp_destinations_proxy()
    forwarded = scan(only(proxy.receive(request(), CALLER, 0.0), TCP_D1))
    assert forwarded.vias[0].startswith(b"SIP/2.0/TCP 127.0.0.1:5061;branch=")
    assert [rr.split(b";lr")[0] for rr in forwarded.record_routes] == [
        b"<sip:127.0.0.1:5061;transport=tcp", b"<sip:127.0.0.1:5060"]
    assert sends(proxy.timer(T1 * 4), TCP_D1) == []  # reliable: no Timer A
    assert scan(only(proxy.receive(answer(forwarded.data, 200), TCP_D1, 0.5), CALLER)).status_code == 200
    assert not proxy.stream_clients  # the ended transaction is no longer waiting on the connection


def test_a_broken_connection_fails_over_at_once_and_reports_the_destination():
    proxy = tcp_destinations_proxy()
    proxy.receive(request(), CALLER, 0.0)
    actions = proxy.connection_failed(TCP_D1, "connect failed: refused", 0.01)  # long before any FR timer
    assert scan(only(actions, D2)).method == b"INVITE"
    (report,) = [a for a in actions if isinstance(a, ReportFailure)]
    assert (report.destination.id, report.reason, report.answering) == (1, "connect failed: refused", False)
    assert proxy.counters["connection_failovers"] == 1 and not proxy.stream_clients
    assert proxy.connection_failed(TCP_D1, "again", 0.02) == []  # nothing waits on it any more


def test_a_sips_request_uri_goes_only_to_a_tls_destination():
    proxy = tcp_destinations_proxy()
    refused = scan(only(proxy.receive(request(ruri=b"sips:+15550100@127.0.0.1"), CALLER, 0.0), CALLER))
    assert refused.status_code == 480 and b"TLS" in refused.reason  # set 1 has none
    proxy.router = Router((), SelectionRule.parse(2, 8, "f"))
    actions = proxy.receive(request(ruri=b"sips:+15550100@127.0.0.1", branch=b"z9hG4bK-c2", call_id=b"c2@u"),
                            CALLER, 1.0)
    assert scan(only(actions, dial("127.0.0.1", 6003, "tls"))).vias[0].startswith(b"SIP/2.0/TLS 127.0.0.1:5062")


def test_a_tls_callers_invite_is_record_routed_with_the_tls_listener():
    tls_caller = ("127.0.0.1", 5080, 7 << 40 | TLS_CONNECTION | 2)
    invite = request().replace(b"SIP/2.0/UDP 127.0.0.1:5080", b"SIP/2.0/TLS 127.0.0.1:5080")
    actions = stream_proxy().receive(invite, tls_caller, 0.0)
    assert scan(only(actions, tls_caller)).status_code == 100
    assert [rr.split(b";lr")[0] for rr in scan(only(actions, D1)).record_routes] == [
        b"<sip:127.0.0.1:5060", b"<sip:127.0.0.1:5062;transport=tls"]


def test_a_sips_request_uri_is_never_forwarded_over_udp():
    proxy = stream_proxy()  # UDP destinations only
    tls_caller = ("127.0.0.1", 5080, 7 << 40 | TLS_CONNECTION | 3)
    actions = proxy.receive(request(ruri=b"sips:+15550100@127.0.0.1:5061"), tls_caller, 0.0)
    refused = scan(only(actions, tls_caller))
    assert refused.status_code == 480 and b"TLS" in refused.reason and not sends(actions, D1)
    assert proxy.counters["transport_refused"] == 1 and not proxy.servers


def test_timers_d_i_j_k_are_zero_on_reliable_transports_and_keep_their_delays_on_udp():
    """RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2: a reliable transport retransmits nothing, so
    nothing is left to absorb: D, K, I and J are zero there. H and L are not (they wait for the ACK)."""
    tcp_invite = request().replace(b"SIP/2.0/UDP 127.0.0.1:5080", b"SIP/2.0/TCP 127.0.0.1:5080")
    # a UDP caller's INVITE to a TCP destination answered 486: the client (D) ends at once, the server
    # waits for the ACK (H), then keeps absorbing retransmissions for T4 (I)
    proxy = tcp_destinations_proxy()
    forwarded = scan(only(proxy.receive(request(), CALLER, 0.0), TCP_D1))
    relayed = scan(only(proxy.receive(answer(forwarded.data, 486), TCP_D1, 0.1), CALLER))
    assert relayed.status_code == 486 and proxy.clients == {} and len(proxy.servers) == 1  # Timer D: 0
    ack = request(method=b"ACK", to_tag=b"callee1")
    proxy.receive(ack, CALLER, 0.2)
    assert len(proxy.servers) == 1  # Timer I: T4 on UDP
    proxy.timer(0.2 + T4)
    assert proxy.servers == {}

    # the same from a TCP caller to a UDP destination: the server ends at the ACK (I: 0), the
    # client waits 32 s for retransmitted finals (D)
    proxy = stream_proxy()
    forwarded = scan(only(proxy.receive(tcp_invite, TCP_CALLER, 0.0), D1))
    scan(only(proxy.receive(answer(forwarded.data, 486), D1, 0.1), TCP_CALLER))
    assert len(proxy.clients) == 1 and len(proxy.servers) == 1
    proxy.receive(ack.replace(b"SIP/2.0/UDP 127.0.0.1:5080", b"SIP/2.0/TCP 127.0.0.1:5080"), TCP_CALLER, 0.2)
    assert proxy.servers == {} and len(proxy.clients) == 1
    proxy.timer(0.1 + 32.0)
    assert proxy.clients == {}

    # a non-INVITE (MESSAGE) from a TCP caller to a TCP destination answered 404: K and J are 0, both
    # end with the final
    proxy = tcp_destinations_proxy()
    message = request(method=b"MESSAGE").replace(b"SIP/2.0/UDP 127.0.0.1:5080", b"SIP/2.0/TCP 127.0.0.1:5080")
    forwarded = scan(only(proxy.receive(message, TCP_CALLER, 0.0), TCP_D1))
    assert scan(only(proxy.receive(answer(forwarded.data, 404), TCP_D1, 0.1), TCP_CALLER)).status_code == 404
    assert proxy.clients == {} and proxy.servers == {} and not proxy.stream_clients

    # over UDP on both sides the same MESSAGE keeps them: K (T4) and J (64 T1)
    proxy = make_proxy()
    forwarded = scan(only(proxy.receive(request(method=b"MESSAGE"), CALLER, 0.0), D1))
    scan(only(proxy.receive(answer(forwarded.data, 404), D1, 0.1), CALLER))
    assert len(proxy.clients) == 1 and len(proxy.servers) == 1
    proxy.timer(0.1 + T4)
    assert proxy.clients == {} and len(proxy.servers) == 1
    proxy.timer(0.1 + 64 * T1)
    assert proxy.servers == {}
