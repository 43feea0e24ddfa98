"""Forwarding rewrites and locally built messages, checked by scanning what they produce."""

import pytest

from bench.micro.messages import INVITE, OK_SDP, RINGING
from fastds._ext.sipscan import client_key_of
from fastds.sip import (
    BranchFactory,
    build_ack,
    build_cancel,
    build_response,
    forward_request,
    forward_response,
    scan,
)

OUR_RR = b"sip:127.0.0.1:5060;lr"


def forward(data, **kwargs):
    options = dict(transport=b"UDP", sent_by=b"127.0.0.1:5062", branch=b"z9hG4bKours", record_route=OUR_RR)
    options.update(kwargs)
    return forward_request(scan(data), **options)


def test_forwarded_request_pushes_via_decrements_max_forwards_and_record_routes():
    out = scan(forward(INVITE))
    assert out.vias[0] == b"SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKours"
    assert out.vias[1:] == scan(INVITE).vias
    assert out.max_forwards == 69
    assert out.record_routes == [b"<" + OUR_RR + b">"]
    assert out.body == scan(INVITE).body and out.request_uri == scan(INVITE).request_uri
    # everything else is byte-for-byte the same
    for name in ("From", "To", "Call-ID", "CSeq", "Contact", "Allow", "User-Agent"):
        assert out.header(name) == scan(INVITE).header(name)


