"""Byte-splicing rewrites of a scanned message for forwarding (RFC 3261 §16.6, §16.7).

Owns: the forwarded request (push our Via, decrement or add Max-Forwards, add our
Record-Route -- two when the request changes transport, RFC 5658 -- pop our Routes,
optionally a new Request-URI) and the forwarded response
(pop our Via). Never re-serialises: the output is slices of the input with a few
inserted lines. Sans-IO: no sockets, no clock, no environment. Whether a Route or Via
is ours is the caller's decision (fastds/sip/branch.py signs and checks them).
"""

from __future__ import annotations

from operator import itemgetter

from fastds._ext.sipscan import SipMessage

_START = itemgetter(0)


def splice(data: bytes, edits: list[tuple[int, int, bytes]], end: int, begin: int = 0) -> bytes:
    """data[begin:end] with each (start, stop, replacement) applied; edits at one
    position keep their list order; edits must not overlap."""
    parts = []
    append = parts.append
    pos = begin
    for start, stop, replacement in sorted(edits, key=_START):
        append(data[pos:start])
        append(replacement)
        pos = stop
    append(data[pos:end])
    return b"".join(parts)


def via_line(transport: bytes, sent_by: bytes, branch: bytes) -> bytes:
    return b"Via: SIP/2.0/%s %s;branch=%s\r\n" % (transport, sent_by, branch)


def forward_request(
    msg: SipMessage,
    *,
    transport: bytes,
    sent_by: bytes,
    branch: bytes,
    record_route: bytes | None = None,
    record_route_inbound: bytes | None = None,
    pop_routes: int = 0,
    request_uri: bytes | None = None,
    source_ip: bytes | None = None,
    source_port: int = 0,
) -> bytes:
    """The request as fastds forwards it.

    sent_by: host:port of the socket it leaves from; branch: a fresh z9hG4bK branch;
    record_route: the URI to record-route with (without <>), None for no Record-Route;
    record_route_inbound: a second one, below it, for the side the request came from when
    that is another transport (RFC 5658 double Record-Route), None for one;
    pop_routes: how many of the top Route values to remove (the caller checked they are ours);
    request_uri: a new Request-URI (dialplan rewrite), None to keep it;
    source_ip / source_port: where the request came from, recorded in the sender's Via
    as received and rport (received_rport_edits) so that responses and stray 2xx
    retransmissions find their way back through NAT.
    Max-Forwards must be above 0 (the caller answers 483 otherwise).
    """
    data = msg.data
    if msg.max_forwards == 0:
        raise ValueError("Max-Forwards is 0: answer 483, do not forward")
    via_at = msg.header_span(msg.idx_first_via)[0]
    edits = []
    if request_uri is not None:
        edits.append((msg.ruri_start, msg.ruri_end, request_uri))
    if source_ip is not None:
        edits += received_rport_edits(msg, source_ip, source_port)
    edits.append((via_at, via_at, via_line(transport, sent_by, branch)))
    if msg.max_forwards > 0:
        edits.append((msg.max_forwards_start, msg.max_forwards_end, b"%d" % (msg.max_forwards - 1)))
    else:
        edits.append((via_at, via_at, b"Max-Forwards: 70\r\n"))  # §16.6 step 3
    if record_route is not None:
        # a new Record-Route line above the existing ones puts ours first (§16.6 step 4)
        rr_at = msg.header_span(msg.idx_first_record_route)[0] if msg.idx_first_record_route >= 0 else via_at
        edits.append((rr_at, rr_at, b"Record-Route: <%s>\r\n" % record_route))
        if record_route_inbound is not None:
            edits.append((rr_at, rr_at, b"Record-Route: <%s>\r\n" % record_route_inbound))
    if pop_routes:
        edits += route_cuts(msg, pop_routes)
    if msg.content_length < 0:
        # needed if the next hop is reached over a stream transport (§20.14)
        edits.append((msg.headers_end, msg.headers_end, b"Content-Length: %d\r\n" % (msg.body_end - msg.body_start)))
    return splice(data, edits, msg.body_end)


def route_cuts(msg: SipMessage, count: int) -> list[tuple[int, int, bytes]]:
    """The edits that remove the top `count` Route values: a header line whose values all go
    is removed whole, else its leading values and the commas after them."""
    if count == 1:  # nearly every in-dialog request: the scanner cuts one value itself
        cut = msg.first_value_cut("route")
        if cut is None:
            raise ValueError("pop_routes: the request has 0 Route values, not 1")
        return [(cut[0], cut[1], b"")]
    routes = msg.entry_spans("route")
    if len(routes) < count:
        raise ValueError(f"pop_routes: the request has {len(routes)} Route values, not {count}")
    edits = []
    for at, (start, _, _, _, header_index) in enumerate(routes[:count]):
        if at > 0 and routes[at - 1][4] == header_index:
            continue  # cut with the first removed value of its line
        line_values = [route for route in routes if route[4] == header_index]
        removed = sum(1 for route in routes[:count] if route[4] == header_index)
        if removed == len(line_values):
            line_start, _, _, _, line_end = msg.header_span(header_index)
            edits.append((line_start, line_end, b""))
        else:
            edits.append((start, line_values[removed][0], b""))
    return edits


def received_rport_edits(msg: SipMessage, source_ip: bytes, source_port: int) -> list[tuple[int, int, bytes]]:
    """The edits that record where `msg` came from in its top Via: received=IP and
    rport=PORT, filled in or replaced, whether or not the sender asked for rport (as
    Kamailio's force_rport): a response relayed without a transaction then goes where the
    request came from (RFC 3581 §4), as the stateful path sends it."""
    edits = []
    if msg.rport_param_start >= 0:
        edits.append((msg.rport_param_start, msg.rport_param_end, b"rport=%d" % source_port))
    else:
        edits.append((msg.via_end, msg.via_end, b";rport=%d" % source_port))
    if msg.received_start >= 0:
        edits.append((msg.received_start, msg.received_end, source_ip))
    else:
        edits.append((msg.via_end, msg.via_end, b";received=" + source_ip))
    return edits


def forward_response(msg: SipMessage) -> bytes:
    """The response as fastds relays it upstream: our top Via removed (§16.7 step 3).
    A body longer than Content-Length is cut to it (§18.3)."""
    start, stop = msg.first_value_cut("via")
    return splice(msg.data, [(start, stop, b"")], msg.body_end)
