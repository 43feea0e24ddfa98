# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""One-pass SIP message scanner (RFC 3261 §7, §20, §25) and SIP/SIPS/TEL URI parser.

Owns: turning a datagram into a SipMessage of byte offsets (start line, a header index,
every Via / Route / Record-Route / Contact value, the top Via's parameters, Call-ID,
CSeq, From/To URI and tag, Max-Forwards, Content-Length and the body, auth usernames).
Copies nothing: values are sliced lazily by the properties. Every read is bounded by an
explicit end offset (no bounds checks are compiled in; tests/property fuzz this).
Internal functions return -1 and record the first error; only scan() raises, always
SipParseError. Imports nothing of fastds but fastds.errors.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.string cimport memchr, memcpy

import re

from fastds.errors import SipParseError

ctypedef const unsigned char cuchar

# ---------------------------------------------------------------------------------
# character classes (RFC 3261 §25.1)

cdef enum:
    C_TOKEN = 1       # token
    C_WORD = 2        # word (Call-ID)
    C_UNRESERVED = 4  # alphanum / mark
    C_USER = 8        # user: unreserved / user-unreserved (escaped checked apart)
    C_PASSWORD = 16   # password: unreserved / & = + $ ,
    C_PARAM = 32      # paramchar without escaped, plus the = and ; separators
    C_HEADER = 64     # hnv-unreserved / unreserved, plus the = and & separators
    C_HOST = 128      # hostname / IPv4 characters

cdef unsigned char CHARS[256]
cdef unsigned char HEX[256]


cdef void _mark(bytes chars, unsigned char flag):
    cdef unsigned char c
    for c in chars:
        CHARS[c] |= flag


def _init_tables():
    cdef int i
    for i in range(256):
        CHARS[i] = 0
        HEX[i] = 0
    alnum = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    mark = b"-_.!~*'()"
    _mark(alnum + b"-.!%*_+`'~", C_TOKEN)
    _mark(alnum + b"-.!%*_+`'~()<>:\\\"/[]?{}", C_WORD)
    _mark(alnum + mark, C_UNRESERVED)
    _mark(alnum + mark + b"&=+$,;?/", C_USER)
    _mark(alnum + mark + b"&=+$,", C_PASSWORD)
    _mark(alnum + mark + b"[]/:&+$=;", C_PARAM)
    _mark(alnum + mark + b"[]/?:+$=&", C_HEADER)
    _mark(alnum + b"-._", C_HOST)
    for c in b"0123456789abcdefABCDEF":
        HEX[c] = 1


_init_tables()


cdef inline bint is_ws(unsigned char c) noexcept:
    return c == 32 or c == 9


cdef inline bint is_digit(unsigned char c) noexcept:
    return 48 <= c <= 57


cdef inline unsigned char lower(unsigned char c) noexcept:
    return c + 32 if 65 <= c <= 90 else c


cdef inline int skip_lws(cuchar *p, int i, int e) noexcept:
    """Skip SP / HT and folded line breaks (CRLF or LF followed by SP / HT), §7.3.1."""
    while i < e:
        if is_ws(p[i]):
            i += 1
        elif p[i] == 13 and i + 2 < e and p[i + 1] == 10 and is_ws(p[i + 2]):
            i += 3
        elif p[i] == 10 and i + 1 < e and is_ws(p[i + 1]):
            i += 2
        else:
            break
    return i


cdef inline int skip_class(cuchar *p, int i, int e, unsigned char flag) noexcept:
    while i < e and CHARS[p[i]] & flag:
        i += 1
    return i


cdef inline int skip_quoted(cuchar *p, int i, int e) noexcept:
    """p[i] is the opening quote; return the index after the closing one, or -1."""
    i += 1
    while i < e:
        if p[i] == 34:
            return i + 1
        if p[i] == 92:  # quoted-pair: the next byte, whatever it is
            i += 1
        i += 1
    return -1


cdef enum:  # what scan_param found wrong
    PARAM_NO_NAME = -1
    PARAM_UNTERMINATED = -2
    PARAM_NO_VALUE = -3


cdef int scan_param(cuchar *p, int i, int e, int *span) noexcept:
    """One generic-param `;name[=value]` from p[i] == ';' (§25.1; the value a token, a host
    -- IPv6 brackets and colons, RFC 5118 §4.5 -- or a quoted-string). span: name start
    and end, value start and end (-1, -1 without a value), and where a malformed one went
    wrong. Returns the index after it and its LWS, or a PARAM_* code."""
    span[0] = skip_lws(p, i + 1, e)
    span[1] = skip_class(p, span[0], e, C_TOKEN)
    span[2] = span[3] = -1
    span[4] = span[0]
    if span[1] == span[0]:
        return PARAM_NO_NAME
    i = skip_lws(p, span[1], e)
    if i >= e or p[i] != 61:
        return i
    span[2] = span[4] = skip_lws(p, i + 1, e)
    if span[2] < e and p[span[2]] == 34:
        span[3] = skip_quoted(p, span[2], e)
        if span[3] < 0:
            return PARAM_UNTERMINATED
    else:
        span[3] = span[2]
        while span[3] < e and (CHARS[p[span[3]]] & C_TOKEN or p[span[3]] == 58 or p[span[3]] == 91
                               or p[span[3]] == 93):
            span[3] += 1
        if span[3] == span[2]:
            return PARAM_NO_VALUE
    return skip_lws(p, span[3], e)


cdef const char *param_error(int code, bint in_via) noexcept:
    """The reason of a SipParseError for a scan_param code, in a Via or another header."""
    if code == PARAM_NO_NAME:
        return "malformed Via parameter" if in_via else "malformed header parameter"
    if code == PARAM_UNTERMINATED:
        return "unterminated quoted string in Via" if in_via else "unterminated quoted string"
    return "malformed Via parameter value" if in_via else "malformed header parameter value"


cdef inline bint ieq(cuchar *p, int s, int e, const char *lit) noexcept:
    """Case-insensitive comparison of p[s:e] with a lower-case literal."""
    cdef int i = 0
    while s < e:
        if lit[i] == 0 or lower(p[s]) != <unsigned char>lit[i]:
            return False
        s += 1
        i += 1
    return lit[i] == 0


cdef inline bint eq(cuchar *p, int s, int e, const char *lit) noexcept:
    cdef int i = 0
    while s < e:
        if lit[i] == 0 or p[s] != <unsigned char>lit[i]:
            return False
        s += 1
        i += 1
    return lit[i] == 0


cdef bint is_sip_version(cuchar *p, int s, int e) noexcept:
    """SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT, filling exactly [s, e)."""
    cdef int d
    if e - s < 7 or not ieq(p, s, s + 4, b"sip/"):
        return False
    s += 4
    d = s
    while s < e and is_digit(p[s]):
        s += 1
    if s == d or s >= e or p[s] != 46:
        return False
    s += 1
    d = s
    while s < e and is_digit(p[s]):
        s += 1
    return s > d and s == e


cdef int parse_digits(cuchar *p, int s, int e, int max_digits, long long *out) noexcept:
    """Decimal digits filling exactly [s, e); -1 when empty, not digits or too long."""
    cdef long long v = 0
    if s >= e:
        return -1
    while s < e and p[s] == 48 and e - s > 1:  # leading zeros do not count towards the cap
        s += 1
    if e - s > max_digits:
        return -1
    while s < e:
        if not is_digit(p[s]):
            return -1
        v = v * 10 + (p[s] - 48)
        s += 1
    out[0] = v
    return 0

# ---------------------------------------------------------------------------------
# names

