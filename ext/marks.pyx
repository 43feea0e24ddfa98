# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""What marks a message as fastds's own, in C: Via branch ids and Record-Route URIs signed
with fastds's secret (RFC 3261 §8.1.1.7, §16.6; docs/architecture.md §2).

Owns the keyed tags: a response is relayed only when its top Via branch carries our tag, an
in-dialog request is loose-routed only when its top Route is our signed Record-Route, and a
request carrying one of our branches in any Via came back to us (a loop). The MAC is keyed
BLAKE2b (RFC 7693: the compression of §3.2, the keyed init and padding of §3.3) truncated to
6 bytes and written as 12 lower-case hex digits: bit for bit what hashlib's
blake2b(key=secret, digest_size=6).hexdigest() gives, so branches and routes made before this
module existed, and by other nodes, still verify (an upgrade keeps its calls), and every node
sharing the secret recognises the others'. Why BLAKE2b and not SipHash: the tags on the wire
are already BLAKE2b. Why not hashlib: its object, copy and hex string cost ~4 allocations and
~5,000 instructions per tag; here a tag is one state copy and one compression on the stack.
Checks compare in constant time; the secret stays in the keyed state, never in a repr.

Branch: z9hG4bK + node id + '.' + per-process random + counter (hex) + '.' + tag.
Record-Route: <sip:HOST:PORT;lr;ftag=FROM-TAG;fds=TAG> (;transport=tcp or tls after the port
for the stream side of a dialog that changes transport here; ;fdsc=CONNECTION for a side on a
connection fastds accepted, RFC 5626's flow token in spirit), TAG over Call-ID, ftag and the
connection, so a route lifted from one dialog does not open a relay for another. The From tag
is a token, which may hold characters a URI parameter may not (% and `): it goes in %-escaped.
"""

import os

from fastds._ext.sipscan cimport H_ROUTE, H_VIA, parse_uri_spans, uri_param_span
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcmp, memcpy, memset

cdef uint64_t[8] IV = [
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL]

cdef uint8_t[10][16] SIGMA = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
    [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
    [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
    [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
    [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
    [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
    [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
    [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0]]

cdef const char *HEX_DIGITS = b"0123456789abcdef"
cdef const char *HEX_UPPER = b"0123456789ABCDEF"  # in %-escapes
cdef const char *MAGIC_COOKIE = b"z9hG4bK"  # RFC 3261 §8.1.1.7
cdef bint PARAMCHAR[256]  # RFC 3261 §25.1 paramchar, unescaped: param-unreserved / unreserved


cdef void _init_paramchar():
    cdef int c
    for c in range(256):
        PARAMCHAR[c] = False
    for c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()[]/:&+$":
        PARAMCHAR[c] = True


_init_paramchar()


cdef inline uint64_t rotr(uint64_t x, int n) noexcept nogil:
    return (x >> n) | (x << (64 - n))


cdef inline uint64_t load64(const uint8_t *p) noexcept nogil:
    """A little-endian word (RFC 7693 §2.4), on any host."""
    return (<uint64_t>p[0] | <uint64_t>p[1] << 8 | <uint64_t>p[2] << 16 | <uint64_t>p[3] << 24
            | <uint64_t>p[4] << 32 | <uint64_t>p[5] << 40 | <uint64_t>p[6] << 48 | <uint64_t>p[7] << 56)


cdef inline void mix(uint64_t *v, int a, int b, int c, int d, uint64_t x, uint64_t y) noexcept nogil:
    """G (RFC 7693 §3.1)."""
    v[a] = v[a] + v[b] + x
    v[d] = rotr(v[d] ^ v[a], 32)
    v[c] = v[c] + v[d]
    v[b] = rotr(v[b] ^ v[c], 24)
    v[a] = v[a] + v[b] + y
    v[d] = rotr(v[d] ^ v[a], 16)
    v[c] = v[c] + v[d]
    v[b] = rotr(v[b] ^ v[c], 63)


cdef void compress(Blake2b *state, const uint8_t *block, bint last) noexcept nogil:
    """F (RFC 7693 §3.2), 12 rounds."""
    cdef uint64_t v[16]
    cdef uint64_t m[16]
    cdef const uint8_t *s
    cdef int i
    for i in range(16):
        m[i] = load64(block + 8 * i)
    for i in range(8):
        v[i] = state.h[i]
        v[i + 8] = IV[i]
    v[12] ^= state.t
    if last:
        v[14] = ~v[14]
    for i in range(12):
        s = SIGMA[i % 10]
        mix(v, 0, 4, 8, 12, m[s[0]], m[s[1]])
        mix(v, 1, 5, 9, 13, m[s[2]], m[s[3]])
        mix(v, 2, 6, 10, 14, m[s[4]], m[s[5]])
        mix(v, 3, 7, 11, 15, m[s[6]], m[s[7]])
        mix(v, 0, 5, 10, 15, m[s[8]], m[s[9]])
        mix(v, 1, 6, 11, 12, m[s[10]], m[s[11]])
        mix(v, 2, 7, 8, 13, m[s[12]], m[s[13]])
        mix(v, 3, 4, 9, 14, m[s[14]], m[s[15]])
    for i in range(8):
        state.h[i] ^= v[i] ^ v[i + 8]


cdef void update(Blake2b *state, const uint8_t *data, Py_ssize_t n) noexcept nogil:
    """Absorb n bytes; a full buffer is compressed only once more input follows (the last
    block is compressed by finish(), flagged as last)."""
    cdef Py_ssize_t fill
    while n > 0:
        if state.buflen == BLOCK:
            state.t += BLOCK
            compress(state, state.buf, False)
            state.buflen = 0
        fill = BLOCK - state.buflen
        if fill > n:
            fill = n
        memcpy(state.buf + state.buflen, data, fill)
        state.buflen += <int>fill
        data += fill
        n -= fill


cdef void finish_hex(Blake2b *state, uint8_t *out) noexcept nogil:
    """The first DIGEST bytes of the hash as HEX lower-case hex digits into out."""
    cdef int i
    cdef uint8_t byte
    state.t += state.buflen
    memset(state.buf + state.buflen, 0, BLOCK - state.buflen)
    compress(state, state.buf, True)
    for i in range(DIGEST):
        byte = <uint8_t>(state.h[i // 8] >> (8 * (i % 8)))
        out[2 * i] = HEX_DIGITS[byte >> 4]
        out[2 * i + 1] = HEX_DIGITS[byte & 15]


cdef inline bint same_hex(const uint8_t *mine, const uint8_t *theirs) noexcept nogil:
    """Constant time: every digit compared, whatever differs first."""
    cdef uint8_t diff = 0
    cdef int i
    for i in range(HEX):
        diff |= mine[i] ^ theirs[i]
    return diff == 0


cdef int put_hex(uint8_t *out, unsigned long long number) noexcept nogil:
    """number in lower-case hex without leading zeros into out; the digits written (1 to 16)."""
    cdef int digits = 1, i
    while digits < 16 and number >> (4 * digits):
        digits += 1
    for i in range(digits):
        out[digits - 1 - i] = HEX_DIGITS[(number >> (4 * i)) & 15]
    return digits


def counted(bytes prefix not None, unsigned long long number) -> bytes:
    """prefix + number in lower-case hex, one allocation: fastds's To tags."""
    cdef uint8_t digits[16]
    cdef int n = put_hex(digits, number)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, len(prefix) + n)
    memcpy(PyBytes_AS_STRING(out), <const char *>prefix, len(prefix))
    memcpy(PyBytes_AS_STRING(out) + len(prefix), digits, n)
    return out


cdef class KeyedTag:
    """The MAC of fastds's tags under one secret (1 to 64 bytes, BLAKE2b's key limit). The
    key block is compressed once; every tag starts from a copy of that state (a tag's
    message is never empty, so the key block is never the last one)."""

    def __init__(self, bytes secret not None):
        cdef Py_ssize_t n = len(secret)
        if not 0 < n <= 64:
            raise ValueError(f"the secret must be 1 to 64 bytes, not {n}")
        memcpy(self.after_key.h, IV, sizeof(IV))
        self.after_key.h[0] ^= 0x01010000 ^ (<uint64_t>n << 8) ^ DIGEST
        memset(self.after_key.buf, 0, BLOCK)
        memcpy(self.after_key.buf, <const char *>secret, n)
        self.after_key.t = BLOCK  # the key block, padded to a block (§3.3), compressed
        compress(&self.after_key, self.after_key.buf, False)
        self.after_key.buflen = 0

    def __repr__(self):
        return "KeyedTag(<secret>)"

    cpdef bytes branch(self, bytes prefix, unsigned long long number):
        """prefix + number in hex + '.' + the tag of both: a Via branch id, one allocation."""
        cdef uint8_t buf[256]
        cdef Py_ssize_t n = len(prefix), body
        cdef Blake2b state = self.after_key
        if n > 256 - 16 - 1 - HEX:
            raise ValueError("branch prefix too long")
        memcpy(buf, <const char *>prefix, n)
        body = n + put_hex(buf + n, number)
        update(&state, buf, body)
        buf[body] = 46  # '.'
        finish_hex(&state, buf + body + 1)
        return (<char *>buf)[:body + 1 + HEX]

    cdef bint _signs_branch(self, const uint8_t *p, Py_ssize_t n) noexcept:
        """p[:n] ends in '.' + the tag of what precedes the last '.' (what branch() made; the
        part before the '.' is never empty)."""
        cdef Blake2b state = self.after_key
        cdef uint8_t mine[HEX]
        cdef Py_ssize_t i
        if n < HEX + 2 or p[n - HEX - 1] != 46:
            return False
        for i in range(n - HEX, n):
            if p[i] == 46:  # the last '.' must be the one before the tag
                return False
        update(&state, p, n - HEX - 1)
        finish_hex(&state, mine)
        return same_hex(mine, p + n - HEX)

    cdef void _dialog(self, Blake2b *state, const uint8_t *call_id, Py_ssize_t call_id_n,
                      const uint8_t *dialog_tag, Py_ssize_t dialog_tag_n, const uint8_t *flow,
                      Py_ssize_t flow_n) noexcept:
        """The dialog's signed text: Call-ID '|' tag, and '|' flow when there is one (flow_n >= 0)."""
        state[0] = self.after_key  # at least the '|' follows
        update(state, call_id, call_id_n)
        update(state, <const uint8_t *>b"|", 1)
        update(state, dialog_tag, dialog_tag_n)
        if flow_n >= 0:
            update(state, <const uint8_t *>b"|", 1)
            update(state, flow, flow_n)

    cdef bint _signs_dialog(self, const uint8_t *tag, Py_ssize_t tag_n, const uint8_t *call_id,
                            Py_ssize_t call_id_n, const uint8_t *dialog_tag, Py_ssize_t dialog_tag_n,
                            const uint8_t *flow, Py_ssize_t flow_n) noexcept:
        cdef Blake2b state
        cdef uint8_t mine[HEX]
        if tag_n != HEX:
            return False
        self._dialog(&state, call_id, call_id_n, dialog_tag, dialog_tag_n, flow, flow_n)
        finish_hex(&state, mine)
        return same_hex(mine, tag)

    def dialog(self, bytes call_id not None, bytes dialog_tag not None, bytes flow=None) -> bytes:
        """The tag of a dialog's Record-Route: over Call-ID, its first From tag and the
        connection it names (flow, hex), if any."""
        cdef Blake2b state
        cdef uint8_t out[HEX]
        cdef const uint8_t *flow_p = NULL
        cdef Py_ssize_t flow_n = -1
        if flow is not None:
            flow_p, flow_n = <const uint8_t *><const char *>flow, len(flow)
        self._dialog(&state, <const uint8_t *><const char *>call_id, len(call_id),
                     <const uint8_t *><const char *>dialog_tag, len(dialog_tag), flow_p, flow_n)
        finish_hex(&state, out)
        return (<char *>out)[:HEX]

    def signs_dialog(self, bytes tag not None, bytes call_id not None, bytes dialog_tag not None,
                     bytes flow=None) -> bool:
        """tag is dialog(call_id, dialog_tag, flow), compared in constant time."""
        cdef const uint8_t *flow_p = NULL
        cdef Py_ssize_t flow_n = -1
        if flow is not None:
            flow_p, flow_n = <const uint8_t *><const char *>flow, len(flow)
        return self._signs_dialog(<const uint8_t *><const char *>tag, len(tag),
                                  <const uint8_t *><const char *>call_id, len(call_id),
                                  <const uint8_t *><const char *>dialog_tag, len(dialog_tag), flow_p, flow_n)


cdef inline bint escaped_equals(const uint8_t *p, Py_ssize_t n, const uint8_t *raw, Py_ssize_t m) noexcept:
    """p[:n] is raw[:m] with every byte that is not a paramchar %-escaped (upper-case hex)."""
    cdef Py_ssize_t i = 0, k
    for k in range(m):
        if PARAMCHAR[raw[k]]:
            if i >= n or p[i] != raw[k]:
                return False
            i += 1
        else:
            if i + 3 > n or p[i] != 37 or p[i + 1] != HEX_UPPER[raw[k] >> 4] or p[i + 2] != HEX_UPPER[raw[k] & 15]:
                return False
            i += 3
    return i == n


cdef Py_ssize_t escaped_length(const uint8_t *raw, Py_ssize_t n) noexcept:
    """The length of raw[:n] with every byte that is not a paramchar %-escaped."""
    cdef Py_ssize_t k, length = n
    for k in range(n):
        if not PARAMCHAR[raw[k]]:
            length += 2
    return length


cdef uint8_t *escape_into(uint8_t *out, const uint8_t *raw, Py_ssize_t n) noexcept:
    """raw[:n] %-escaped (upper-case hex, as escaped_equals() expects) into out; the end written."""
    cdef Py_ssize_t k
    for k in range(n):
        if PARAMCHAR[raw[k]]:
            out[0] = raw[k]
            out += 1
        else:
            out[0], out[1], out[2] = 37, HEX_UPPER[raw[k] >> 4], HEX_UPPER[raw[k] & 15]
            out += 3
    return out


def escape_param(bytes value not None) -> bytes:
    """value as a URI parameter value: every byte that is not a paramchar %-escaped."""
    cdef const uint8_t *p = <const uint8_t *><const char *>value
    cdef Py_ssize_t n = len(value)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, escaped_length(p, n))
    escape_into(<uint8_t *>PyBytes_AS_STRING(out), p, n)
    return out


cdef inline uint8_t *put(uint8_t *out, const char *text, Py_ssize_t n) noexcept:
    memcpy(out, text, n)
    return out + n


cdef class BranchFactory:
    """Makes and checks fastds branch ids for one process."""

    def __init__(self, bytes secret not None, str node_id not None):
        if not secret:
            raise ValueError("secret must not be empty")
        if not node_id or not node_id.isalnum() or not node_id.isascii():
            raise ValueError(f"node_id must be letters and digits, not {node_id!r}")
        self.tag = KeyedTag(secret)
        self.prefix = MAGIC_COOKIE + node_id.encode() + b"." + os.urandom(4).hex().encode()
        self.counter = 0

    def __repr__(self):
        return f"BranchFactory({self.prefix!r})"

    cpdef bytes new(self):
        self.counter += 1
        return self.tag.branch(self.prefix, self.counter)

    cdef bint _ours(self, const uint8_t *p, Py_ssize_t n) noexcept:
        return n > 7 and memcmp(p, MAGIC_COOKIE, 7) == 0 and self.tag._signs_branch(p, n)

    cpdef bint is_ours(self, bytes branch):
        """True when branch was made by a factory with the same secret (any process or node)."""
        return branch is not None and self._ours(<const uint8_t *><const char *>branch, len(branch))

    cpdef bint came_back(self, SipMessage request):
        """A Via of the request carries one of our branches: it came back to us (§16.3 step
        4, simplified: a spiral through fastds is refused too)."""
        cdef const uint8_t *p = <const uint8_t *><const char *>request.data
        cdef int i, params, vs, ve
        for i in range(request.n_entries):
            if request.ents[i].hid != H_VIA:
                continue
            params = request.ents[i].start
            while params < request.ents[i].end and p[params] != 59:  # ';'
                params += 1
            if params < request.ents[i].end and uri_param_span(p, params + 1, request.ents[i].end,
                                                              <const uint8_t *>b"branch", 6, &vs, &ve) \
                    and self._ours(p + vs, ve - vs):
                return True
        return False


cdef class RecordRoute:
    """Our Record-Route URIs for a dialog, and the check that a request's top Routes are
    them. The URI for a side reached over a connection fastds accepted names that connection
    (fdsc=): requests towards that side go back on it. Every parameter that steers routing is
    under the MAC."""

    def __init__(self, bytes secret not None, bytes sent_by not None, dict streams=None):
        """sent_by: host:port of the UDP listener; streams: of the TCP and TLS ones there are,
        by transport."""
        self.tag = KeyedTag(secret)
        self.at = {"udp": sent_by}
        self.at.update((transport, at + b";transport=" + transport.encode()) for transport, at in (streams or {}).items())

    cpdef bytes uri(self, SipMessage request, str transport="udp", long long connection=0):
        """The URI for the side of the dialog that reaches fastds over `transport`, on the
        connection with id `connection` (0: none in particular): written straight into the
        bytes object it returns, from the request's Call-ID and From tag in place."""
        if request is None:
            raise TypeError("uri() needs the request")
        cdef bytes at = self.at.get(transport)
        cdef const uint8_t *p = <const uint8_t *><const char *>request.data
        cdef const uint8_t *ftag = p + (request.from_tag_start if request.from_tag_start >= 0 else 0)
        cdef Py_ssize_t ftag_n = request.from_tag_end - request.from_tag_start if request.from_tag_start >= 0 else 0
        cdef uint8_t flow[16]
        cdef Py_ssize_t flow_n = -1, length
        cdef Blake2b state
        cdef uint8_t *out
        if at is None:
            raise ValueError(f"no {transport} listener to record-route with")
        if connection:
            flow_n = put_hex(flow, connection)  # as connection() reads it back
        length = 4 + len(at) + 9 + escaped_length(ftag, ftag_n) + (6 + flow_n if flow_n >= 0 else 0) + 5 + HEX
        result = PyBytes_FromStringAndSize(NULL, length)
        out = <uint8_t *>PyBytes_AS_STRING(result)
        out = put(out, "sip:", 4)
        out = put(out, <const char *>at, len(at))
        out = put(out, ";lr;ftag=", 9)
        out = escape_into(out, ftag, ftag_n)
        if flow_n >= 0:
            out = put(out, ";fdsc=", 6)
            out = put(out, <const char *>flow, flow_n)
        out = put(out, ";fds=", 5)
        self.tag._dialog(&state, p + request.call_id_start, request.call_id_end - request.call_id_start,
                         ftag, ftag_n, flow if flow_n >= 0 else NULL, flow_n)
        finish_hex(&state, out)
        return result

    cdef bint _param(self, const uint8_t *p, UriSpans *uri, const char *name, int *vs, int *ve) noexcept:
        return uri_param_span(p, uri.params_start, uri.params_end, <const uint8_t *>name, len(name), vs, ve)

    cdef bint _ours(self, SipMessage request, const uint8_t *p, UriSpans *uri) noexcept:
        """The Route URI was made by uri() for this request's dialog: the dialog's first From
        tag is checked against From or To (either side may send), raw first, then escaped."""
        cdef int fs, fe, ts, te, ws, we, side, ds, de
        cdef bint flow
        if not self._param(p, uri, "ftag", &fs, &fe) or not self._param(p, uri, "fds", &ts, &te):
            return False
        flow = self._param(p, uri, "fdsc", &ws, &we)
        for side in range(2):
            ds, de = (request.from_tag_start, request.from_tag_end) if side == 0 else (request.to_tag_start, request.to_tag_end)
            if ds < 0:
                ds = de = 0  # no tag: the empty one
            if (fe - fs == de - ds and memcmp(p + fs, p + ds, de - ds) == 0) or escaped_equals(p + fs, fe - fs, p + ds, de - ds):
                return self.tag._signs_dialog(p + ts, te - ts, p + request.call_id_start,
                                              request.call_id_end - request.call_id_start, p + ds, de - ds,
                                              p + ws if flow else NULL, we - ws if flow else -1)
        return False

    cdef bint _route_uri(self, SipMessage request, int which, UriSpans *uri) noexcept:
        """The URI of Route value `which` (0: the top one), parsed; False when absent or malformed."""
        cdef int i, seen = 0
        for i in range(request.n_entries):
            if request.ents[i].hid != H_ROUTE:
                continue
            if seen == which:
                return request.ents[i].uri_start >= 0 and parse_uri_spans(
                    <const uint8_t *><const char *>request.data, request.ents[i].uri_start, request.ents[i].uri_end, uri) == 0
            seen += 1
        return False

    cpdef int ours(self, SipMessage request):
        """How many of the top Route values are our Record-Route: 1, or 2 where the dialog
        changes transport at fastds or one side is on a connection (RFC 5658), or 0."""
        cdef UriSpans uri
        cdef const uint8_t *p = <const uint8_t *><const char *>request.data
        cdef int count = 0
        while count < 2 and self._route_uri(request, count, &uri) and self._ours(request, p, &uri):
            count += 1
        return count

    cpdef long long connection(self, SipMessage request, int ours):
        """The connection the last of our `ours` top Routes names (fdsc=), 0 for none: a
        request leaving towards a side on a connection goes back on it."""
        cdef UriSpans uri
        cdef const uint8_t *p = <const uint8_t *><const char *>request.data
        cdef int ws, we, i
        cdef long long flow = 0
        cdef uint8_t c
        if ours <= 0 or not self._route_uri(request, ours - 1, &uri) or not self._param(p, &uri, "fdsc", &ws, &we):
            return 0
        if we - ws > 15:
            return 0
        for i in range(ws, we):
            c = p[i]
            if 48 <= c <= 57:
                flow = flow * 16 + (c - 48)
            elif 97 <= c <= 102 or 65 <= c <= 70:
                flow = flow * 16 + ((c | 32) - 87)
            else:
                return 0
        return flow
