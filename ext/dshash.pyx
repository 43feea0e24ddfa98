# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Destination picking in C: key extraction, xxh3 hashing, weighted pick, failover order.

Owns the per-request arithmetic of the OpenSIPS algorithms (modules/dispatcher/dispatch.c) and of
fastds's flag c (weighted rendezvous hashing): one call per selection, returning the
indexes to try in order. A SetTable is one destination set's weights and rendezvous
seeds plus its live state, in-flight load and probe RTT per destination, and the
round-robin memory of this worker, and the traffic counters per destination (picks as
first choice, failovers away from it). The live arrays are its own, or point into the
shared-memory table (fastds/shm/layout.py) so the prober's state changes are seen by
the next selection without a copy or a lock. Indexes are positions in the set as
ordered by priority. No sockets, no clock; the only Python called per request is
xxhash's xxh3_64_intdigest.
"""

from cpython.buffer cimport PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.math cimport log
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy, memset

from fastds._ext.sipscan cimport SipMessage, URI_SIPS, URI_TEL, UriSpans, parse_uri_spans

import os

import xxhash

cdef object xxh3 = xxhash.xxh3_64_intdigest

cdef extern from *:
    """
    static inline int64_t fds_atomic_add(int64_t *p, int64_t delta) {
        return __atomic_add_fetch(p, delta, __ATOMIC_RELAXED);
    }
    """
    int64_t fds_atomic_add(int64_t *p, int64_t delta) nogil

# algorithm numbers (OpenSIPS)
cdef enum:
    ALG_CALLID = 0
    ALG_FROM = 1
    ALG_TO = 2
    ALG_RURI = 3
    ALG_ROUND_ROBIN = 4
    ALG_AUTH_USER = 5
    ALG_RANDOM = 6
    ALG_KEY_TEMPLATE = 7
    ALG_FIRST = 8
    ALG_LOAD = 9
    ALG_LATENCY = 10

# flag bits, as fastds.dispatch.rules encodes the letters
FLAG_FAILOVER = 1      # f
FLAG_USER_ONLY = 2     # u
FLAG_DEFAULT = 4       # d
FLAG_CONSISTENT = 16   # c
cdef enum:
    F_FAILOVER = 1
    F_USER_ONLY = 2
    F_DEFAULT = 4
    F_CONSISTENT = 16

# key template parts (fastds.dispatch.keys compiles "$fU@$ci" into these)
KEY_LITERAL, KEY_FROM_USER, KEY_FROM_HOST, KEY_TO_USER, KEY_TO_HOST, KEY_RURI_USER, KEY_RURI_HOST, \
    KEY_CALL_ID, KEY_FROM_TAG, KEY_SOURCE_IP, KEY_AUTH_USER = range(11)

STATE_ACTIVE = 0
STATE_INACTIVE = 1
STATE_PROBING = 2

# -- random (algorithm 6): xorshift64*, reseeded in every worker after fork --------

cdef uint64_t rng_state = 0x9E3779B97F4A7C15


def seed_random(seed=None):
    """Reseed algorithm 6's generator (default: from os.urandom). Call after fork."""
    global rng_state
    rng_state = (int.from_bytes(os.urandom(8), "little") if seed is None else seed) & 0xFFFFFFFFFFFFFFFF or 1


seed_random()


cdef inline uint64_t next_random() noexcept:
    global rng_state
    rng_state ^= rng_state >> 12
    rng_state ^= rng_state << 25
    rng_state ^= rng_state >> 27
    return rng_state * <uint64_t>0x2545F4914F6CDD1D


cdef inline uint64_t mix64(uint64_t x) noexcept:
    """Murmur3's 64-bit finaliser: every input bit affects every output bit."""
    x ^= x >> 33
    x *= <uint64_t>0xFF51AFD7ED558CCD
    x ^= x >> 33
    x *= <uint64_t>0xC4CEB9FE1A85EC53
    x ^= x >> 33
    return x

# -- the set table ---------------------------------------------------------------