cdef int header_id(cuchar *p, int s, int e) noexcept:
    """Known header id of the name p[s:e], compact forms included (§7.3.3, §20)."""
    cdef int n = e - s
    cdef unsigned char c
    if n == 1:
        c = lower(p[s])
        if c == b'v': return H_VIA
        if c == b'i': return H_CALL_ID
        if c == b'f': return H_FROM
        if c == b't': return H_TO
        if c == b'm': return H_CONTACT
        if c == b'l': return H_CONTENT_LENGTH
        if c == b'c': return H_CONTENT_TYPE
        if c == b'k': return H_SUPPORTED
        if c == b's': return H_SUBJECT
        if c == b'e': return H_CONTENT_ENCODING
        if c == b'o': return H_EVENT
        if c == b'r': return H_REFER_TO
        if c == b'u': return H_ALLOW_EVENTS
        if c == b'b': return H_REFERRED_BY
        if c == b'x': return H_SESSION_EXPIRES
        if c == b'y': return H_IDENTITY
        return H_OTHER
    if n == 2:
        return H_TO if ieq(p, s, e, b"to") else H_OTHER
    if n == 3:
        return H_VIA if ieq(p, s, e, b"via") else H_OTHER
    if n == 4:
        if ieq(p, s, e, b"from"): return H_FROM
        if ieq(p, s, e, b"cseq"): return H_CSEQ
        return H_OTHER
    if n == 5:
        if ieq(p, s, e, b"route"): return H_ROUTE
        if ieq(p, s, e, b"event"): return H_EVENT
        return H_OTHER
    if n == 7:
        if ieq(p, s, e, b"call-id"): return H_CALL_ID
        if ieq(p, s, e, b"contact"): return H_CONTACT
        if ieq(p, s, e, b"subject"): return H_SUBJECT
        if ieq(p, s, e, b"require"): return H_REQUIRE
        return H_OTHER
    if n == 8:
        if ieq(p, s, e, b"refer-to"): return H_REFER_TO
        if ieq(p, s, e, b"identity"): return H_IDENTITY
        return H_OTHER
    if n == 9:
        if ieq(p, s, e, b"supported"): return H_SUPPORTED
        if ieq(p, s, e, b"timestamp"): return H_TIMESTAMP
        return H_OTHER
    if n == 11:
        if ieq(p, s, e, b"referred-by"): return H_REFERRED_BY
        if ieq(p, s, e, b"retry-after"): return H_RETRY_AFTER
        return H_OTHER
    if n == 12:
        if ieq(p, s, e, b"max-forwards"): return H_MAX_FORWARDS
        if ieq(p, s, e, b"record-route"): return H_RECORD_ROUTE
        if ieq(p, s, e, b"content-type"): return H_CONTENT_TYPE
        if ieq(p, s, e, b"allow-events"): return H_ALLOW_EVENTS
        return H_OTHER
    if n == 13:
        if ieq(p, s, e, b"authorization"): return H_AUTHORIZATION
        if ieq(p, s, e, b"proxy-require"): return H_PROXY_REQUIRE
        return H_OTHER
    if n == 14:
        return H_CONTENT_LENGTH if ieq(p, s, e, b"content-length") else H_OTHER
    if n == 15:
        return H_SESSION_EXPIRES if ieq(p, s, e, b"session-expires") else H_OTHER
    if n == 16:
        return H_CONTENT_ENCODING if ieq(p, s, e, b"content-encoding") else H_OTHER
    if n == 19:
        return H_PROXY_AUTHORIZATION if ieq(p, s, e, b"proxy-authorization") else H_OTHER
    return H_OTHER


cdef int method_id(cuchar *p, int s, int e) noexcept:
    # method names are case-sensitive (§7.1)
    if eq(p, s, e, b"INVITE"): return M_INVITE
    if eq(p, s, e, b"ACK"): return M_ACK
    if eq(p, s, e, b"BYE"): return M_BYE
    if eq(p, s, e, b"CANCEL"): return M_CANCEL
    if eq(p, s, e, b"OPTIONS"): return M_OPTIONS
    if eq(p, s, e, b"REGISTER"): return M_REGISTER
    if eq(p, s, e, b"PRACK"): return M_PRACK
    if eq(p, s, e, b"UPDATE"): return M_UPDATE
    if eq(p, s, e, b"INFO"): return M_INFO
    if eq(p, s, e, b"SUBSCRIBE"): return M_SUBSCRIBE
    if eq(p, s, e, b"NOTIFY"): return M_NOTIFY
    if eq(p, s, e, b"REFER"): return M_REFER
    if eq(p, s, e, b"MESSAGE"): return M_MESSAGE
    if eq(p, s, e, b"PUBLISH"): return M_PUBLISH
    return M_OTHER

# ---------------------------------------------------------------------------------
# hosts and URIs (§19.1, §25.1; RFC 5118 for IPv6 references)

cdef bint valid_ipv4(cuchar *p, int s, int e) noexcept:
    cdef int octets = 0, digits, value
    while True:
        digits = 0
        value = 0
        while s < e and is_digit(p[s]) and digits < 4:
            value = value * 10 + (p[s] - 48)
            digits += 1
            s += 1
        if digits == 0 or digits > 3 or value > 255:
            return False
        octets += 1
        if s == e:
            return octets == 4
        if p[s] != 46 or octets == 4:
            return False
        s += 1


cdef bint valid_ipv6(cuchar *p, int s, int e) noexcept:
    """RFC 4291 text form without brackets: hex groups, at most one '::', optional IPv4 tail."""
    cdef int groups = 0, j
    cdef bint compressed = False
    if e - s < 2:
        return False
    if p[s] == 58:
        if p[s + 1] != 58:
            return False
        compressed = True
        s += 2
    while s < e:
        j = s
        while j < e and HEX[p[j]] and j - s < 5:
            j += 1
        if j < e and p[j] == 46:
            if not valid_ipv4(p, s, e):
                return False
            groups += 2
            s = e
            break
        if j == s or j - s > 4:
            return False
        groups += 1
        s = j
        if s == e:
            break
        if p[s] != 58:
            return False
        s += 1
        if s < e and p[s] == 58:
            if compressed:
                return False
            compressed = True
            s += 1
        elif s == e:
            return False
    return groups < 8 if compressed else groups == 8


cdef bint ip_literal_span(cuchar *p, int s, int e) noexcept:
    """p[s:e] is an IPv4 or IPv6 address, the IPv6 one with or without brackets."""
    if e - s >= 2 and p[s] == 91 and p[e - 1] == 93:
        return valid_ipv6(p, s + 1, e - 1)
    return valid_ipv4(p, s, e) or valid_ipv6(p, s, e)


def ip_literal(bytes host not None) -> bool:
    """host is an IPv4 or IPv6 address (IPv6 with or without brackets), not a name."""
    return ip_literal_span(<cuchar *>host, 0, len(host))


cdef int parse_host(cuchar *p, int s, int e) noexcept:
    """host = hostname / IPv4address / IPv6reference; returns the end of the host or -1."""
    cdef int i
    if s >= e:
        return -1
    if p[s] == 91:  # '['
        i = s + 1
        while i < e and p[i] != 93:
            i += 1
        if i >= e or not valid_ipv6(p, s + 1, i):
            return -1
        return i + 1
    i = skip_class(p, s, e, C_HOST)
    return i if i > s else -1


cdef int skip_escaped_class(cuchar *p, int i, int e, unsigned char flag) noexcept:
    """Run of characters of a class or %HEXHEX escapes; -1 on a broken escape."""
    while i < e:
        if CHARS[p[i]] & flag:
            i += 1
        elif p[i] == 37:
            if i + 2 >= e or not (HEX[p[i + 1]] and HEX[p[i + 2]]):
                return -1
            i += 3
        else:
            break
    return i


