# Declarations of the named C counters (source: ext/counters.pyx), for the proxy core to cimport.

cdef enum:
    MAX_COUNTERS = 64

cdef class Counters:
    cdef long long values[MAX_COUNTERS]
    cdef readonly tuple names
    cdef dict index

    cpdef add(self, int which, long long n=*)
