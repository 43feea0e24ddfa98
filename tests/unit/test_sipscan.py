"""What the scanner reads out of a message: offsets and values, header by header."""

from pathlib import Path

import pytest

import fastds._ext.sipscan as sipscan_module
from bench.micro.messages import INVITE, OK_SDP, RINGING
from fastds.errors import SipParseError
from fastds.sip import parse_uri, scan

CORPUS = Path(__file__).parents[1] / "corpus"


def torture(name):
    for folder in ("rfc4475", "rfc5118"):
        path = CORPUS / folder / f"{name}.dat"
        if path.exists():
            return path.read_bytes()
    return (CORPUS / "fastds" / f"{name}.sip").read_bytes()


def test_the_imported_scanner_is_the_compiled_extension():
    assert Path(sipscan_module.__file__).suffix in (".so", ".pyd")
    assert not Path(sipscan_module.__file__).with_suffix(".py").exists()
    assert type(scan).__name__ in ("cython_function_or_method", "builtin_function_or_method")


def test_typical_invite():
    m = scan(INVITE)
    assert m.is_request and m.method == b"INVITE" and m.request_uri == b"sip:+14155550123@127.0.0.1:5060"
    assert m.call_id == b"1-3571@127.0.0.1"
    assert (m.cseq_number, m.cseq_method) == (1, b"INVITE")
    assert m.from_uri == b"sip:+12125550100@127.0.0.1:5070" and m.from_tag == b"3571SIPpTag001"
    assert m.to_uri == b"sip:+14155550123@127.0.0.1:5060" and m.to_tag is None
    assert m.max_forwards == 70 and m.data[m.max_forwards_start:m.max_forwards_end] == b"70"
    assert m.branch == b"z9hG4bK-3571-1-0" and m.rport == -1 and m.received is None
    assert m.via_transport == b"UDP" and m.via_host == b"127.0.0.1" and m.via_port == 5070
    assert m.content_length == len(m.body) and m.body.startswith(b"v=0\r\n")
    assert m.contacts == [b"<sip:+12125550100@127.0.0.1:5070;transport=udp>"]
    ruri = m.ruri
    assert (ruri.kind, ruri.user, ruri.host, ruri.port) == ("sip", b"+14155550123", b"127.0.0.1", 5060)


def test_responses():
    m = scan(RINGING)
    assert not m.is_request and m.status_code == 180 and m.reason == b"Ringing" and m.method is None
    assert len(m.vias) == 2 and m.rport == 5060
    assert m.to_tag == b"7781SIPpTag011"
    assert m.record_routes == [b"<sip:127.0.0.1:5060;lr;ftag=3571SIPpTag001;fds=9f2e>"]
    assert scan(OK_SDP).body_end == len(OK_SDP)


def test_wsinv_folding_and_odd_whitespace():
    m = scan(torture("wsinv"))
    assert m.max_forwards == 68 and m.cseq_number == 9 and m.cseq_method == b"INVITE"
    assert m.to_uri == b"sip:vivekg@chair-dnrc.example.com" and m.to_tag == b"1918181833n"
    assert m.from_tag == b"98asjd8"
    assert m.branch == b"390skdjuw" and m.via_host == b"192.0.2.2"
    assert len(m.vias) == 3
    assert m.header("NewFangledHeader") == b"newfangled value continued newfangled value"
    assert m.header("UnknownHeaderWithUnusualValue") == b";;,,;;,;"
    assert m.routes == [b"<sip:services.example.com;lr;unknownwith=value;unknown-no-value>"]
    assert m.header("s") == b"" and m.header("subject") == b""


def test_compact_forms_match_long_names():
    m = scan(torture("compact_forms"))
    assert m.header("Call-ID") == m.header("i") == b"c2@127.0.0.1"
    assert m.header("supported") == b"timer" and m.header("Content-Type") == b"application/sdp"
    assert m.contacts == [b"<sip:alice@127.0.0.1:5070>"]
    assert m.content_length == 5