cdef int parse_uri_spans(cuchar *p, int s, int e, UriSpans *u) noexcept:
    """Parse the URI p[s:e] (no surrounding whitespace); 0 on success, -1 if malformed."""
    cdef int i, at, colon, hs
    cdef long long port
    u.kind = URI_OTHER
    u.start = s
    u.end = e
    u.user_start = u.user_end = u.password_start = u.password_end = -1
    u.host_start = u.host_end = -1
    u.params_start = u.params_end = u.headers_start = u.headers_end = -1
    u.port = 0
    # scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    if s >= e or not (97 <= lower(p[s]) <= 122):
        return -1
    i = s + 1
    while i < e and (97 <= lower(p[i]) <= 122 or is_digit(p[i]) or p[i] == 43 or p[i] == 45 or p[i] == 46):
        i += 1
    if i >= e or p[i] != 58:
        return -1
    u.scheme_end = i
    if ieq(p, s, i, b"sip"):
        u.kind = URI_SIP
    elif ieq(p, s, i, b"sips"):
        u.kind = URI_SIPS
    elif ieq(p, s, i, b"tel"):
        u.kind = URI_TEL
    i += 1
    if u.kind == URI_OTHER:
        # absoluteURI: opaque, but no whitespace, controls, quotes or angle brackets
        if i >= e:
            return -1
        while i < e:
            if p[i] <= 32 or p[i] >= 127 or p[i] == 60 or p[i] == 62 or p[i] == 34:
                return -1
            i += 1
        return 0
    if u.kind == URI_TEL:
        # RFC 3966 telephone-subscriber: the number up to the first ';'
        u.user_start = i
        while i < e and p[i] != 59:
            if not (HEX[p[i]] or p[i] in b"+-.()*#pPwW"):
                return -1
            i += 1
        u.user_end = i
        if u.user_end == u.user_start:
            return -1
    else:
        at = -1
        hs = i
        while hs < e:
            if p[hs] == 64:
                at = hs
                break
            hs += 1
        if at >= 0:
            colon = i
            while colon < at and p[colon] != 58:
                colon += 1
            u.user_start = i
            u.user_end = colon
            if skip_escaped_class(p, i, colon, C_USER) != colon or colon == i:
                return -1
            if colon < at:
                u.password_start = colon + 1
                u.password_end = at
                if skip_escaped_class(p, colon + 1, at, C_PASSWORD) != at:
                    return -1
            i = at + 1
        u.host_start = i
        i = parse_host(p, i, e)
        if i < 0:
            return -1
        u.host_end = i
        if i < e and p[i] == 58:
            hs = i + 1
            i = hs
            while i < e and is_digit(p[i]):
                i += 1
            if parse_digits(p, hs, i, 5, &port) < 0 or port == 0 or port > 65535:
                return -1
            u.port = <int>port
    if i < e and p[i] == 59:
        u.params_start = i + 1
        i = skip_escaped_class(p, i + 1, e, C_PARAM)
        if i < 0:
            return -1
        u.params_end = i
    if i < e and p[i] == 63 and u.kind != URI_TEL:
        u.headers_start = i + 1
        i = skip_escaped_class(p, i + 1, e, C_HEADER)
        if i < 0:
            return -1
        u.headers_end = i
    return 0 if i == e else -1

# ---------------------------------------------------------------------------------
# the scan result


cdef class SipUri:
    """Offsets of a parsed URI; the properties slice them out of `data`."""

    cdef _slice(self, int s, int e):
        return None if s < 0 else self.data[s:e]

    @property
    def kind(self):
        return ("other", "sip", "sips", "tel")[self.s.kind]

    @property
    def scheme(self):
        return self.data[self.s.start:self.s.scheme_end]

    @property
    def user(self):
        return self._slice(self.s.user_start, self.s.user_end)

    @property
    def password(self):
        return self._slice(self.s.password_start, self.s.password_end)

    @property
    def host(self):
        return self._slice(self.s.host_start, self.s.host_end)

    @property
    def port(self):
        return self.s.port

    @property
    def params(self):
        return self._slice(self.s.params_start, self.s.params_end)

    @property
    def headers(self):
        return self._slice(self.s.headers_start, self.s.headers_end)

    @property
    def span(self):
        return (self.s.start, self.s.end)

    @property
    def user_span(self):
        """(start, end) of the user (the number of a tel: URI) in data; None without one."""
        return None if self.s.user_start < 0 else (self.s.user_start, self.s.user_end)

    cpdef object param(self, name):
        """Value of a URI parameter (b"" when it has none), None when absent. Scanned in place:
        no list of parts, no slices but the value's own."""
        cdef bytes key = (name.encode() if isinstance(name, str) else name)
        cdef int vs, ve
        if not uri_param_span(<cuchar *>self.data, self.s.params_start, self.s.params_end,
                              <cuchar *>key, len(key), &vs, &ve):
            return None
        return self.data[vs:ve]

    def __repr__(self):
        return f"SipUri({self.data[self.s.start:self.s.end]!r})"


cdef inline bint is_strip_ws(unsigned char c) noexcept:
    """What bytes.strip() strips."""
    return c == 32 or 9 <= c <= 13


cdef bint uri_param_span(cuchar *p, int s, int e, cuchar *name, int n, int *vs, int *ve) noexcept:
    """The value span of URI parameter `name` (case-insensitive, blanks around key and value
    ignored) among the ';'-separated params in [s, e) (s < 0: none); False when absent."""
    cdef int part_end, ks, ke, eq_at, i
    if s < 0:
        return False
    while s <= e:
        part_end = s
        while part_end < e and p[part_end] != 59:
            part_end += 1
        eq_at = s
        while eq_at < part_end and p[eq_at] != 61:
            eq_at += 1
        ks, ke = s, eq_at
        while ks < ke and is_strip_ws(p[ks]):
            ks += 1
        while ke > ks and is_strip_ws(p[ke - 1]):
            ke -= 1
        if ke - ks == n:
            i = 0
            while i < n and lower(p[ks + i]) == lower(name[i]):
                i += 1
            if i == n:
                vs[0], ve[0] = (eq_at + 1 if eq_at < part_end else part_end), part_end
                while vs[0] < ve[0] and is_strip_ws(p[vs[0]]):
                    vs[0] += 1
                while ve[0] > vs[0] and is_strip_ws(p[ve[0] - 1]):
                    ve[0] -= 1
                return True
        s = part_end + 1
    return False


cdef SipUri make_uri(bytes data, UriSpans *spans):
    cdef SipUri uri = SipUri.__new__(SipUri)
    uri.data = data
    uri.s = spans[0]
    return uri


def parse_uri(data, start=0, end=None):
    """Parse data[start:end] as a URI; SipParseError(status_hint=400) if malformed."""
    cdef bytes b = bytes(data)
    cdef int s = start, e = len(b) if end is None else end
    cdef UriSpans spans
    if s < 0 or e > len(b) or s > e:
        raise ValueError("span out of range")
    if parse_uri_spans(<cuchar *>b, s, e, &spans) < 0:
        raise SipParseError("malformed URI", 400, s)
    return make_uri(b, &spans)


_FOLD = re.compile(rb"\r?\n[ \t]+")


cdef inline _unfold(bytes value):
    return _FOLD.sub(b" ", value) if b"\n" in value else value


