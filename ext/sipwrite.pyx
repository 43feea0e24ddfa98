# cython: language_level=3, boundscheck=False, wraparound=False
"""Messages written from a scanned one in C: the forwarded request and response (RFC 3261
§16.6, §16.7) and fastds's own responses (§8.2.6).

Owns the byte splicing: a message out is a list of pieces -- spans of the scanned message's
bytes, our literals and the caller's bytes -- joined into one new bytes object, its only
allocation. Never re-serialises: lines go out as they were received (compact forms and all).
Forwarded request: push our Via, decrement or add Max-Forwards, add our Record-Route (two when
the request changes transport, RFC 5658), pop our Routes, optionally a new Request-URI, record
received/rport in the sender's Via. Forwarded response: pop our Via. Whether a Route or Via is
ours is the caller's decision (ext/marks.pyx signs and checks them). The rarer messages
fastds builds (CANCEL, ACK, probes) are fastds/sip/build.py's. Sans-IO.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from fastds._ext.sipscan cimport H_ROUTE, H_TIMESTAMP, H_VIA, HeaderEntry, SipMessage

from fastds.sip.status import reason_for

cdef enum:
    EDIT_PIECES = 7   # the most pieces one edit inserts (our Via line)
    MAX_EDITS = 16    # a forwarded request makes at most 11
    INLINE_PIECES = 64
    NUMBER = 24       # room for a formatted number


cdef struct Piece:
    const char *p
    Py_ssize_t n


cdef struct Pieces:  # what a message is joined from, in order; grows past INLINE_PIECES on the heap
    Piece *items
    int n, cap
    Py_ssize_t size
    Piece inline_items[INLINE_PIECES]


cdef struct Edit:  # data[start:stop] replaced with the pieces; edits at one position keep their order
    int start, stop, n
    Piece pieces[EDIT_PIECES]


cdef inline void pieces_init(Pieces *out) noexcept:
    out.items, out.n, out.cap, out.size = out.inline_items, 0, INLINE_PIECES, 0


cdef int push(Pieces *out, const char *p, Py_ssize_t n) except -1:
    cdef Piece *grown
    if n <= 0:
        return 0
    if out.n == out.cap:
        grown = <Piece *>malloc(2 * out.cap * sizeof(Piece))
        if grown is NULL:
            raise MemoryError()
        memcpy(grown, out.items, out.n * sizeof(Piece))
        if out.items is not out.inline_items:
            free(out.items)
        out.items, out.cap = grown, 2 * out.cap
    out.items[out.n].p, out.items[out.n].n = p, n
    out.n += 1
    out.size += n
    return 0


cdef inline int push_bytes(Pieces *out, bytes value) except -1:
    return push(out, PyBytes_AS_STRING(value), len(value))


cdef bytes join(Pieces *out):
    """The pieces as one bytes object; frees what push() allocated."""
    cdef bytes result
    cdef char *at
    cdef int i
    try:
        result = PyBytes_FromStringAndSize(NULL, out.size)
        at = PyBytes_AS_STRING(result)
        for i in range(out.n):
            memcpy(at, out.items[i].p, out.items[i].n)
            at += out.items[i].n
        return result
    finally:
        if out.items is not out.inline_items:
            free(out.items)
        out.items = out.inline_items


cdef struct Splice:  # the edits of one message (on the stack), applied to its bytes by apply()
    Edit edits[MAX_EDITS]
    int n
    char numbers[4][NUMBER]
    int n_numbers


cdef Edit *edit(Splice *cuts, int start, int stop) except NULL:
    if cuts.n == MAX_EDITS:
        raise ValueError("too many edits for one message")
    cdef Edit *e = &cuts.edits[cuts.n]
    e.start, e.stop, e.n = start, stop, 0
    cuts.n += 1
    return e


cdef const char *number(Splice *cuts, long long value, Py_ssize_t *n) except NULL:
    """value in decimal, in a buffer that lives as long as the Splice."""
    if cuts.n_numbers == 4:
        raise ValueError("too many numbers for one message")
    cdef char *at = cuts.numbers[cuts.n_numbers]
    cuts.n_numbers += 1
    n[0] = decimal(at, value)
    return at


cdef Py_ssize_t decimal(char *out, long long value) noexcept:
    """value in decimal into out (20 digits and a sign at most); its length. Not snprintf:
    its format parsing cost ~640 instructions per number, ten numbers a call."""
    cdef char digits[20]
    cdef unsigned long long rest = (0ULL - <unsigned long long>value) if value < 0 else <unsigned long long>value
    cdef Py_ssize_t n = 0, length = 0
    while True:
        digits[n] = <char>(48 + rest % 10)
        n += 1
        rest //= 10
        if rest == 0:
            break
    if value < 0:
        out[0] = 45  # '-'
        length = 1
    while n > 0:
        n -= 1
        out[length] = digits[n]
        length += 1
    return length


cdef bytes apply(Splice *cuts, const char *data, int begin, int end):
    """data[begin:end] with the edits applied (a stable sort by position: they must not overlap)."""
    cdef int order[MAX_EDITS]
    cdef int i, j, pos = begin, k
    cdef Edit *e
    cdef Pieces out
    for i in range(cuts.n):
        j = i
        while j > 0 and cuts.edits[order[j - 1]].start > cuts.edits[i].start:
            order[j] = order[j - 1]
            j -= 1
        order[j] = i
    pieces_init(&out)
    try:
        for i in range(cuts.n):
            e = &cuts.edits[order[i]]
            push(&out, data + pos, e.start - pos)
            for k in range(e.n):
                push(&out, e.pieces[k].p, e.pieces[k].n)
            pos = e.stop
        push(&out, data + pos, end - pos)
    except BaseException:
        join(&out)  # frees
        raise
    return join(&out)


cdef inline void add(Edit *e, const char *p, Py_ssize_t n) noexcept:
    e.pieces[e.n].p, e.pieces[e.n].n = p, n
    e.n += 1


cdef inline void add_bytes(Edit *e, bytes value) noexcept:
    add(e, PyBytes_AS_STRING(value), len(value))


cdef int record_received(Splice *cuts, SipMessage msg, bytes source_ip, int source_port) except -1:
    """Where msg came from, in its top Via: received=IP and rport=PORT, filled in or replaced,
    whether or not the sender asked for rport (as Kamailio's force_rport): a response relayed
    without a transaction then goes where the request came from (RFC 3581 §4), as the
    stateful path sends it."""
    cdef Py_ssize_t n = 0
    cdef const char *port = number(cuts, source_port, &n)
    cdef Edit *e
    if msg.rport_param_start >= 0:
        e = edit(cuts, msg.rport_param_start, msg.rport_param_end)
        add(e, "rport=", 6)
    else:
        e = edit(cuts, msg.via_end, msg.via_end)
        add(e, ";rport=", 7)
    add(e, port, n)
    if msg.received_start >= 0:
        e = edit(cuts, msg.received_start, msg.received_end)
    else:
        e = edit(cuts, msg.via_end, msg.via_end)
        add(e, ";received=", 10)
    add_bytes(e, source_ip)
    return 0


cdef int cut_routes(Splice *cuts, SipMessage msg, int count) except -1:
    """Remove the top `count` Route values: a header line whose values all go is removed
    whole, else its leading values and the commas after them."""
    cdef int start, end, i, at = 0, first, line, removed, values, last_line = -1
    if count == 1:  # nearly every in-dialog request
        if not msg.value_cut(H_ROUTE, &start, &end):
            raise ValueError("pop_routes: the request has 0 Route values, not 1")
        edit(cuts, start, end)
        return 0
    routes = [i for i in range(msg.n_entries) if msg.ents[i].hid == H_ROUTE]
    if len(routes) < count:
        raise ValueError(f"pop_routes: the request has {len(routes)} Route values, not {count}")
    for at in range(count):
        first = routes[at]
        line = msg.ents[first].header_index
        if line == last_line:
            continue  # cut with the first removed value of its line
        last_line = line
        values = sum(1 for i in routes if msg.ents[i].header_index == line)
        removed = sum(1 for i in routes[:count] if msg.ents[i].header_index == line)
        if removed == values:
            edit(cuts, msg.hdrs[line].line_start, msg.hdrs[line].line_end)
        else:
            # up to the first value of the line that stays
            edit(cuts, msg.ents[first].start, msg.ents[[i for i in routes if msg.ents[i].header_index == line][removed]].start)
    return 0


cdef int record_route_line(Splice *cuts, int at, bytes uri) except -1:
    cdef Edit *e = edit(cuts, at, at)
    add(e, "Record-Route: <", 15)
    add_bytes(e, uri)
    add(e, ">\r\n", 3)
    return 0


cpdef bytes forward_request(SipMessage msg, bytes transport, bytes sent_by, bytes branch, bytes record_route=None,
                            bytes record_route_inbound=None, int pop_routes=0, bytes request_uri=None,
                            bytes source_ip=None, int source_port=0):
    """The request as fastds forwards it.

    sent_by: host:port of the socket it leaves from; branch: a fresh z9hG4bK branch;
    record_route: the URI to record-route with (without <>), None for no Record-Route;
    record_route_inbound: a second one, below it, for the side the request came from when
    that is another transport (RFC 5658 double Record-Route), None for one;
    pop_routes: how many of the top Route values to remove (the caller checked they are ours);
    request_uri: a new Request-URI (dialplan rewrite), None to keep it;
    source_ip / source_port: where the request came from, recorded in the sender's Via
    as received and rport, so that responses and stray 2xx retransmissions find their way
    back through NAT. Max-Forwards must be above 0 (the caller answers 483 otherwise).
    """
    cdef Splice splice_
    cdef Splice *cuts = &splice_
    cdef Edit *e
    cdef Py_ssize_t n = 0
    cdef const char *digits
    cdef int via_at, rr_at
    if msg is None or transport is None or sent_by is None or branch is None:
        raise TypeError("forward_request needs the message, transport, sent_by and branch")
    cuts.n = cuts.n_numbers = 0
    if msg.max_forwards == 0:
        raise ValueError("Max-Forwards is 0: answer 483, do not forward")
    if msg.idx_first_via < 0:
        raise ValueError("the request has no Via")
    via_at = msg.hdrs[msg.idx_first_via].line_start
    if request_uri is not None:
        add_bytes(edit(cuts, msg.ruri_start, msg.ruri_end), request_uri)
    if source_ip is not None:
        record_received(cuts, msg, source_ip, source_port)
    e = edit(cuts, via_at, via_at)
    add(e, "Via: SIP/2.0/", 13)
    add_bytes(e, transport)
    add(e, " ", 1)
    add_bytes(e, sent_by)
    add(e, ";branch=", 8)
    add_bytes(e, branch)
    add(e, "\r\n", 2)
    if msg.max_forwards > 0:
        digits = number(cuts, msg.max_forwards - 1, &n)
        add(edit(cuts, msg.max_forwards_start, msg.max_forwards_end), digits, n)
    else:
        add(edit(cuts, via_at, via_at), "Max-Forwards: 70\r\n", 18)  # §16.6 step 3
    if record_route is not None:
        # a new Record-Route line above the existing ones puts ours first (§16.6 step 4)
        rr_at = msg.hdrs[msg.idx_first_record_route].line_start if msg.idx_first_record_route >= 0 else via_at
        record_route_line(cuts, rr_at, record_route)
        if record_route_inbound is not None:
            record_route_line(cuts, rr_at, record_route_inbound)
    if pop_routes:
        cut_routes(cuts, msg, pop_routes)
    if msg.content_length < 0:
        # needed if the next hop is reached over a stream transport (§20.14)
        e = edit(cuts, msg.headers_end, msg.headers_end)
        add(e, "Content-Length: ", 16)
        digits = number(cuts, msg.body_end - msg.body_start, &n)
        add(e, digits, n)
        add(e, "\r\n", 2)
    return apply(cuts, PyBytes_AS_STRING(msg.data), 0, msg.body_end)


cpdef bytes forward_response(SipMessage msg):
    """The response as fastds relays it upstream: our top Via removed (§16.7 step 3).
    A body longer than Content-Length is cut to it (§18.3)."""
    cdef int start, end
    cdef Pieces out
    if msg is None:
        raise TypeError("forward_response needs the message")
    cdef const char *data = PyBytes_AS_STRING(msg.data)
    if not msg.value_cut(H_VIA, &start, &end):
        raise ValueError("the response has no Via")
    pieces_init(&out)
    push(&out, data, start)
    push(&out, data + end, msg.body_end - end)
    return join(&out)


cdef int push_line(Pieces *out, const char *data, SipMessage msg, int index) except -1:
    """Header line `index` as received, with its CRLF."""
    cdef HeaderEntry *h = &msg.hdrs[index]
    push(out, data + h.line_start, h.value_end - h.line_start)
    return push(out, "\r\n", 2)


cpdef bytes build_response(SipMessage request, int code, bytes reason=None, bytes to_tag=None, bytes server=None,
                           object retry_after_s=None, bytes extra_headers=b"", object source=None):
    """A response to `request` built by fastds itself (§8.2.6.2).

    Every Via, From, To, Call-ID and CSeq are copied; To gets `to_tag` when it has no
    tag and the code is above 100; a 100 copies Timestamp (§8.2.6.1). Works on the
    partial message of a SipParseError too: missing headers are just not copied.
    extra_headers: complete header lines (each ending in CRLF), e.g. Unsupported for a 420.
    source: (host, port) the request came from, recorded in the top Via as received and
    rport (RFC 3581), as in the responses fastds relays.
    """
    if request is None:
        raise TypeError("build_response needs the request")
    cdef const char *data = PyBytes_AS_STRING(request.data)
    cdef Pieces out
    cdef Splice splice_
    cdef Splice *cuts = &splice_
    cdef Py_ssize_t n = 0
    cdef const char *digits
    cdef HeaderEntry *h
    cdef int i
    cdef bytes top_via = None, reason_phrase = reason if reason is not None else reason_for(code)
    cuts.n = cuts.n_numbers = 0
    if source is not None and request.via_start >= 0:
        record_received(cuts, request, source[0].encode(), source[1])
        h = &request.hdrs[request.idx_first_via]
        top_via = apply(cuts, data, h.line_start, h.value_end)
    pieces_init(&out)
    try:
        push(&out, "SIP/2.0 ", 8)
        digits = number(cuts, code, &n)
        push(&out, digits, n)
        push(&out, " ", 1)
        push_bytes(&out, reason_phrase)
        push(&out, "\r\n", 2)
        for i in range(request.n_headers):
            if request.hdrs[i].hid != H_VIA:
                continue
            if i == request.idx_first_via and top_via is not None:
                push_bytes(&out, top_via)
                push(&out, "\r\n", 2)
            else:
                push_line(&out, data, request, i)
        if request.idx_from >= 0:
            push_line(&out, data, request, request.idx_from)
        if request.idx_to >= 0:
            if code > 100 and request.to_tag_start < 0 and to_tag:
                h = &request.hdrs[request.idx_to]
                push(&out, data + h.line_start, h.value_end - h.line_start)
                push(&out, ";tag=", 5)
                push_bytes(&out, to_tag)
                push(&out, "\r\n", 2)
            else:
                push_line(&out, data, request, request.idx_to)
        if request.idx_call_id >= 0:
            push_line(&out, data, request, request.idx_call_id)
        if request.idx_cseq >= 0:
            push_line(&out, data, request, request.idx_cseq)
        if code == 100:
            for i in range(request.n_headers):
                if request.hdrs[i].hid == H_TIMESTAMP:
                    push_line(&out, data, request, i)
        if retry_after_s is not None:
            push(&out, "Retry-After: ", 13)
            digits = number(cuts, retry_after_s, &n)
            push(&out, digits, n)
            push(&out, "\r\n", 2)
        if server:
            push(&out, "Server: ", 8)
            push_bytes(&out, server)
            push(&out, "\r\n", 2)
        push_bytes(&out, extra_headers)
        push(&out, "Content-Length: 0\r\n\r\n", 21)
    except BaseException:
        join(&out)  # frees
        raise
    return join(&out)
