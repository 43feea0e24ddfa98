"""Hypothesis: the scanner's contract holds for any input.

For any bytes, and any mutation of a valid message: scan() returns a SipMessage whose
offsets all lie inside the data, or raises SipParseError; nothing else, never a crash.
Forwarding keeps what it must (one Via more / less, Max-Forwards - 1). A crasher found
here becomes an @example.
"""

from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench.micro.messages import INVITE, OK_SDP, RINGING
from fastds.errors import SipParseError
from fastds.sip import forward_request, forward_response, parse_uri, scan

CORPUS = Path(__file__).parents[1] / "corpus"
SEEDS = [INVITE, RINGING, OK_SDP] + [path.read_bytes() for path in sorted((CORPUS / "fastds").glob("*.sip"))] + [
    (CORPUS / "rfc4475" / f"{name}.dat").read_bytes() for name in ("wsinv", "intmeth", "esc01", "escnull", "lwsdisp",
                                                                   "longreq", "semiuri", "transports", "mpart01")]
FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_offsets(message):
    n = len(message.data)
    spans = [
        (message.method_start, message.method_end), (message.ruri_start, message.ruri_end),
        (message.call_id_start, message.call_id_end), (message.cseq_method_start, message.cseq_method_end),
        (message.from_uri_start, message.from_uri_end), (message.from_tag_start, message.from_tag_end),
        (message.to_uri_start, message.to_uri_end), (message.to_tag_start, message.to_tag_end),
        (message.max_forwards_start, message.max_forwards_end), (message.via_start, message.via_end),
        (message.branch_start, message.branch_end), (message.received_start, message.received_end),
        (message.maddr_start, message.maddr_end), (message.via_host_start, message.via_host_end),
        (message.auth_user_start, message.auth_user_end),
        (message.proxy_auth_user_start, message.proxy_auth_user_end),
        (message.body_start, message.body_end), (message.headers_end, message.body_start),
    ]
    for kind in ("via", "route", "record-route", "contact"):
        for start, end, uri_start, uri_end, index in message.entry_spans(kind):
            spans += [(start, end), (uri_start, uri_end)]
            assert 0 <= index < message.n_headers
    previous_end = 0
    for index in range(message.n_headers):
        line_start, name_end, value_start, value_end, line_end = message.header_span(index)
        assert previous_end <= line_start < name_end < value_start <= value_end < line_end <= n
        previous_end = line_end
    for start, end in spans:
        assert start == -1 or 0 <= start <= end <= n, (start, end, n)
    # every accessor works on whatever was accepted
    message.headers(), message.vias, message.routes, message.contacts, message.ruri, message.auth_username
    for which in ("from", "to"):
        message.uri_of(which)


def scan_checked(data):
    try:
        message = scan(data)
    except SipParseError as exc:
        assert isinstance(exc.status_hint, int) and exc.reason
        if exc.message is not None:
            check_offsets(exc.message)
        return None
    check_offsets(message)
    return message


@FUZZ
@given(st.binary(max_size=2048))
@example(b"")
@example(b"SIP/2.0 200 OK\r\n")
@example(b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n")
def test_any_bytes(data):
    scan_checked(data)


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(("flip", "insert", "delete", "truncate", "dup_line", "special")))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 32))]
        elif op == "truncate":
            del data[at:]
        elif op == "dup_line":
            end = data.find(b"\n", at)
            if end > 0:
                data[at:at] = data[at:end + 1]
        else:
            data[at:at] = draw(st.sampled_from((b"\r\n", b"\r\n ", b",", b";", b"<", b">", b"\"", b"\\", b"\x00",
                                                 b"[", b"]", b":", b"%", b"@", b"=", b"99999999999", b"-1")))
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_valid_messages(data):
    scan_checked(data)


@FUZZ
@given(mutated())
@example(  # found by hypothesis: a lower Via's malformed rport became the top one once ours was popped
    data=b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa\r\n"
         b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKb;rport=%070\r\nFrom: <sip:a@h>;tag=1\r\n"
         b"To: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
def test_forwarding_whatever_scans(data):
    message = scan_checked(data)
    if message is None:
        return
    if message.is_request and message.max_forwards != 0:
        out = scan(forward_request(message, transport=b"UDP", sent_by=b"127.0.0.1:5062", branch=b"z9hG4bKp",
                                   record_route=b"sip:127.0.0.1;lr"))
        assert out.vias[0] == b"SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKp"
        assert out.vias[1:] == message.vias
        assert out.max_forwards == (70 if message.max_forwards < 0 else message.max_forwards - 1)
        assert out.body == message.body
    elif not message.is_request and len(message.vias) > 1:
        out = scan(forward_response(message))
        assert out.vias == message.vias[1:] and out.body == message.body


@FUZZ
@given(st.binary(max_size=300) | st.sampled_from([b"sip:a@[::1]:5", b"sips:u:p@h;x?y=z", b"tel:+1;a=b"]))
def test_uri_parser(data):
    try:
        uri = parse_uri(data)
    except SipParseError:
        return
    for part in (uri.user, uri.password, uri.host, uri.params, uri.headers):
        assert part is None or part in data


TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~", min_size=1, max_size=12)


@settings(max_examples=500, deadline=None)
@given(call_id=TOKEN, branch=TOKEN, tag=TOKEN, cseq=st.integers(0, 2**31 - 1), max_forwards=st.integers(0, 255),
       compact=st.booleans(), extra=st.lists(st.tuples(TOKEN, TOKEN), max_size=20), body=st.binary(max_size=300),
       order=st.randoms())
def test_generated_valid_requests_read_back(call_id, branch, tag, cseq, max_forwards, compact, extra, body, order):
    headers = [
        (b"v" if compact else b"Via") + b": SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK" + branch.encode(),
        (b"f" if compact else b"From") + b": <sip:a@127.0.0.1>;tag=" + tag.encode(),
        (b"t" if compact else b"To") + b": <sip:b@127.0.0.1>",
        (b"i" if compact else b"Call-ID") + b": " + call_id.encode(),
        b"CSeq: %d OPTIONS" % cseq,
        b"Max-Forwards: %d" % max_forwards,
        (b"l" if compact else b"Content-Length") + b": %d" % len(body),
    ] + [b"X-" + name.encode() + b": " + value.encode() for name, value in extra]
    order.shuffle(headers)
    data = b"OPTIONS sip:b@127.0.0.1 SIP/2.0\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body
    message = scan(data, max_headers=64)
    assert message.call_id == call_id.encode() and message.branch == b"z9hG4bK" + branch.encode()
    assert message.from_tag == tag.encode() and message.cseq_number == cseq
    assert message.max_forwards == max_forwards and message.body == body
    check_offsets(message)