@cython.freelist(32)
cdef class SipMessage:
    """A scanned SIP message: offsets into `data`; properties slice lazily."""

    def __cinit__(self):
        self.hdrs = self.inline_hdrs
        self.hdr_capacity = 24
        self.ents = self.inline_ents
        self.ent_capacity = 12

    def __dealloc__(self):
        if self.hdrs != &self.inline_hdrs[0]:
            PyMem_Free(self.hdrs)
        if self.ents != &self.inline_ents[0]:
            PyMem_Free(self.ents)

    cdef int _error(self, const char *reason, int offset, int status) noexcept:
        if self.err_reason == NULL:
            self.err_reason = reason
            self.err_offset = offset
            self.err_status = status
        return -1

    cdef int _grow_headers(self) noexcept:
        cdef int cap = self.hdr_capacity * 4
        cdef HeaderEntry *grown = <HeaderEntry *>PyMem_Malloc(cap * sizeof(HeaderEntry))
        if grown == NULL:
            return self._error("out of memory", -1, 0)
        memcpy(grown, self.hdrs, self.n_headers * sizeof(HeaderEntry))
        if self.hdrs != &self.inline_hdrs[0]:
            PyMem_Free(self.hdrs)
        self.hdrs = grown
        self.hdr_capacity = cap
        return 0

    cdef int _add_entry(self, int hid, int header_index, int start, int end, int uri_start, int uri_end) noexcept:
        cdef int cap
        cdef ListEntry *grown
        if self.n_entries == self.ent_capacity:
            cap = self.ent_capacity * 4
            grown = <ListEntry *>PyMem_Malloc(cap * sizeof(ListEntry))
            if grown == NULL:
                return self._error("out of memory", -1, 0)
            memcpy(grown, self.ents, self.n_entries * sizeof(ListEntry))
            if self.ents != &self.inline_ents[0]:
                PyMem_Free(self.ents)
            self.ents = grown
            self.ent_capacity = cap
        self.ents[self.n_entries] = ListEntry(hid, header_index, start, end, uri_start, uri_end)
        self.n_entries += 1
        return 0

    # -- start line (§7.1, §7.2) ---------------------------------------------------

    cdef int _start_line(self, cuchar *p, int pos, int n) noexcept:
        """Parse the start line at pos; return the offset of the next line, -1 on error."""
        cdef cuchar *lf = <cuchar *>memchr(p + pos, 10, n - pos)
        cdef int le, nl, i, s
        cdef long long code
        if lf == NULL:
            return self._error("no end of start line", pos, 0)
        nl = <int>(lf - p) + 1
        le = nl - 1
        if le > pos and p[le - 1] == 13:
            le -= 1
        if le - pos >= 8 and eq(p, pos, pos + 4, b"SIP/"):
            # Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
            if not eq(p, pos, pos + 8, b"SIP/2.0 "):
                return self._error("unsupported SIP version in status line", pos, 0)
            i = pos + 8
            if i + 3 > le or parse_digits(p, i, i + 3, 3, &code) < 0 or code < 100 or code > 699:
                return self._error("bad status code", i, 0)
            i += 3
            if i < le and p[i] != 32:
                return self._error("bad status code", i, 0)
            self.status_code = <int>code
            self.reason_start = i + 1 if i < le else le
            self.reason_end = le
            for s in range(self.reason_start, le):
                if p[s] < 32 and p[s] != 9 or p[s] == 127:
                    return self._error("control character in reason phrase", s, 0)
            return nl
        # Request-Line = Method SP Request-URI SP SIP-Version (single spaces, §7.1).
        # Errors here are recorded, not fatal, so the header index is still built and
        # the request can be answered (400 / 505) through its Via.
        self.is_request = True
        i = skip_class(p, pos, le, C_TOKEN)
        if i == pos or i >= le or p[i] != 32:
            self._error("malformed request line", i, 400)
            return nl
        self.method_start = pos
        self.method_end = i
        self.method_id = method_id(p, pos, i)
        s = i + 1
        i = s
        while i < le and p[i] > 32 and p[i] != 127:
            i += 1
        if i == s or i >= le or p[i] != 32:
            self._error("malformed request line", i, 400)
            return nl
        self.ruri_start = s
        self.ruri_end = i
        if parse_uri_spans(p, s, i, &self.ruri_spans) < 0:
            self._error("malformed Request-URI", s, 400)
        elif self.ruri_spans.headers_start >= 0:
            self._error("Request-URI must not carry URI headers (RFC 3261 19.1.1)", s, 400)
        i += 1
        if le - i == 7 and ieq(p, i, le, b"sip/2.0"):
            return nl
        if is_sip_version(p, i, le):
            self._error("unsupported SIP version", i, 505)
        else:
            self._error("malformed SIP version in request line", i, 400)
        return nl

    # -- header values ------------------------------------------------------------

    cdef int _via_list(self, cuchar *p, int index, int s, int e) noexcept:
        """via-parm *(COMMA via-parm) (§20.42); records every value, details of the first."""
        cdef int i = s, start, end, j, ns, ne, vs, ve, hs, he, ts, te, port
        cdef int span[5]
        cdef long long v
        cdef bint top
        while True:
            i = skip_lws(p, i, e)
            start = i
            top = self.via_count == 0
            # sent-protocol = protocol-name SLASH protocol-version SLASH transport
            j = skip_class(p, i, e, C_TOKEN)
            if j == i:
                return self._error("malformed Via", i, 400)
            i = skip_lws(p, j, e)
            if i >= e or p[i] != 47:
                return self._error("malformed Via", i, 400)
            i = skip_lws(p, i + 1, e)
            j = skip_class(p, i, e, C_TOKEN)
            if j == i:
                return self._error("malformed Via", i, 400)
            i = skip_lws(p, j, e)
            if i >= e or p[i] != 47:
                return self._error("malformed Via", i, 400)
            ts = skip_lws(p, i + 1, e)
            te = skip_class(p, ts, e, C_TOKEN)
            i = skip_lws(p, te, e)
            if te == ts or i == te:
                return self._error("malformed Via", i, 400)
            # sent-by = host [ COLON port ]
            hs = i
            he = parse_host(p, i, e)
            if he < 0:
                return self._error("malformed Via sent-by host", i, 400)
            i = skip_lws(p, he, e)
            port = 0
            if i < e and p[i] == 58:
                i = skip_lws(p, i + 1, e)
                j = i
                while j < e and is_digit(p[j]):
                    j += 1
                if parse_digits(p, i, j, 5, &v) < 0 or v == 0 or v > 65535:
                    return self._error("malformed Via port", i, 400)
                port = <int>v
                i = skip_lws(p, j, e)
            # *( SEMI via-params ); values: token / quoted-string / host (RFC 5118 §4.5)
            while i < e and p[i] == 59:
                i = scan_param(p, i, e, span)
                if i < 0:
                    return self._error(param_error(i, True), span[4], 400)
                ns, ne, vs, ve = span[0], span[1], span[2], span[3]
                # branch and rport are checked in every Via, not only the top one: once fastds
                # pops its own Via, the next one is the top of the response it relays
                if ieq(p, ns, ne, b"branch"):
                    if vs < 0:
                        return self._error("Via branch without value", ns, 400)
                    if top:
                        self.branch_start = vs
                        self.branch_end = ve
                elif ieq(p, ns, ne, b"rport"):
                    if vs >= 0 and (parse_digits(p, vs, ve, 5, &v) < 0 or v > 65535):
                        return self._error("malformed Via rport", vs, 400)
                    if top:
                        self.rport_param_start = ns
                        self.rport_param_end = ve if vs >= 0 else ne
                        self.rport = -1 if vs < 0 else <int>v
                elif top and ieq(p, ns, ne, b"received") and vs >= 0:
                    self.received_start = vs
                    self.received_end = ve
                elif top and ieq(p, ns, ne, b"maddr") and vs >= 0:
                    self.maddr_start = vs
                    self.maddr_end = ve
            end = i
            while end > start and is_ws(p[end - 1]):
                end -= 1
            if top:  # only a Via read to its end counts as readable (status hints need it)
                self.via_start = start
                self.via_end = end
                self.via_transport_start = ts
                self.via_transport_end = te
                self.via_host_start = hs
                self.via_host_end = he
                self.via_port = port
            self.via_count += 1
            if self._add_entry(H_VIA, index, start, end, -1, -1) < 0:
                return -1
            if i >= e:
                return 0
            if p[i] != 44:
                return self._error("malformed Via", i, 400)
            i += 1

    cdef int _name_addr(self, cuchar *p, int s, int e, bint in_list, int *out) noexcept:
        """( name-addr / addr-spec ) *( SEMI param ) (§20.10, §20.20, §20.39).

        out receives [entry start, entry end, uri start, uri end, tag start, tag end];
        returns the offset where parsing stopped (',' when in_list, else e), or -1.
        """
        cdef int i = skip_lws(p, s, e), j, ns, ne, vs, ve
        cdef int span[5]
        cdef UriSpans uri
        out[0] = i
        out[4] = out[5] = -1
        if i < e and p[i] == 34:
            i = skip_quoted(p, i, e)
            if i < 0:
                return self._error("unbalanced quotes in display name", s, 400)
            i = skip_lws(p, i, e)
            if i >= e or p[i] != 60:
                return self._error("display name without <URI>", i, 400)
        else:
            j = i
            while j < e and (CHARS[p[j]] & C_TOKEN or is_ws(p[j]) or p[j] == 13 or p[j] == 10):
                j += 1
            if j < e and p[j] == 60:
                i = j
        if i < e and p[i] == 60:
            j = i + 1
            while j < e and p[j] != 62:
                j += 1
            if j >= e:
                return self._error("missing > after URI", i, 400)
            out[2] = i + 1
            out[3] = j
            i = j + 1
        else:
            # addr-spec: its ';' parameters belong to the header, not to the URI (§20)
            j = i
            while j < e and p[j] != 59 and not is_ws(p[j]) and p[j] != 13 and p[j] != 10 and not (in_list and p[j] == 44):
                j += 1
            out[2] = i
            out[3] = j
            i = j
        if parse_uri_spans(p, out[2], out[3], &uri) < 0:
            return self._error("malformed URI in address", out[2], 400)
        end = i
        i = skip_lws(p, i, e)
        while i < e and p[i] == 59:
            i = scan_param(p, i, e, span)
            if i < 0:
                return self._error(param_error(i, False), span[4], 400)
            ns, ne, vs, ve = span[0], span[1], span[2], span[3]
            end = ve if vs >= 0 else ne
            if vs >= 0 and ieq(p, ns, ne, b"tag"):
                out[4] = vs
                out[5] = ve
        out[1] = end
        if i < e and not (in_list and p[i] == 44):
            return self._error("unexpected characters after address", i, 400)
        return i

    cdef int _single_address(self, cuchar *p, int s, int e, int *uri_s, int *uri_e, int *tag_s, int *tag_e) noexcept:
        cdef int out[6]
        if self._name_addr(p, s, e, False, out) < 0:
            return -1
        uri_s[0] = out[2]
        uri_e[0] = out[3]
        tag_s[0] = out[4]
        tag_e[0] = out[5]
        return 0

    cdef int _address_list(self, cuchar *p, int index, int s, int e) noexcept:
        """Route / Record-Route / Contact: comma-separated addresses, each recorded."""
        cdef int hid = self.hdrs[index].hid, i = s
        cdef int out[6]
        if hid == H_CONTACT and e - s == 1 and p[s] == 42:  # Contact: *
            return self._add_entry(hid, index, s, e, -1, -1)
        while True:
            i = self._name_addr(p, i, e, True, out)
            if i < 0:
                return -1
            if self._add_entry(hid, index, out[0], out[1], out[2], out[3]) < 0:
                return -1
            if i >= e:
                return 0
            i += 1  # the comma

    cdef int _cseq(self, cuchar *p, int s, int e) noexcept:
        """CSeq = 1*DIGIT LWS Method (§20.16); the number is below 2**31 (§8.1.1.5)."""
        cdef int i = s, j
        cdef long long v
        while i < e and is_digit(p[i]):
            i += 1
        if parse_digits(p, s, i, 10, &v) < 0 or v > 2147483647:
            return self._error("malformed CSeq number", s, 400)
        j = skip_lws(p, i, e)
        if j == i:
            return self._error("malformed CSeq", i, 400)
        i = skip_class(p, j, e, C_TOKEN)
        if i == j or i != e:
            return self._error("malformed CSeq method", j, 400)
        self.cseq_number = v
        self.cseq_method_start = j
        self.cseq_method_end = i
        return 0

    cdef int _call_id(self, cuchar *p, int s, int e) noexcept:
        """callid = word [ "@" word ] (§25.1)."""
        cdef int i = skip_class(p, s, e, C_WORD)
        if i < e and p[i] == 64 and i > s:
            i = skip_class(p, i + 1, e, C_WORD)
        if i == s or i != e:
            return self._error("malformed Call-ID", s, 400)
        self.call_id_start = s
        self.call_id_end = e
        return 0

    cdef int _header(self, cuchar *p, int index) noexcept:
        """Parse the value of a known header; -1 on an error (already recorded)."""
        cdef HeaderEntry *h = &self.hdrs[index]
        cdef int s = h.value_start, e = h.value_end, hid = h.hid
        cdef long long v
        if hid == H_VIA:
            if self.idx_first_via < 0:
                self.idx_first_via = index
            return self._via_list(p, index, s, e)
        if hid == H_ROUTE or hid == H_RECORD_ROUTE or hid == H_CONTACT:
            if hid == H_ROUTE and self.idx_first_route < 0:
                self.idx_first_route = index
            elif hid == H_RECORD_ROUTE and self.idx_first_record_route < 0:
                self.idx_first_record_route = index
            return self._address_list(p, index, s, e)
        if hid == H_AUTHORIZATION or hid == H_PROXY_AUTHORIZATION:
            if hid == H_AUTHORIZATION and self.auth_user_start < 0:
                auth_username(p, s, e, &self.auth_user_start, &self.auth_user_end)
            elif hid == H_PROXY_AUTHORIZATION and self.proxy_auth_user_start < 0:
                auth_username(p, s, e, &self.proxy_auth_user_start, &self.proxy_auth_user_end)
            return 0
        if hid == H_FROM:
            if self.idx_from >= 0:
                return self._error("more than one From header", h.line_start, 400)
            self.idx_from = index
            return self._single_address(p, s, e, &self.from_uri_start, &self.from_uri_end,
                                        &self.from_tag_start, &self.from_tag_end)
        if hid == H_TO:
            if self.idx_to >= 0:
                return self._error("more than one To header", h.line_start, 400)
            self.idx_to = index
            return self._single_address(p, s, e, &self.to_uri_start, &self.to_uri_end,
                                        &self.to_tag_start, &self.to_tag_end)
        if hid == H_CALL_ID:
            if self.idx_call_id >= 0:
                return self._error("more than one Call-ID header", h.line_start, 400)
            self.idx_call_id = index
            return self._call_id(p, s, e)
        if hid == H_CSEQ:
            if self.idx_cseq >= 0:
                return self._error("more than one CSeq header", h.line_start, 400)
            self.idx_cseq = index
            return self._cseq(p, s, e)
        if hid == H_MAX_FORWARDS:
            if self.idx_max_forwards >= 0:
                return self._error("more than one Max-Forwards header", h.line_start, 400)
            self.idx_max_forwards = index
            if parse_digits(p, s, e, 3, &v) < 0 or v > 255:
                return self._error("Max-Forwards is not a number from 0 to 255", s, 400)
            self.max_forwards = <int>v
            self.max_forwards_start = s
            self.max_forwards_end = e
            return 0
        if hid == H_CONTENT_LENGTH:
            if self.idx_content_length >= 0:
                return self._error("more than one Content-Length header", h.line_start, 400)
            self.idx_content_length = index
            if parse_digits(p, s, e, 10, &v) < 0 or v > 2147483647:
                return self._error("Content-Length is not a non-negative number", s, 400)
            self.content_length = <int>v
            return 0
        return 0

    cdef int _finish(self, cuchar *p, int n) noexcept:
        """Body length (§18.3, §20.14), mandatory headers (§8.1.1), CSeq method (§8.1.1.5)."""
        cdef int available = n - self.body_start
        self.body_end = n
        if self.content_length >= 0:
            if available < self.content_length:
                return self._error("body shorter than Content-Length", self.body_start, 400)
            self.body_end = self.body_start + self.content_length  # longer: truncate (§18.3)
        if self.via_count == 0:
            return self._error("missing Via header", -1, 0)
        if self.idx_from < 0 or self.idx_to < 0 or self.idx_call_id < 0 or self.idx_cseq < 0:
            return self._error("missing one of From, To, Call-ID, CSeq", -1, 400)
        if self.is_request and self.cseq_method_start >= 0 and self.method_start >= 0:
            if (self.method_end - self.method_start != self.cseq_method_end - self.cseq_method_start
                or not _same_bytes(p, self.method_start, self.cseq_method_start,
                                   self.method_end - self.method_start)):
                return self._error("CSeq method does not match the request method", self.cseq_method_start, 400)
        return 0

    # -- Python accessors ---------------------------------------------------------

    cdef _slice(self, int s, int e):
        return None if s < 0 else self.data[s:e]

    @property
    def method(self):
        return self._slice(self.method_start, self.method_end)

    @property
    def request_uri(self):
        return self._slice(self.ruri_start, self.ruri_end)

    @property
    def ruri(self):
        """The parsed Request-URI (SipUri), None for a response."""
        return make_uri(self.data, &self.ruri_spans) if self.is_request else None

    @property
    def reason(self):
        return None if self.is_request else self.data[self.reason_start:self.reason_end]

    @property
    def call_id(self):
        return self._slice(self.call_id_start, self.call_id_end)

    @property
    def cseq_method(self):
        return self._slice(self.cseq_method_start, self.cseq_method_end)

    @property
    def from_uri(self):
        return self._slice(self.from_uri_start, self.from_uri_end)

    @property
    def from_tag(self):
        return self._slice(self.from_tag_start, self.from_tag_end)

    @property
    def to_uri(self):
        return self._slice(self.to_uri_start, self.to_uri_end)

    @property
    def to_tag(self):
        return self._slice(self.to_tag_start, self.to_tag_end)

    @property
    def body(self):
        return self.data[self.body_start:self.body_end]

    @property
    def top_via(self):
        return self._slice(self.via_start, self.via_end)

    @property
    def branch(self):
        return self._slice(self.branch_start, self.branch_end)

    @property
    def via_transport(self):
        return self._slice(self.via_transport_start, self.via_transport_end)

    @property
    def via_host(self):
        return self._slice(self.via_host_start, self.via_host_end)

    @property
    def received(self):
        return self._slice(self.received_start, self.received_end)

    @property
    def maddr(self):
        return self._slice(self.maddr_start, self.maddr_end)

    @property
    def auth_username(self):
        """Digest username of Proxy-Authorization, else of Authorization (None if neither)."""
        if self.proxy_auth_user_start >= 0:
            return self.data[self.proxy_auth_user_start:self.proxy_auth_user_end]
        return self._slice(self.auth_user_start, self.auth_user_end)

    def uri_of(self, str which):
        """Parse the From / To URI on demand: which is "from" or "to"."""
        cdef UriSpans spans
        cdef int s, e
        if which == "from":
            s, e = self.from_uri_start, self.from_uri_end
        elif which == "to":
            s, e = self.to_uri_start, self.to_uri_end
        else:
            raise ValueError(f"which must be 'from' or 'to', not {which!r}")
        if s < 0:
            return None
        parse_uri_spans(<cuchar *>self.data, s, e, &spans)  # validated by the scan
        return make_uri(self.data, &spans)

    def _entries(self, int hid):
        cdef int i
        return [self.data[self.ents[i].start:self.ents[i].end]
                for i in range(self.n_entries) if self.ents[i].hid == hid]

    @property
    def vias(self):
        """Every Via value, top first, across comma lists and header lines."""
        return self._entries(H_VIA)

    @property
    def routes(self):
        return self._entries(H_ROUTE)

    @property
    def record_routes(self):
        return self._entries(H_RECORD_ROUTE)

    @property
    def contacts(self):
        return self._entries(H_CONTACT)

    def entry_spans(self, str kind):
        """[(start, end, uri_start, uri_end, header_index)] of "via", "route",
        "record-route" or "contact" values, in message order."""
        cdef int i, hid = {"via": H_VIA, "route": H_ROUTE, "record-route": H_RECORD_ROUTE,
                           "contact": H_CONTACT}[kind]
        cdef ListEntry *x
        result = []
        for i in range(self.n_entries):
            x = &self.ents[i]
            if x.hid == hid:
                result.append((x.start, x.end, x.uri_start, x.uri_end, x.header_index))
        return result

    def first_value_cut(self, str kind):
        """(start, end) to delete so that the first "via" or "route" value disappears:
        its whole header line when it stands alone there, else the value and the comma
        after it (§16.7 pops our Via from responses, §16.4 our Route from requests)."""
        cdef int hid = H_VIA if kind == "via" else H_ROUTE if kind == "route" else -1
        cdef int start, end
        if hid < 0:
            raise ValueError(f"kind must be 'via' or 'route', not {kind!r}")
        if not self.value_cut(hid, &start, &end):
            return None
        return (start, end)

    cdef bint value_cut(self, int hid, int *start, int *end) noexcept:
        """first_value_cut() for H_VIA or H_ROUTE, in C; False when there is no such value."""
        cdef int i, first = -1
        cdef HeaderEntry *h
        for i in range(self.n_entries):
            if self.ents[i].hid != hid:
                continue
            if first < 0:
                first = i
                continue
            if self.ents[i].header_index == self.ents[first].header_index:
                start[0], end[0] = self.ents[first].start, self.ents[i].start
                return True
            break
        if first < 0:
            return False
        h = &self.hdrs[self.ents[first].header_index]
        start[0], end[0] = h.line_start, h.line_end
        return True

    def header_span(self, int index):
        """(line_start, name_end, value_start, value_end, line_end) of header `index`."""
        if not 0 <= index < self.n_headers:
            raise IndexError(index)
        cdef HeaderEntry *h = &self.hdrs[index]
        return (h.line_start, h.name_end, h.value_start, h.value_end, h.line_end)

    def header_spans(self, name):
        """header_span() of every header line called `name` (compact forms match long ones)."""
        cdef bytes key = name.encode() if isinstance(name, str) else bytes(name)
        cdef int hid = header_id(<cuchar *>key, 0, len(key)), i
        cdef HeaderEntry *h
        cdef cuchar *p = <cuchar *>self.data
        result = []
        for i in range(self.n_headers):
            h = &self.hdrs[i]
            if hid != H_OTHER:
                if h.hid != hid:
                    continue
            elif h.hid != H_OTHER or h.name_end - h.line_start != len(key) or not _ieq_bytes(p, h.line_start, key):
                continue
            result.append((h.line_start, h.name_end, h.value_start, h.value_end, h.line_end))
        return result

    cpdef bint has_header(self, bytes name):
        """A header line called `name` is there (compact forms match long ones); no list made."""
        cdef int hid = header_id(<cuchar *>name, 0, len(name)), i
        cdef HeaderEntry *h
        for i in range(self.n_headers):
            h = &self.hdrs[i]
            if (h.hid == hid) if hid != H_OTHER else (
                    h.hid == H_OTHER and h.name_end - h.line_start == len(name)
                    and _ieq_bytes(<cuchar *>self.data, h.line_start, name)):
                return True
        return False

    def header_values(self, name):
        """Values of every header line called `name`, in order, folding undone (§7.3.1)."""
        return [_unfold(self.data[s[2]:s[3]]) for s in self.header_spans(name)]

    def header(self, name):
        """The first value of header `name`, or None."""
        spans = self.header_spans(name)
        return _unfold(self.data[spans[0][2]:spans[0][3]]) if spans else None

    def headers(self):
        """[(name, value)] of every header line, names as written."""
        cdef int i
        cdef HeaderEntry *h
        result = []
        for i in range(self.n_headers):
            h = &self.hdrs[i]
            result.append((self.data[h.line_start:h.name_end], _unfold(self.data[h.value_start:h.value_end])))
        return result

    cpdef object next_hop(self, int skip_routes):
        """Where a loose-routed request goes once its top `skip_routes` Routes are popped: the
        next Route's URI, else the Request-URI, as (IP, port, transport): transport 'udp',
        'tcp' or 'tls' (sips: is TLS, never anything else), the port its default when absent.
        None when that URI does not parse, asks for another transport, or its host is a name
        (workers do no DNS). maddr is never followed."""
        cdef int i, seen = 0, s = self.ruri_start, e = self.ruri_end, vs, ve
        cdef UriSpans u
        cdef cuchar *p = <cuchar *>self.data
        for i in range(self.n_entries):
            if self.ents[i].hid == H_ROUTE:
                if seen == skip_routes:
                    s, e = self.ents[i].uri_start, self.ents[i].uri_end
                    break
                seen += 1
        if s < 0 or parse_uri_spans(p, s, e, &u) < 0 or u.host_start < 0 or not ip_literal_span(p, u.host_start, u.host_end):
            return None
        if u.kind == URI_SIPS:
            transport = "tls"
        elif not uri_param_span(p, u.params_start, u.params_end, <cuchar *>b"transport", 9, &vs, &ve) or vs == ve \
                or ieq(p, vs, ve, b"udp"):
            transport = "udp"
        elif ieq(p, vs, ve, b"tcp"):
            transport = "tcp"
        elif ieq(p, vs, ve, b"tls"):
            transport = "tls"
        else:
            return None
        if p[u.host_start] == 91:  # [IPv6]
            host = self.data[u.host_start + 1:u.host_end - 1].decode("ascii")
        else:
            host = self.data[u.host_start:u.host_end].decode("ascii")
        return (host, u.port or (5061 if transport == "tls" else 5060), transport)

    cpdef bytes server_key(self, bytes method=None):
        """The key of the server transaction a request belongs to (§17.2.3), one bytes object:
        top Via branch, sent-by and method; without the magic cookie (RFC 2543 peers) the
        request's identity -- Request-URI, From tag, Call-ID, CSeq number, top Via -- and
        method. method: of the transaction to look for; by default the request's own, ACK
        as INVITE (b"INVITE" finds the INVITE a CANCEL cancels, §9.2)."""
        cdef cuchar *p = <cuchar *>self.data
        cdef cuchar *m
        cdef int m_start = 0, m_end
        if method is None:
            if self.cseq_method_end - self.cseq_method_start == 3 and _same_prefix(p + self.cseq_method_start, b"ACK", 3):
                method = b"INVITE"
            else:
                method = self.data
                m_start, m_end = self.cseq_method_start, self.cseq_method_end
        if m_start == 0:
            m_end = len(method)
        m = <cuchar *>method
        cdef KeyParts key
        key.n = 0
        if self.branch_start >= 0 and self.branch_end - self.branch_start >= 7 and \
                _same_prefix(p + self.branch_start, b"z9hG4bK", 7):
            key_part(&key, p, self.branch_start, self.branch_end)
            key_part(&key, p, self.via_host_start, self.via_host_end)
            key_number(&key, self.via_port)
        else:
            key_part(&key, p, self.ruri_start, self.ruri_end)
            key_part(&key, p, self.from_tag_start, self.from_tag_end)
            key_part(&key, p, self.call_id_start, self.call_id_end)
            key_number(&key, self.cseq_number)
            key_part(&key, p, self.via_start, self.via_end)
        key_part(&key, m, m_start, m_end)
        return key_bytes(&key)

    cpdef bytes client_key(self):
        """The key of the client transaction a response belongs to (§17.1.3): what
        client_key_of() gives for the top Via branch and the CSeq method."""
        cdef KeyParts key
        key.n = 0
        key_part(&key, <cuchar *>self.data, self.branch_start, self.branch_end)
        key_part(&key, <cuchar *>self.data, self.cseq_method_start, self.cseq_method_end)
        return key_bytes(&key)

    def __repr__(self):
        if self.is_request:
            return f"<SipMessage {self.method!r} {self.request_uri!r}>"
        return f"<SipMessage {self.status_code} {self.reason!r}>"


