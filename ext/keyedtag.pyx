# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""fastds's keyed tags in C: the MAC in our Via branches and Record-Route URIs.

Owns keyed BLAKE2b (RFC 7693: the compression of §3.2, the keyed init and padding of §3.3)
truncated to 6 bytes and written as 12 lower-case hex digits: bit for bit what hashlib's
blake2b(key=secret, digest_size=6).hexdigest() gives, so branches and routes made before this
module existed, and by other nodes, still verify (a node upgrade keeps its calls). Why BLAKE2b
and not SipHash: the tags on the wire are already BLAKE2b. Why not hashlib: its object, copy
and hex string cost ~4 allocations and ~5,000 instructions per tag; here a tag is one state
copy and one compression on the stack. Checks compare in constant time. The secret stays in
the keyed state, never in a repr or an exception.
"""

from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcpy, memset

cdef enum:
    BLOCK = 128
    DIGEST = 6  # bytes of MAC in a tag
    HEX = 12    # DIGEST as hex digits

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


cdef struct Blake2b:
    uint64_t h[8]
    uint64_t t          # bytes compressed so far (tags are far below 2**64)
    uint8_t buf[BLOCK]
    int buflen


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


cdef class KeyedTag:
    """The MAC of fastds's tags under one secret (1 to 64 bytes, BLAKE2b's key limit). The
    key block is compressed once; every tag starts from a copy of that state (an empty
    message, where the key block is the last one, from the state before it)."""

    cdef Blake2b keyed      # the key block buffered, not compressed
    cdef Blake2b after_key  # ... and compressed: where any non-empty message starts

    def __init__(self, bytes secret not None):
        cdef Py_ssize_t n = len(secret)
        if not 0 < n <= 64:
            raise ValueError(f"the secret must be 1 to 64 bytes, not {n}")
        memcpy(self.keyed.h, IV, sizeof(IV))
        self.keyed.h[0] ^= 0x01010000 ^ (<uint64_t>n << 8) ^ DIGEST
        self.keyed.t = 0
        memset(self.keyed.buf, 0, BLOCK)
        memcpy(self.keyed.buf, <const char *>secret, n)
        self.keyed.buflen = BLOCK  # the key block, padded to a block (§3.3)
        self.after_key = self.keyed
        self.after_key.t = BLOCK
        compress(&self.after_key, self.after_key.buf, False)
        self.after_key.buflen = 0

    def __repr__(self):
        return "KeyedTag(<secret>)"

    def __call__(self, bytes data not None) -> bytes:
        """The tag of data: 12 hex digits."""
        cdef Blake2b state = self.after_key if len(data) else self.keyed
        cdef uint8_t out[HEX]
        update(&state, <const uint8_t *><const char *>data, len(data))
        finish_hex(&state, out)
        return (<char *>out)[:HEX]

    def branch(self, bytes prefix not None, unsigned long long number) -> bytes:
        """prefix + number in hex + '.' + the tag of both: a Via branch id, one allocation."""
        cdef uint8_t buf[256]
        cdef Py_ssize_t n = len(prefix), body
        cdef int digits = 1
        cdef Blake2b state = self.after_key
        if n > 256 - 16 - 1 - HEX:
            raise ValueError("branch prefix too long")
        while digits < 16 and number >> (4 * digits):
            digits += 1
        memcpy(buf, <const char *>prefix, n)
        for body in range(digits):
            buf[n + digits - 1 - body] = HEX_DIGITS[(number >> (4 * body)) & 15]
        body = n + digits
        update(&state, buf, body)
        buf[body] = 46  # '.'
        finish_hex(&state, buf + body + 1)
        return (<char *>buf)[:body + 1 + HEX]

    def signs_branch(self, bytes branch not None) -> bool:
        """branch ends in '.' + the tag of what precedes the last '.' (what branch() made; the
        part before the '.' is never empty)."""
        cdef const uint8_t *p = <const uint8_t *><const char *>branch
        cdef Py_ssize_t n = len(branch)
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

    cdef void _dialog(self, Blake2b *state, bytes call_id, bytes dialog_tag, bytes flow) noexcept:
        """The dialog's signed text: Call-ID '|' tag, and '|' flow when there is one."""
        state[0] = self.after_key  # at least the '|' follows
        update(state, <const uint8_t *><const char *>call_id, len(call_id))
        update(state, <const uint8_t *>b"|", 1)
        update(state, <const uint8_t *><const char *>dialog_tag, len(dialog_tag))
        if flow is not None:
            update(state, <const uint8_t *>b"|", 1)
            update(state, <const uint8_t *><const char *>flow, len(flow))

    def dialog(self, bytes call_id not None, bytes dialog_tag not None, bytes flow=None) -> bytes:
        """The tag of a dialog's Record-Route: over Call-ID, its first From tag and the
        connection it names (flow, hex), if any."""
        cdef Blake2b state
        cdef uint8_t out[HEX]
        self._dialog(&state, call_id, dialog_tag, flow)
        finish_hex(&state, out)
        return (<char *>out)[:HEX]

    def signs_dialog(self, bytes tag not None, bytes call_id not None, bytes dialog_tag not None,
                     bytes flow=None) -> bool:
        """tag is dialog(call_id, dialog_tag, flow), compared in constant time."""
        cdef Blake2b state
        cdef uint8_t mine[HEX]
        if len(tag) != HEX:
            return False
        self._dialog(&state, call_id, dialog_tag, flow)
        finish_hex(&state, mine)
        return same_hex(mine, <const uint8_t *><const char *>tag)