def test_max_forwards_is_added_when_absent_and_0_is_refused():
    data = INVITE.replace(b"Max-Forwards: 70\r\n", b"")
    assert scan(forward(data)).max_forwards == 70
    with pytest.raises(ValueError):
        forward(INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: 0"))


def test_our_record_route_goes_above_existing_ones():
    data = INVITE.replace(b"CSeq: 1 INVITE\r\n", b"CSeq: 1 INVITE\r\nRecord-Route: <sip:upstream;lr>\r\n")
    assert scan(forward(data)).record_routes == [b"<" + OUR_RR + b">", b"<sip:upstream;lr>"]
    assert scan(forward(INVITE, record_route=None)).record_routes == []


def test_pop_routes_removes_only_the_top_values():
    alone = INVITE.replace(b"CSeq: 1 INVITE\r\n", b"CSeq: 1 INVITE\r\nRoute: <sip:127.0.0.1:5060;lr>\r\nRoute: <sip:next;lr>\r\n")
    assert scan(forward(alone, pop_routes=1)).routes == [b"<sip:next;lr>"]
    listed = INVITE.replace(b"CSeq: 1 INVITE\r\n", b"CSeq: 1 INVITE\r\nRoute: <sip:127.0.0.1:5060;lr>, <sip:next;lr>\r\n")
    out = forward(listed, pop_routes=1)
    assert scan(out).routes == [b"<sip:next;lr>"] and b"Route: <sip:next;lr>\r\n" in out
    with pytest.raises(ValueError):
        forward(INVITE, pop_routes=1)


@pytest.mark.parametrize("routes", [
    b"Route: <sip:a;lr>\r\nRoute: <sip:b;lr>\r\nRoute: <sip:next;lr>\r\n",  # a line each
    b"Route: <sip:a;lr>, <sip:b;lr>, <sip:next;lr>\r\n",  # one line
    b"Route: <sip:a;lr>\r\nRoute: <sip:b;lr>, <sip:next;lr>\r\n",  # the second shares a line with the next
    b"Route: <sip:a;lr>, <sip:b;lr>\r\nRoute: <sip:next;lr>\r\n",  # both on a line of their own
])
def test_two_routes_pop_however_they_are_spread_over_lines(routes):
    out = forward(INVITE.replace(b"CSeq: 1 INVITE\r\n", b"CSeq: 1 INVITE\r\n" + routes), pop_routes=2)
    assert scan(out).routes == [b"<sip:next;lr>"] and b"sip:a;" not in out and b"sip:b;" not in out
    popped_all = forward(INVITE.replace(b"CSeq: 1 INVITE\r\n", b"CSeq: 1 INVITE\r\n" + routes), pop_routes=3)
    assert scan(popped_all).routes == [] and b"\r\nRoute:" not in popped_all


def test_a_second_record_route_for_the_inbound_side_goes_below_the_first():
    data = INVITE.replace(b"CSeq: 1 INVITE\r\n", b"CSeq: 1 INVITE\r\nRecord-Route: <sip:upstream;lr>\r\n")
    out = scan(forward(data, record_route_inbound=b"sip:127.0.0.1:5060;transport=tcp;lr"))
    assert out.record_routes == [b"<" + OUR_RR + b">", b"<sip:127.0.0.1:5060;transport=tcp;lr>", b"<sip:upstream;lr>"]


def test_request_uri_rewrite_and_content_length_repair():
    out = scan(forward(INVITE, request_uri=b"sip:+4415@127.0.0.1"))
    assert out.request_uri == b"sip:+4415@127.0.0.1"
    no_length = INVITE.replace(b"Content-Length: %d\r\n" % len(scan(INVITE).body), b"")
    assert scan(forward(no_length)).content_length == len(scan(INVITE).body)


def test_body_beyond_content_length_is_not_forwarded():
    data = INVITE + b"garbage"
    assert forward(data).endswith(scan(INVITE).body)
    assert forward_response(scan(OK_SDP + b"junk")).endswith(scan(OK_SDP).body)


def test_forwarded_response_pops_our_via():
    out = scan(forward_response(scan(RINGING)))
    assert out.vias == scan(RINGING).vias[1:] and out.status_code == 180
    one_line = RINGING.replace(b";rport=5060\r\nVia: ", b";rport=5060, ")
    assert scan(forward_response(scan(one_line))).vias == scan(RINGING).vias[1:]


def test_local_response_copies_the_transaction_headers():
    request = scan(INVITE.replace(b"CSeq: 1 INVITE\r\n", b"CSeq: 1 INVITE\r\nTimestamp: 54\r\n"))
    trying = scan(build_response(request, 100))
    assert trying.status_code == 100 and trying.reason == b"Trying"
    assert trying.vias == request.vias and trying.call_id == request.call_id
    assert trying.to_tag is None and trying.header("Timestamp") == b"54" and trying.content_length == 0
    busy = scan(build_response(request, 503, to_tag=b"t1", retry_after_s=30, server=b"fastds"))
    assert busy.reason == b"Service Unavailable" and busy.to_tag == b"t1"
    assert busy.header("Retry-After") == b"30" and busy.header("Server") == b"fastds"
    assert busy.header("Timestamp") is None
    custom = scan(build_response(request, 500, b"No route to Media", to_tag=b"t2"))
    assert custom.reason == b"No route to Media"


def test_local_response_keeps_an_existing_to_tag():
    request = scan(INVITE.replace(b"To: <sip:+14155550123@127.0.0.1:5060>", b"To: <sip:b@127.0.0.1>;tag=dialog"))
    assert scan(build_response(request, 481, to_tag=b"new")).to_tag == b"dialog"


def test_cancel_and_ack_to_the_next_hop():
    sent = scan(forward(INVITE.replace(b"CSeq: 1 INVITE\r\n", b"CSeq: 1 INVITE\r\nRoute: <sip:next;lr>\r\n")))
    cancel = scan(build_cancel(sent))
    assert cancel.method == b"CANCEL" and cancel.request_uri == sent.request_uri
    assert cancel.vias == [sent.top_via] and cancel.routes == sent.routes
    assert (cancel.cseq_number, cancel.cseq_method) == (sent.cseq_number, b"CANCEL")
    assert cancel.to_tag is None and cancel.from_tag == sent.from_tag
    response = scan(b"SIP/2.0 486 Busy Here\r\n" + b"".join(
        line + b"\r\n" for line in (b"Via: " + sent.top_via, b"From: " + sent.header("From"),
                                    b"To: " + sent.header("To") + b";tag=callee", b"Call-ID: " + sent.call_id,
                                    b"CSeq: 1 INVITE", b"Content-Length: 0")) + b"\r\n")
    ack = scan(build_ack(sent, response))
    assert ack.method == b"ACK" and ack.to_tag == b"callee" and ack.branch == sent.branch
    assert ack.cseq_method == b"ACK" and ack.routes == sent.routes


def test_branches_are_unique_and_keyed():
    factory = BranchFactory(b"k1", "node1")
    branches = {factory.new() for _ in range(10_000)}
    assert len(branches) == 10_000
    branch = next(iter(branches))
    assert branch.startswith(b"z9hG4bKnode1.") and factory.is_ours(branch)
    assert BranchFactory(b"k1", "node2").is_ours(branch)
    assert not BranchFactory(b"k2", "node1").is_ours(branch)
    assert not factory.is_ours(branch[:-1] + (b"0" if branch[-1:] != b"0" else b"1"))
    assert not factory.is_ours(b"z9hG4bK-3571-1-0") and not factory.is_ours(None)
    with pytest.raises(ValueError):
        BranchFactory(b"k", "no dots.")


def test_transaction_keys():
    invite = scan(INVITE)
    ack = scan(INVITE.replace(b"INVITE sip", b"ACK sip").replace(b"CSeq: 1 INVITE", b"CSeq: 1 ACK"))
    cancel = scan(INVITE.replace(b"INVITE sip", b"CANCEL sip").replace(b"CSeq: 1 INVITE", b"CSeq: 1 CANCEL"))
    assert ack.server_key() == invite.server_key()
    assert cancel.server_key() != invite.server_key()
    assert cancel.server_key(b"INVITE") == invite.server_key()
    other_host = scan(INVITE.replace(b"SIP/2.0/UDP 127.0.0.1:5070", b"SIP/2.0/UDP 127.0.0.2:5070"))
    other_port = scan(INVITE.replace(b"SIP/2.0/UDP 127.0.0.1:5070", b"SIP/2.0/UDP 127.0.0.1:5071"))
    assert len({invite.server_key(), other_host.server_key(), other_port.server_key()}) == 3  # sent-by counts
    # RFC 2543 peers (no magic cookie): the request's identity, so a retransmission matches
    old = scan(INVITE.replace(b"branch=z9hG4bK-3571-1-0", b"branch=old2543"))
    assert old.server_key() == scan(old.data).server_key() != invite.server_key()
    assert old.server_key() != scan(old.data.replace(b"CSeq: 1 INVITE", b"CSeq: 2 INVITE")).server_key()
    ringing = scan(RINGING)
    assert ringing.client_key() == client_key_of(ringing.branch, b"INVITE")
    assert ringing.client_key() != client_key_of(ringing.branch, b"CANCEL")
    # parts are length-prefixed: moving bytes from one to the next gives another key
    assert client_key_of(b"ab", b"c") != client_key_of(b"a", b"bc")


def test_received_and_rport_are_recorded_in_the_senders_via():
    out = scan(forward(INVITE, source_ip=b"127.0.0.9", source_port=40000))
    assert out.vias[1] == b"SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-3571-1-0;rport=40000;received=127.0.0.9"
    # recorded whether or not the sender asked (force_rport): a 2xx relayed without a
    # transaction goes where the request came from, not to the Via's sent-by port
    no_rport = INVITE.replace(b";rport\r\n", b"\r\n")
    assert scan(forward(no_rport, source_ip=b"127.0.0.1", source_port=5070)).vias[1] == (
        scan(no_rport).vias[0] + b";rport=5070;received=127.0.0.1")
    spoofed = INVITE.replace(b";rport\r\n", b";received=192.0.2.1\r\n")
    assert scan(forward(spoofed, source_ip=b"127.0.0.2", source_port=6000)).vias[1].endswith(
        b";received=127.0.0.2;rport=6000")


def test_a_response_copies_every_via_however_many():
    """More lines than the writer keeps inline (64 pieces): it grows, nothing is lost."""
    extra = b"".join(b"Via: SIP/2.0/UDP 10.0.0.%d:5060;branch=z9hG4bK-%d\r\n" % (n % 250, n) for n in range(120))
    request = scan(INVITE.replace(b"Max-Forwards:", extra + b"Max-Forwards:"))
    response = scan(build_response(request, 486, to_tag=b"t9", server=b"fastds", source=("127.0.0.7", 5999)))
    assert len(response.vias) == len(request.vias) == 121
    assert response.vias[0] == request.vias[0].replace(b";rport", b";rport=5999") + b";received=127.0.0.7"
    assert response.vias[1:] == request.vias[1:] and response.to_tag == b"t9"