cdef bint _same_prefix(cuchar *p, const char *prefix, int n) noexcept:
    cdef int i
    for i in range(n):
        if p[i] != <cuchar>prefix[i]:
            return False
    return True


# Transaction keys: each part as a 4-byte length and its bytes (an absent part has length
# 0xFFFFFFFF), so no two different lists of parts give the same key.
cdef enum:
    KEY_PARTS = 6

cdef struct KeyParts:
    const unsigned char *p[KEY_PARTS]
    Py_ssize_t n_bytes[KEY_PARTS]
    bint absent[KEY_PARTS]
    unsigned char numbers[KEY_PARTS][8]  # a number part, little-endian
    int n


cdef inline void key_part(KeyParts *key, cuchar *p, Py_ssize_t start, Py_ssize_t end) noexcept:
    key.p[key.n], key.n_bytes[key.n], key.absent[key.n] = p + start, end - start, start < 0
    if start < 0:
        key.n_bytes[key.n] = 0
    key.n += 1


cdef inline void key_number(KeyParts *key, long long value) noexcept:
    cdef int i
    for i in range(8):
        key.numbers[key.n][i] = <unsigned char>(value >> (8 * i))
    key.p[key.n], key.n_bytes[key.n], key.absent[key.n] = key.numbers[key.n], 8, False
    key.n += 1


