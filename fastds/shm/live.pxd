# C declarations for fastds/shm/live.py, which Cython compiles as it is (setup.py): the live
# views are extension types reading the shared generation word through a C view of the mapping,
# so the check before every selection, route and trust decision is one C load, not a Python
# property and a memoryview index.
cimport cython

from fastds.dispatch.selector cimport Selector


cdef class _Live:
    cdef object _view
    cdef unsigned long long[::1] _generation_word
    cdef readonly long long generation
    cdef object _built

    @cython.locals(generation="long long")
    cpdef object current(self)


cdef class LiveSelector(_Live):
    cdef object _key_template

    cdef Selector _selector(self)


cdef class LiveRouter(_Live):
    cdef object _default
    cdef public list problems


cdef class LiveTrust(_Live):
    cdef int _group
    cdef tuple _networks
