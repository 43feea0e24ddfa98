"""Typical messages of one call, as a softswitch or SIPp sends them (for the micro-benchmarks)."""

SDP = (
    b"v=0\r\n"
    b"o=- 3957383910 3957383910 IN IP4 127.0.0.1\r\n"
    b"s=-\r\n"
    b"c=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\n"
    b"m=audio 16384 RTP/AVP 0 8 18 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:18 G729/8000\r\n"
    b"a=fmtp:18 annexb=no\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)


def _msg(start_line: bytes, headers: list[bytes], body: bytes = b"") -> bytes:
    return start_line + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + (
        b"Content-Length: %d\r\n\r\n" % len(body)) + body


INVITE = _msg(b"INVITE sip:+14155550123@127.0.0.1:5060 SIP/2.0", [
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-3571-1-0;rport",
    b"Max-Forwards: 70",
    b'From: "Alice Caller" <sip:+12125550100@127.0.0.1:5070>;tag=3571SIPpTag001',
    b"To: <sip:+14155550123@127.0.0.1:5060>",
    b"Call-ID: 1-3571@127.0.0.1",
    b"CSeq: 1 INVITE",
    b"Contact: <sip:+12125550100@127.0.0.1:5070;transport=udp>",
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, INFO, REFER, NOTIFY",
    b"Supported: replaces, timer, 100rel",
    b"Session-Expires: 1800;refresher=uac",
    b"User-Agent: SIPp/3.7",
    b"Content-Type: application/sdp",
], SDP)

RINGING = _msg(b"SIP/2.0 180 Ringing", [
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKfds.0a1b2c3d4e5f.7a2c;rport=5060",
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-3571-1-0;rport=5070;received=127.0.0.1",
    b"Record-Route: <sip:127.0.0.1:5060;lr;ftag=3571SIPpTag001;fds=9f2e>",
    b'From: "Alice Caller" <sip:+12125550100@127.0.0.1:5070>;tag=3571SIPpTag001',
    b"To: <sip:+14155550123@127.0.0.1:5060>;tag=7781SIPpTag011",
    b"Call-ID: 1-3571@127.0.0.1",
    b"CSeq: 1 INVITE",
    b"Contact: <sip:127.0.0.1:5080;transport=UDP>",
])

OK_SDP = _msg(b"SIP/2.0 200 OK", [
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKfds.0a1b2c3d4e5f.7a2c;rport=5060",
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-3571-1-0;rport=5070;received=127.0.0.1",
    b"Record-Route: <sip:127.0.0.1:5060;lr;ftag=3571SIPpTag001;fds=9f2e>",
    b'From: "Alice Caller" <sip:+12125550100@127.0.0.1:5070>;tag=3571SIPpTag001',
    b"To: <sip:+14155550123@127.0.0.1:5060>;tag=7781SIPpTag011",
    b"Call-ID: 1-3571@127.0.0.1",
    b"CSeq: 1 INVITE",
    b"Contact: <sip:127.0.0.1:5080;transport=UDP>",
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS",
    b"Supported: timer",
    b"Session-Expires: 1800;refresher=uac",
    b"Content-Type: application/sdp",
], SDP.replace(b"16384", b"20000"))