cdef bytes key_bytes(KeyParts *key):
    cdef Py_ssize_t size = 0
    cdef int i, k
    cdef unsigned int length
    for i in range(key.n):
        size += 4 + key.n_bytes[i]
    cdef bytes out = PyBytes_FromStringAndSize(NULL, size)
    cdef unsigned char *at = <unsigned char *>PyBytes_AS_STRING(out)
    for i in range(key.n):
        length = 0xFFFFFFFF if key.absent[i] else <unsigned int>key.n_bytes[i]
        for k in range(4):
            at[k] = <unsigned char>(length >> (8 * k))
        memcpy(at + 4, key.p[i], key.n_bytes[i])
        at += 4 + key.n_bytes[i]
    return out


def client_key_of(bytes branch not None, bytes method not None) -> bytes:
    """The key of a client transaction fastds sent with `branch` for `method` (§17.1.3), as
    SipMessage.client_key() finds it from a response."""
    cdef KeyParts key
    key.n = 0
    key_part(&key, <cuchar *>branch, 0, len(branch))
    key_part(&key, <cuchar *>method, 0, len(method))
    return key_bytes(&key)


cdef bint _same_bytes(cuchar *p, int a, int b, int n) noexcept:
    cdef int i
    for i in range(n):
        if p[a + i] != p[b + i]:
            return False
    return True


