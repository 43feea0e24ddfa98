"""Messages fastds builds itself: local responses (RFC 3261 §8.2.6, §16.7 step 10), the
hop-by-hop CANCEL (§9.1) and ACK for a non-2xx final response (§17.1.1.3), and probes.

Owns the copying rules: which header lines are copied from which message. Lines are
copied as they were received (compact forms and all), never re-serialised. Sans-IO.
"""

from __future__ import annotations

from fastds._ext.sipscan import SipMessage
from fastds.sip.rewrite import received_rport_edits, splice
from fastds.sip.status import reason_for


def _line(msg: SipMessage, index: int) -> bytes:
    """Header line `index` of msg, as received, ending in CRLF."""
    line_start, _, _, value_end, _ = msg.header_span(index)
    return msg.data[line_start:value_end] + b"\r\n"


def _lines(msg: SipMessage, name: str) -> list[bytes]:
    data = msg.data
    return [data[line_start:value_end] + b"\r\n" for line_start, _, _, value_end, _ in msg.header_spans(name)]


def build_response(
    request: SipMessage,
    code: int,
    reason: bytes | None = None,
    *,
    to_tag: bytes | None = None,
    server: bytes | None = None,
    retry_after_s: int | None = None,
    extra_headers: bytes = b"",
    source: tuple[str, int] | None = None,
) -> bytes:
    """A response to `request` built by fastds itself (§8.2.6.2).

    Every Via, From, To, Call-ID and CSeq are copied; To gets `to_tag` when it has no
    tag and the code is above 100; a 100 copies Timestamp (§8.2.6.1). Works on the
    partial message of a SipParseError too: missing headers are just not copied.
    extra_headers: complete header lines (each ending in CRLF), e.g. Unsupported for a 420.
    source: where the request came from, recorded in the top Via as received and rport
    (RFC 3581), as in the responses fastds relays.
    """
    parts = [b"SIP/2.0 %d %s\r\n" % (code, reason if reason is not None else reason_for(code))]
    vias = _lines(request, "via")
    if source is not None and request.via_start >= 0:
        line_start, _, _, value_end, _ = request.header_span(request.idx_first_via)
        edits = received_rport_edits(request, source[0].encode(), source[1])
        vias[0] = splice(request.data, edits, value_end, line_start) + b"\r\n"
    parts += vias
    if request.idx_from >= 0:
        parts.append(_line(request, request.idx_from))
    if request.idx_to >= 0:
        to = _line(request, request.idx_to)
        if code > 100 and request.to_tag_start < 0 and to_tag:
            to = to[:-2] + b";tag=" + to_tag + b"\r\n"
        parts.append(to)
    if request.idx_call_id >= 0:
        parts.append(_line(request, request.idx_call_id))
    if request.idx_cseq >= 0:
        parts.append(_line(request, request.idx_cseq))
    if code == 100:
        parts += _lines(request, "timestamp")
    if retry_after_s is not None:
        parts.append(b"Retry-After: %d\r\n" % retry_after_s)
    if server:
        parts.append(b"Server: %s\r\n" % server)
    parts.append(extra_headers)
    parts.append(b"Content-Length: 0\r\n\r\n")
    return b"".join(parts)


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