# a destination's traffic counters, in this order (DESTINATION_COUNTERS int64 each, summed over
# the workers by atomic adds): picks, failovers, final replies it sent by class, FR timeouts
DESTINATION_COUNTERS = ("picks", "failovers", "replies_2xx", "replies_3xx", "replies_4xx", "replies_5xx",
                        "replies_6xx", "timeouts")
cdef enum:  # offsets in a destination's counters
    PICKS = 0
    FAILOVERS = 1
    REPLIES_2XX = 2
    TIMEOUTS = 7
    COUNTERS = 8


cdef class SetTable:
    """One destination set as the picker sees it; see the module docstring."""

    # its fields are declared in fastds/_ext/dshash.pxd (the selector cimports the class)

    def __cinit__(self, weights, ids, live=None):
        """weights: int >= 0 per destination; ids: bytes per destination (its URI), which
        seeds its rendezvous score so a key follows the destination, not its index.
        live: None (own arrays, all active) or (buffer, state_offset, load_offset,
        rtt_offset, counters_offset): the set's states (1 byte each), in-flight loads
        (int64), RTTs (double, ms) and counters (COUNTERS x int64) in a writable buffer,
        e.g. the shared-memory table."""
        cdef int i, n = len(weights)
        cdef char *base
        cdef Py_ssize_t state_offset, load_offset, rtt_offset, counters_offset
        if len(ids) != n:
            raise ValueError("weights and ids differ in length")
        self.size = n
        self.weight = <int *>PyMem_Malloc(max(n, 1) * sizeof(int))
        self.seed = <uint64_t *>PyMem_Malloc(max(n, 1) * sizeof(uint64_t))
        self.score = <double *>PyMem_Malloc(max(n, 1) * sizeof(double))
        self.order = <int *>PyMem_Malloc(max(n, 1) * sizeof(int))
        if live is None:
            self.state = <unsigned char *>PyMem_Malloc(max(n, 1))
            self.load = <int64_t *>PyMem_Malloc(max(n, 1) * sizeof(int64_t))
            self.rtt_ms = <double *>PyMem_Malloc(max(n, 1) * sizeof(double))
            self.counters = <int64_t *>PyMem_Malloc(max(n, 1) * COUNTERS * sizeof(int64_t))
        else:
            buffer, state_offset, load_offset, rtt_offset, counters_offset = live
            PyObject_GetBuffer(buffer, &self.live, PyBUF_WRITABLE)
            self.has_live = True
            if (state_offset < 0 or load_offset < 0 or rtt_offset < 0 or counters_offset < 0 or load_offset % 8
                    or rtt_offset % 8 or counters_offset % 8 or state_offset + n > self.live.len
                    or load_offset + 8 * n > self.live.len or rtt_offset + 8 * n > self.live.len
                    or counters_offset + 8 * COUNTERS * n > self.live.len):
                raise ValueError("live arrays outside the buffer or misaligned")
            base = <char *>self.live.buf
            self.state = <unsigned char *>(base + state_offset)
            self.load = <int64_t *>(base + load_offset)
            self.rtt_ms = <double *>(base + rtt_offset)
            self.counters = <int64_t *>(base + counters_offset)
        if not (self.weight and self.seed and self.state and self.load and self.rtt_ms and self.counters
                and self.score and self.order):
            raise MemoryError()
        for i in range(n):
            if weights[i] < 0:
                raise ValueError(f"weight of destination {i} is negative")
            self.weight[i] = weights[i]
            self.seed[i] = xxh3(ids[i])
            if live is None:
                self.state[i] = STATE_ACTIVE
                self.load[i] = 0
                self.rtt_ms[i] = -1.0
                memset(&self.counters[COUNTERS * i], 0, COUNTERS * sizeof(int64_t))
        self.rr_last = -1
        self.rr_count = 0

    def __dealloc__(self):
        PyMem_Free(self.weight)
        PyMem_Free(self.seed)
        PyMem_Free(self.score)
        PyMem_Free(self.order)
        if self.has_live:
            PyBuffer_Release(&self.live)
        else:
            PyMem_Free(self.state)
            PyMem_Free(self.load)
            PyMem_Free(self.rtt_ms)
            PyMem_Free(self.counters)

    cdef int _index(self, int i) except -1:
        if not 0 <= i < self.size:
            raise IndexError(f"destination index {i} outside a set of {self.size}")
        return i

    def set_state(self, int i, int state):
        """0 active, 1 inactive, 2 probing; only 0 is ever selected."""
        if state not in (STATE_ACTIVE, STATE_INACTIVE, STATE_PROBING):
            raise ValueError(f"state must be 0, 1 or 2, not {state}")
        self.state[self._index(i)] = state

    def get_state(self, int i):
        return self.state[self._index(i)]

    def set_load(self, int i, int64_t in_flight):
        """In-flight transactions of destination i (algorithm 9)."""
        self.load[self._index(i)] = in_flight

    cpdef add_load(self, int i, int64_t delta):
        """Atomically add to destination i's in-flight count (workers share it)."""
        return fds_atomic_add(&self.load[self._index(i)], delta)

    cpdef add_pick(self, int i):
        """Destination i was chosen first for a request (OpenSIPS first_hit_counter)."""
        return fds_atomic_add(&self.counters[COUNTERS * self._index(i) + PICKS], 1)

    cpdef add_failover(self, int i):
        """A request failed over away from destination i."""
        return fds_atomic_add(&self.counters[COUNTERS * self._index(i) + FAILOVERS], 1)

    cpdef add_reply(self, int i, int code):
        """Destination i sent a final response (200..699) to a request fastds forwarded."""
        if not 200 <= code <= 699:
            raise ValueError(f"a final status code is 200..699, not {code}")
        return fds_atomic_add(&self.counters[COUNTERS * self._index(i) + REPLIES_2XX + code // 100 - 2], 1)

    cpdef add_timeout(self, int i):
        """A request forwarded to destination i got no final response in time (timer B/F)."""
        return fds_atomic_add(&self.counters[COUNTERS * self._index(i) + TIMEOUTS], 1)

    def counts(self, int i):
        """Destination i's counters, as DESTINATION_COUNTERS names them."""
        i = self._index(i)
        return tuple(self.counters[COUNTERS * i + k] for k in range(COUNTERS))

    def set_rtt(self, int i, double rtt_ms):
        """Last probe round trip of destination i in ms, < 0 unknown (algorithm 10)."""
        self.rtt_ms[self._index(i)] = rtt_ms

    # -- picking over the eligible destinations: [0, limit) minus inactive ones -----

    cdef int weighted_pick(self, uint64_t h, int limit, bint active_only) noexcept:
        """OpenSIPS: h % total weight over cumulative weights; all weights 0: h % count."""
        cdef uint64_t total = 0, running = 0, r
        cdef int i, count = 0
        for i in range(limit):
            if not active_only or self.state[i] == STATE_ACTIVE:
                total += self.weight[i]
                count += 1
        if count == 0:
            return -1
        if total == 0:
            r = h % <uint64_t>count
            for i in range(limit):
                if not active_only or self.state[i] == STATE_ACTIVE:
                    if r == 0:
                        return i
                    r -= 1
        r = h % total
        for i in range(limit):
            if not active_only or self.state[i] == STATE_ACTIVE:
                running += self.weight[i]
                if r < running:
                    return i
        return -1

    cdef int next_active(self, int start, int limit) noexcept:
        """Linear scan from start, wrapping, to the first active index below limit."""
        cdef int k, i
        for k in range(limit):
            i = (start + k) % limit
            if self.state[i] == STATE_ACTIVE:
                return i
        return -1

    cdef bint active_weights_all_zero(self, int limit) noexcept:
        cdef int i
        for i in range(limit):
            if self.state[i] == STATE_ACTIVE and self.weight[i] > 0:
                return False
        return True

    cdef int rendezvous_scores(self, uint64_t h, int limit) noexcept:
        """Weighted rendezvous (HRW) score of every active destination; returns the best.
        score = w / -ln(u), u uniform in (0, 1) from (key hash, destination seed); when
        every active weight is 0 they all count as 1, as in weighted_pick."""
        cdef int i, best = -1
        cdef double u, w
        cdef bint unweighted = self.active_weights_all_zero(limit)
        for i in range(limit):
            self.score[i] = -1.0
            if self.state[i] != STATE_ACTIVE:
                continue
            w = 1.0 if unweighted else <double>self.weight[i]
            if w <= 0:
                continue
            u = (<double>(mix64(h ^ self.seed[i]) >> 11) + 0.5) * (1.0 / 9007199254740992.0)
            self.score[i] = w / -log(u)
            if best < 0 or self.score[i] > self.score[best]:
                best = i
        return best

    cdef int round_robin(self, int limit, bint weighted) noexcept:
        """Algorithm 4: a destination is chosen `weight` times in a row (at least once)."""
        cdef int candidate, chosen, repeats
        if self.rr_last < 0 or self.rr_last >= limit:
            candidate = 0
            self.rr_count = 0
        else:
            repeats = max(self.weight[self.rr_last], 1) if weighted else 1
            if self.rr_count < repeats:
                candidate = self.rr_last
            else:
                candidate = (self.rr_last + 1) % limit
        chosen = self.next_active(candidate, limit)
        if chosen < 0:
            return -1
        if chosen != self.rr_last:
            self.rr_count = 0
        self.rr_last = chosen
        self.rr_count += 1
        return chosen


cdef int sort_by_key(int *idx, double *key, int n, bint descending) noexcept:
    """Stable insertion sort of idx by key[idx] (sets are small)."""
    cdef int i, j, v
    for i in range(1, n):
        v = idx[i]
        j = i - 1
        while j >= 0 and (key[idx[j]] < key[v] if descending else key[idx[j]] > key[v]):
            idx[j + 1] = idx[j]
            j -= 1
        idx[j + 1] = v
    return 0


cdef list failover_order(SetTable t, int selected, int limit, int alg, int flags, int max_results):
    """[selected, then the others in the algorithm's order, active only], cut at max_results."""
    cdef list result = [selected]
    cdef int i, k, n = 0
    cdef double *key
    if flags & F_CONSISTENT and alg in (ALG_CALLID, ALG_FROM, ALG_TO, ALG_RURI, ALG_AUTH_USER, ALG_KEY_TEMPLATE):
        # the rendezvous runner-up order: a call failing over lands where the key would
        # go if the selected destination were down
        for i in range(limit):
            if i != selected and t.score[i] > 0:
                t.order[n] = i
                n += 1
        sort_by_key(t.order, t.score, n, True)
    elif alg == ALG_LOAD or alg == ALG_LATENCY:
        key = t.score
        for i in range(limit):
            key[i] = sort_key(t, i, alg)
            if i != selected and t.state[i] == STATE_ACTIVE:
                t.order[n] = i
                n += 1
        sort_by_key(t.order, key, n, False)
    else:
        for k in range(1, limit):
            i = (selected + k) % limit
            if t.state[i] == STATE_ACTIVE:
                t.order[n] = i
                n += 1
    for i in range(min(n, max_results - 1)):
        result.append(t.order[i])
    return result


cdef inline double sort_key(SetTable t, int i, int alg) noexcept:
    if alg == ALG_LOAD:  # stale decrements across a reload may leave a count below 0
        return <double>max(t.load[i], 0)
    return t.rtt_ms[i] if t.rtt_ms[i] >= 0 else 1e300  # unknown RTT sorts last


cdef int lowest(SetTable t, int limit, int alg) noexcept:
    cdef int i, best = -1
    for i in range(limit):
        if t.state[i] == STATE_ACTIVE and (best < 0 or sort_key(t, i, alg) < sort_key(t, best, alg)):
            best = i
    return best

# -- keys --------------------------------------------------------------------------


cdef class KeyBuffer:
    """A growable byte buffer for building a hash key without Python objects."""
    cdef char inline_buf[256]
    cdef char *buf
    cdef Py_ssize_t length, capacity

    def __cinit__(self):
        self.buf = self.inline_buf
        self.capacity = 256

    def __dealloc__(self):
        if self.buf != &self.inline_buf[0]:
            PyMem_Free(self.buf)

    cdef int append(self, const char *data, Py_ssize_t n) except -1:
        cdef char *grown
        if self.length + n > self.capacity:
            grown = <char *>PyMem_Malloc(2 * (self.length + n))
            if grown == NULL:
                raise MemoryError()
            memcpy(grown, self.buf, self.length)
            if self.buf != &self.inline_buf[0]:
                PyMem_Free(self.buf)
            self.buf = grown
            self.capacity = 2 * (self.length + n)
        memcpy(self.buf + self.length, data, n)
        self.length += n
        return 0

    cdef int append_lower(self, const char *data, Py_ssize_t n) except -1:
        cdef Py_ssize_t i
        self.append(data, n)
        for i in range(self.length - n, self.length):
            if 65 <= self.buf[i] <= 90:
                self.buf[i] += 32
        return 0

    cdef bytes value(self):
        return PyBytes_FromStringAndSize(self.buf, self.length)


cdef int uri_spans(SipMessage m, int which, UriSpans *u) noexcept:
    """which: ALG_FROM, ALG_TO or ALG_RURI; -1 when that URI is absent."""
    cdef const unsigned char *p = <const unsigned char *>m.data
    if which == ALG_RURI:
        if not m.is_request or m.ruri_start < 0:
            return -1
        u[0] = m.ruri_spans
        return 0
    if which == ALG_FROM:
        return -1 if m.from_uri_start < 0 else parse_uri_spans(p, m.from_uri_start, m.from_uri_end, u)
    return -1 if m.to_uri_start < 0 else parse_uri_spans(p, m.to_uri_start, m.to_uri_end, u)


cdef int append_uri_part(KeyBuffer key, SipMessage m, int which, bint host) except -1:
    cdef UriSpans u
    cdef const char *p = m.data
    if uri_spans(m, which, &u) < 0:
        return 0
    if host:
        if u.host_start >= 0:
            key.append_lower(p + u.host_start, u.host_end - u.host_start)
    elif u.user_start >= 0:
        key.append(p + u.user_start, u.user_end - u.user_start)
    return 0


cdef int append_uri_key(KeyBuffer key, SipMessage m, int which, bint user_only) except -1:
    """OpenSIPS ds_hash_*uri: user@host[:port], default port dropped (host lower-cased,
    RFC 3261 §19.1.4); flag u: the user alone (the whole key when there is no user)."""
    cdef UriSpans u
    cdef const char *p = m.data
    cdef int default_port
    cdef bytes port
    if uri_spans(m, which, &u) < 0:
        return 0
    if u.user_start >= 0:
        key.append(p + u.user_start, u.user_end - u.user_start)
        if user_only:
            return 0
    if u.kind == URI_TEL or u.host_start < 0:
        if u.user_start < 0:
            key.append(p + u.start, u.end - u.start)
        return 0
    key.append(b"@", 1)
    key.append_lower(p + u.host_start, u.host_end - u.host_start)
    default_port = 5061 if u.kind == URI_SIPS else 5060
    if u.port and u.port != default_port:
        port = b":%d" % u.port
        key.append(port, len(port))
    return 0


cdef class KeyTemplate:
    """A compiled FASTDS_HASH_KEY template: ((part, literal bytes), ...), see keys.py."""
    cdef readonly tuple parts

    def __init__(self, parts):
        self.parts = tuple((int(kind), bytes(literal)) for kind, literal in parts)


cdef bytes template_key(KeyTemplate template, SipMessage m, bytes source_ip):
    cdef KeyBuffer key = KeyBuffer()
    cdef const char *p = m.data
    cdef int kind
    cdef bytes literal
    for kind, literal in template.parts:
        if kind == KEY_LITERAL:
            key.append(literal, len(literal))
        elif KEY_FROM_USER <= kind <= KEY_RURI_HOST:
            # parts 1-6 are (From, To, Request-URI) x (user, host)
            append_uri_part(key, m, (ALG_FROM, ALG_TO, ALG_RURI)[(kind - 1) // 2], (kind - 1) % 2 == 1)
        elif kind == KEY_CALL_ID and m.call_id_start >= 0:
            key.append(p + m.call_id_start, m.call_id_end - m.call_id_start)
        elif kind == KEY_FROM_TAG and m.from_tag_start >= 0:
            key.append(p + m.from_tag_start, m.from_tag_end - m.from_tag_start)
        elif kind == KEY_SOURCE_IP:
            key.append(source_ip, len(source_ip))
        elif kind == KEY_AUTH_USER:
            if m.proxy_auth_user_start >= 0:
                key.append(p + m.proxy_auth_user_start, m.proxy_auth_user_end - m.proxy_auth_user_start)
            elif m.auth_user_start >= 0:
                key.append(p + m.auth_user_start, m.auth_user_end - m.auth_user_start)
    return key.value()


cpdef key_of(SipMessage m, int alg, int flags=0, KeyTemplate template=None, bytes source_ip=b""):
    """The bytes a hashing algorithm hashes for message m; None when the algorithm does
    not hash or (algorithm 5) the request carries no credentials."""
    cdef KeyBuffer key
    cdef const char *p = m.data
    if alg == ALG_CALLID:
        return None if m.call_id_start < 0 else m.data[m.call_id_start:m.call_id_end]
    if alg == ALG_FROM or alg == ALG_TO or alg == ALG_RURI:
        key = KeyBuffer()
        append_uri_key(key, m, alg, flags & F_USER_ONLY)
        return key.value()
    if alg == ALG_AUTH_USER:
        if m.proxy_auth_user_start >= 0:
            return m.data[m.proxy_auth_user_start:m.proxy_auth_user_end]
        if m.auth_user_start >= 0:
            return m.data[m.auth_user_start:m.auth_user_end]
        return None
    if alg == ALG_KEY_TEMPLATE:
        if template is None:
            raise ValueError("algorithm 7 needs a key template (FASTDS_HASH_KEY)")
        return template_key(template, m, source_ip)
    return None

# -- selection ---------------------------------------------------------------------


cpdef select_key(SetTable t, key, int alg, int flags=0, int max_results=1000):
    """Indexes to try, in order, for a request whose algorithm key is `key` (bytes, or
    None for the algorithms that do not hash and for algorithm 5 without credentials).
    Empty when no destination is active. Without flag f only the selected one."""
    cdef int limit = t.size, selected = -1, default = -1
    cdef uint64_t h = 0
    cdef bint hashing = False
    cdef list result
    if alg < 0 or alg > 10:
        raise ValueError(f"unknown algorithm {alg}: expected 0 to 10")
    if max_results < 1:
        raise ValueError("max_results must be at least 1")
    if flags & F_DEFAULT and limit > 0:
        limit -= 1
        default = limit  # the last destination: only when nothing else is active
    if alg == ALG_RANDOM:
        h = next_random()
        hashing = True
    elif key is not None and alg in (ALG_CALLID, ALG_FROM, ALG_TO, ALG_RURI, ALG_AUTH_USER, ALG_KEY_TEMPLATE):
        h = xxh3(key)
        hashing = True
    if limit > 0:
        if hashing and flags & F_CONSISTENT and alg != ALG_RANDOM:
            selected = t.rendezvous_scores(h, limit)
        elif hashing:
            selected = t.weighted_pick(h, limit, False)
            if selected >= 0 and t.state[selected] != STATE_ACTIVE:
                # re-hash over the survivors: a key keeps mapping to the same one (§1.6)
                selected = t.weighted_pick(h, limit, True)
        elif alg == ALG_ROUND_ROBIN or alg == ALG_AUTH_USER:
            selected = t.round_robin(limit, alg == ALG_ROUND_ROBIN)
        elif alg == ALG_LOAD or alg == ALG_LATENCY:
            selected = lowest(t, limit, alg)
        else:  # ALG_FIRST, or a hashing algorithm with nothing to hash: first active
            selected = t.next_active(0, limit)
    if selected < 0:
        return [default] if default >= 0 and t.state[default] == STATE_ACTIVE else []
    if not flags & F_FAILOVER:
        return [selected]
    result = failover_order(t, selected, limit, alg, flags, max_results)
    if default >= 0 and t.state[default] == STATE_ACTIVE:
        result.append(default)
    return result


cpdef select(SetTable t, SipMessage m, int alg, int flags=0, int max_results=1000,
           KeyTemplate template=None, bytes source_ip=b""):
    """select_key() with the key taken from the scanned request m."""
    return select_key(t, key_of(m, alg, flags, template, source_ip), alg, flags, max_results)