cdef bint _ieq_bytes(cuchar *p, int s, bytes key) noexcept:
    cdef cuchar *k = <cuchar *>key
    cdef int i
    for i in range(len(key)):
        if lower(p[s + i]) != lower(k[i]):
            return False
    return True


cdef void auth_username(cuchar *p, int s, int e, int *us, int *ue) noexcept:
    """credentials = auth-scheme LWS auth-params (§20.7, §25.1): the username value.
    Unreadable credentials are not an error for a proxy; they just have no username."""
    cdef int i = skip_class(p, s, e, C_TOKEN), ns, ne, vs, ve
    while i < e:
        ns = skip_lws(p, i, e)
        ne = skip_class(p, ns, e, C_TOKEN)
        if ne == ns:
            return
        i = skip_lws(p, ne, e)
        if i >= e or p[i] != 61:
            return
        vs = skip_lws(p, i + 1, e)
        if vs < e and p[vs] == 34:
            ve = skip_quoted(p, vs, e)
            if ve < 0:
                return
            if ieq(p, ns, ne, b"username"):
                us[0] = vs + 1
                ue[0] = ve - 1
                return
        else:
            ve = skip_class(p, vs, e, C_TOKEN)
            if ieq(p, ns, ne, b"username"):
                us[0] = vs
                ue[0] = ve
                return
        i = skip_lws(p, ve, e)
        if i >= e or p[i] != 44:
            return
        i += 1

