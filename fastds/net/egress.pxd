# C declarations for fastds/net/egress.py, which Cython compiles as it is (setup.py): the
# policy is an extension type, so the pump's check of every send is a C call.

cdef class EgressPolicy:
    cdef tuple _networks
    cdef bint _allows_all
    cdef dict _cache
    cdef public long long blocked
    cdef double _last_log

    cdef bint _decide(self, str ip)
    cpdef bint allows(self, str ip, double now)
