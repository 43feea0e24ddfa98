# C declarations for fastds/dispatch/histogram.py, which Cython compiles as it is (setup.py): a
# histogram is an extension type, so the proxy core's observe() per answered INVITE is a C call
# and a C search of the bounds, not bisect called through Python.
cimport cython


cdef class Histogram:
    cdef public tuple bounds
    cdef public list counts
    cdef public long long count
    cdef public double sum_s

    @cython.locals(bound=double, bucket=Py_ssize_t)
    cpdef observe(self, double seconds)