# ---------------------------------------------------------------------------------
# the scan


cdef SipMessage scan_message(bytes data, int max_bytes, int max_headers):
    cdef SipMessage m = SipMessage.__new__(SipMessage)
    cdef cuchar *p = <cuchar *>data
    cdef int n = len(data), pos = 0, line_start, colon, i, index
    cdef cuchar *lf
    cdef HeaderEntry *h
    m.data = data
    m.idx_call_id = m.idx_from = m.idx_to = m.idx_cseq = -1
    m.idx_max_forwards = m.idx_content_length = -1
    m.idx_first_via = m.idx_first_route = m.idx_first_record_route = -1
    m.method_start = m.method_end = m.ruri_start = m.ruri_end = -1
    m.call_id_start = m.cseq_method_start = m.from_uri_start = m.from_tag_start = -1
    m.to_uri_start = m.to_tag_start = m.max_forwards = m.max_forwards_start = -1
    m.content_length = m.auth_user_start = m.proxy_auth_user_start = -1
    m.via_start = m.branch_start = m.received_start = m.maddr_start = -1
    m.via_transport_start = m.via_host_start = m.rport_param_start = -1
    m.rport = -2
    cdef bint too_large = n > max_bytes  # the head is still read, so a request can be answered 513
    while pos + 1 < n and p[pos] == 13 and p[pos + 1] == 10:  # leading CRLFs (§7.5)
        pos += 2
    pos = m._start_line(p, pos, n)
    if pos < 0:
        return m
    while True:
        if pos >= n:
            m._error("message ends before the empty line after the headers", pos, 400)
            return m
        if p[pos] == 10 or (p[pos] == 13 and pos + 1 < n and p[pos + 1] == 10):
            m.headers_end = pos
            m.body_start = pos + (1 if p[pos] == 10 else 2)
            break
        line_start = pos
        # field-name HCOLON (§7.3.1): HCOLON = *( SP / HTAB ) ":" SWS
        i = skip_class(p, pos, n, C_TOKEN)
        if i == pos:
            m._error("header line does not start with a header name", pos, 400)
            return m
        colon = i
        while colon < n and is_ws(p[colon]):
            colon += 1
        if colon >= n or p[colon] != 58:
            m._error("header name not followed by a colon", i, 400)
            return m
        if m.n_headers == max_headers:
            m._error("more headers than FASTDS_SIP_MAX_HEADERS", line_start, 400)
            return m
        if m.n_headers == m.hdr_capacity and m._grow_headers() < 0:
            return m
        index = m.n_headers
        h = &m.hdrs[index]
        h.line_start = line_start
        h.name_end = i
        h.hid = header_id(p, line_start, i)
        # the value runs to the first line break not followed by SP / HT
        pos = colon + 1
        while True:
            lf = <cuchar *>memchr(p + pos, 10, n - pos)
            if lf == NULL:
                m._error("header line without line end", line_start, 400)
                return m
            pos = <int>(lf - p) + 1
            if pos >= n or not is_ws(p[pos]):
                break
        h.line_end = pos
        i = pos  # strip the line break and trailing whitespace, folds included
        while i > colon + 1 and (p[i - 1] == 13 or p[i - 1] == 10 or is_ws(p[i - 1])):
            i -= 1
        h.value_end = i
        h.value_start = skip_lws(p, colon + 1, i)
        m.n_headers += 1
        if h.hid != H_OTHER:
            m._header(p, index)  # a bad value is recorded; keep indexing to find the Via
    if too_large:
        m._error("message larger than FASTDS_SIP_MAX_MESSAGE_BYTES", max_bytes, 513)
        return m
    m._finish(p, n)
    return m


cpdef SipMessage scan(object data, int max_bytes=65535, int max_headers=256):
    """Scan one SIP message (one UDP datagram, or one framed stream message).

    Returns a SipMessage; raises SipParseError for anything malformed, with
    status_hint 400 / 505 / 513 for a request whose top Via was read (the partial message
    rides on the exception) and 0 when the message must just be dropped.
    """
    cdef bytes b = data if type(data) is bytes else bytes(data)
    cdef SipMessage m = scan_message(b, max_bytes, max_headers)
    cdef int status
    if m.err_reason == NULL:
        return m
    status = m.err_status if (m.is_request and m.via_start >= 0) else 0
    raise SipParseError(m.err_reason.decode(), status, m.err_offset, m if status else None)


cpdef object call_id_of(object data):
    """The Call-ID of a datagram without scanning the whole message: the first header line
    named Call-ID or i (compact), value trimmed; None when there is none before the blank
    line (the full scan then decides what the datagram is). The worker that receives a
    datagram uses it to find the Call-ID's owner (fastds/net/handoff.py)."""
    cdef bytes b = data if type(data) is bytes else bytes(data)
    cdef cuchar *p = <cuchar *>b
    cdef int n = len(b), pos = 0, end, name_end, vs, ve
    cdef cuchar *lf
    while pos < n:
        lf = <cuchar *>memchr(p + pos, 10, n - pos)
        end = n if lf == NULL else <int>(lf - p)
        if end == pos or (end == pos + 1 and p[pos] == 13):
            return None  # the blank line: no Call-ID in the headers
        name_end = skip_class(p, pos, end, C_TOKEN)
        vs = skip_lws(p, name_end, end)
        if vs < end and p[vs] == 58 and (ieq(p, pos, name_end, b"call-id") or ieq(p, pos, name_end, b"i")):
            vs = skip_lws(p, vs + 1, end)
            ve = end
            while ve > vs and (p[ve - 1] == 13 or is_ws(p[ve - 1])):
                ve -= 1
            return b[vs:ve] if ve > vs else None
        pos = end + 1
    return None