def test_folded_values_are_unfolded_on_access():
    m = scan(torture("folded_headers"))
    assert m.header("Subject") == b"a long subject"
    assert m.via_host == b"127.0.0.1" and m.branch == b"z9hG4bK-c-3"
    assert m.cseq_method == b"INVITE" and m.from_tag == b"f1"


def test_several_vias_in_one_line_and_many_lines():
    one = scan(torture("vias_one_line"))
    assert one.vias == [b"SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-a", b"SIP/2.0/TCP 127.0.0.2;branch=z9hG4bK-b",
                        b"SIP/2.0/UDP [::1]:5062;branch=z9hG4bK-c"]
    assert one.branch == b"z9hG4bK-a"
    many = scan(torture("vias_many_lines"))
    branches = [v.split(b"branch=")[1].split(b";")[0] for v in many.vias]
    assert branches == [b"z9hG4bK-c-1", b"z9hG4bK-b", b"z9hG4bK-c", b"z9hG4bK-d"]
    assert len(many.header_values("via")) == 3


def test_ipv6_hosts_rfc5118():
    m = scan(torture("ipv6_hosts"))
    assert m.via_host == b"[2001:db8::2]" and m.via_port == 5070 and m.received == b"2001:db8::3"
    assert m.ruri.host == b"[2001:db8::1]" and m.ruri.port == 5060
    ambiguous = scan(torture("port-ambiguous")).ruri
    assert ambiguous.host == b"[2001:db8::10:5070]" and ambiguous.port == 0
    assert scan(torture("port-unambiguous")).ruri.port == 5070
    assert scan(torture("via-received-param-no-delim")).branch == b"z9hG4bKas3"
    assert scan(torture("ipv4-mapped-ipv6")).via_host == b"[::ffff:192.0.2.10]"
    assert len(scan(torture("mult-ip-in-header")).vias) == 3


def test_uri_parts():
    uri = parse_uri(b"sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=hi&x=1")
    assert (uri.kind, uri.user, uri.password, uri.host, uri.port) == ("sips", b"alice", b"secret", b"[2001:db8::1]", 5061)
    assert uri.params == b"transport=tcp;lr" and uri.headers == b"subject=hi&x=1"
    assert uri.param("transport") == b"tcp" and uri.param("lr") == b"" and uri.param("maddr") is None
    tel = parse_uri(b"tel:+1-201-555-0123;phone-context=example.com")
    assert tel.kind == "tel" and tel.user == b"+1-201-555-0123" and tel.host is None
    assert parse_uri(b"urn:service:sos").kind == "other"
    semi = scan(torture("semiuri")).ruri
    assert semi.user == b"user;par=u%40example.net" and semi.host == b"example.com"
    assert scan(torture("esc01")).ruri.user == b"sips%3Auser%40example.com"


@pytest.mark.parametrize("bad", [b"sip:", b"sip:@host", b"sip:a@", b"sip:host:0", b"sip:host:99999", b"sip:[::1",
                                 b"sip:a b@host", b"sip:%4@host", b"<sip:a@b>", b"1sip:a@b", b"sip:host;p=%zz"])
def test_malformed_uris(bad):
    with pytest.raises(SipParseError):
        parse_uri(bad)


def test_auth_usernames():
    m = scan(torture("proxy_auth"))
    assert m.auth_username == b"bob"
    assert scan(torture("regaut01")).auth_username is None


def test_udp_content_length_rules():
    longer = scan(torture("body_longer"))
    assert longer.body == b"v=0" and longer.body_end < len(longer.data)
    assert scan(torture("no_content_length_udp")).body == b"v=0\r\n"
    dblreq = scan(torture("dblreq"))
    assert dblreq.body == b"" and dblreq.method == b"REGISTER"


def test_partial_message_rides_on_a_400():
    with pytest.raises(SipParseError) as info:
        scan(torture("insuf"))
    assert info.value.status_hint == 400
    partial = info.value.message
    assert partial.branch == b"z9hG4bKkdj.insuf" and partial.idx_cseq >= 0 and partial.idx_from == -1


