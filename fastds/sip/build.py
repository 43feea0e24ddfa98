"""The rarer messages fastds builds itself: the hop-by-hop CANCEL (RFC 3261 §9.1) and ACK
for a non-2xx final response (§17.1.1.3), and probes. Local responses, on every call's path,
are written in C (build_response in ext/sipwrite.pyx).

Owns which header lines these copy from which message. Lines are copied as they were received
(compact forms and all), never re-serialised. Sans-IO.
"""

from __future__ import annotations

from fastds._ext.sipscan import SipMessage


def _line(msg: SipMessage, index: int) -> bytes:
    """Header line `index` of msg, as received, ending in CRLF."""
    line_start, _, _, value_end, _ = msg.header_span(index)
    return msg.data[line_start:value_end] + b"\r\n"


def _lines(msg: SipMessage, name: str) -> list[bytes]:
    data = msg.data
    return [data[line_start:value_end] + b"\r\n" for line_start, _, _, value_end, _ in msg.header_spans(name)]


def _hop_request(sent: SipMessage, method: bytes, to: bytes) -> bytes:
    """CANCEL / ACK to the hop `sent` went to: same Request-URI, top Via (so the same
    branch), Route set, From, Call-ID and CSeq number (§9.1, §17.1.1.3)."""
    parts = [
        b"%s %s SIP/2.0\r\n" % (method, sent.request_uri),
        b"Via: %s\r\n" % sent.top_via,
        *_lines(sent, "route"),
        b"Max-Forwards: 70\r\n",
        _line(sent, sent.idx_from),
        to,
        _line(sent, sent.idx_call_id),
        b"CSeq: %d %s\r\n" % (sent.cseq_number, method),
        b"Content-Length: 0\r\n\r\n",
    ]
    return b"".join(parts)


def build_cancel(sent: SipMessage) -> bytes:
    """CANCEL for the INVITE `sent` (the request as fastds sent it, our Via on top)."""
    return _hop_request(sent, b"CANCEL", _line(sent, sent.idx_to))


def build_ack(sent: SipMessage, response: SipMessage) -> bytes:
    """ACK for a non-2xx final `response` to the INVITE `sent`; To comes from the
    response, so it carries the tag the next hop chose (§17.1.1.3)."""
    return _hop_request(sent, b"ACK", _line(response, response.idx_to))


def build_probe(method: bytes, uri: bytes, *, sent_by: bytes, branch: bytes, from_uri: bytes, from_tag: bytes,
                call_id: bytes, cseq: int, transport: bytes = b"UDP") -> bytes:
    """The health probe sent to a destination (OPTIONS by default, as OpenSIPS ds_ping_method) over
    `transport` (UDP, TCP, TLS: its Via's)."""
    return (b"%s %s SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=%s\r\nMax-Forwards: 70\r\n"
            b"From: <%s>;tag=%s\r\nTo: <%s>\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContent-Length: 0\r\n\r\n"
            % (method, uri, transport, sent_by, branch, from_uri, from_tag, uri, call_id, cseq, method))
