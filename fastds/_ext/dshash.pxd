# Declarations of the selection's set table (source: ext/dshash.pyx), so that the selector
# (fastds/dispatch/selector.pxd) adds to a destination's counters and in-flight load with C calls.
from libc.stdint cimport int64_t, uint64_t


cdef class SetTable:
    cdef readonly int size
    cdef int *weight
    cdef uint64_t *seed
    cdef unsigned char *state
    cdef int64_t *load
    cdef double *rtt_ms
    cdef int64_t *counters  # per destination i: COUNTERS from [COUNTERS * i], as DESTINATION_COUNTERS names them
    cdef int rr_last, rr_count
    cdef double *score  # scratch for rendezvous ordering
    cdef int *order     # scratch for failover lists
    cdef Py_buffer live  # the shared-memory buffer the live arrays point into, if any
    cdef bint has_live

    cdef int _index(self, int i) except -1
    cpdef add_load(self, int i, int64_t delta)
    cpdef add_pick(self, int i)
    cpdef add_failover(self, int i)
    cpdef add_reply(self, int i, int code)
    cpdef add_timeout(self, int i)
    cdef int weighted_pick(self, uint64_t h, int limit, bint active_only) noexcept
    cdef int next_active(self, int start, int limit) noexcept
    cdef bint active_weights_all_zero(self, int limit) noexcept
    cdef int rendezvous_scores(self, uint64_t h, int limit) noexcept
    cdef int round_robin(self, int limit, bint weighted) noexcept