def test_505_for_another_sip_version():
    with pytest.raises(SipParseError) as info:
        scan(torture("badvers"))
    assert info.value.status_hint == 505


def test_header_spans_and_lookup_by_any_case():
    m = scan(INVITE)
    (line_start, name_end, value_start, value_end, line_end), = m.header_spans("CALL-id")
    assert m.data[line_start:name_end] == b"Call-ID" and m.data[value_start:value_end] == b"1-3571@127.0.0.1"
    assert m.data[line_end - 2:line_end] == b"\r\n"
    assert m.header("x-missing") is None and m.header_values("user-agent") == [b"SIPp/3.7"]
    assert m.n_headers == len(m.headers()) == 13


def test_limits_are_parameters():
    with pytest.raises(SipParseError):
        scan(INVITE, max_bytes=len(INVITE) - 1)
    with pytest.raises(SipParseError):
        scan(INVITE, max_headers=12)
    assert scan(INVITE, max_bytes=len(INVITE), max_headers=13)


def test_first_value_cut():
    one = scan(torture("vias_one_line"))
    start, stop = one.first_value_cut("via")
    assert one.data[start:stop] == b"SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-a, "
    many = scan(torture("vias_many_lines"))
    start, stop = many.first_value_cut("via")
    assert many.data[start:stop] == b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-c-1;rport\r\n"
    assert many.first_value_cut("route") is None


def routed(ruri: bytes, *routes: bytes):
    data = INVITE.replace(b"INVITE sip:+14155550123@127.0.0.1:5060 ", b"INVITE " + ruri + b" ")
    return scan(data.replace(b"Max-Forwards:", b"".join(b"Route: <%s>\r\n" % r for r in routes) + b"Max-Forwards:"))


def test_next_hop_is_the_next_route_else_the_request_uri_with_its_transport():
    message = routed(b"sip:bob@10.0.0.9", b"sip:127.0.0.1;lr", b"sip:[::1]:5070;lr;transport=TCP")
    assert message.next_hop(0) == ("127.0.0.1", 5060, "udp")
    assert message.next_hop(1) == ("::1", 5070, "tcp")
    assert message.next_hop(2) == ("10.0.0.9", 5060, "udp")
    assert routed(b"sips:bob@10.0.0.9").next_hop(0) == ("10.0.0.9", 5061, "tls")  # never anything but TLS
    assert routed(b"sip:bob@10.0.0.9;transport=tls").next_hop(0) == ("10.0.0.9", 5061, "tls")
    assert routed(b"sip:bob@10.0.0.9:5999;transport=").next_hop(0) == ("10.0.0.9", 5999, "udp")
    assert routed(b"sip:bob@10.0.0.9;transport=sctp").next_hop(0) is None  # a transport fastds has not
    assert routed(b"sip:bob@example.com").next_hop(0) is None  # a name: workers do no DNS
    assert routed(b"tel:+14155550123").next_hop(0) is None
    assert routed(b"sip:bob@10.0.0.9;maddr=10.0.0.1").next_hop(0) == ("10.0.0.9", 5060, "udp")  # maddr not followed


def test_ip_literal():
    for host in (b"127.0.0.1", b"::1", b"[::1]", b"2001:db8::10", b"::ffff:192.0.2.1"):
        assert sipscan_module.ip_literal(host), host
    for host in (b"example.com", b"1.2.3", b"256.0.0.1", b"[::1", b"", b"::1::2"):
        assert not sipscan_module.ip_literal(host), host


def test_has_header_matches_names_and_compact_forms_case_insensitively():
    message = scan(INVITE.replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\nproxy-REQUIRE: foo\r\nX-Odd: 1\r\n"))
    assert message.has_header(b"Proxy-Require") and message.has_header(b"x-odd") and message.has_header(b"v")
    assert not message.has_header(b"Require") and not message.has_header(b"X-Od") and not scan(INVITE).has_header(b"X-Odd")
