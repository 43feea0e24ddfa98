# C declarations for fastds/dispatch/timers.py, which Cython compiles as it is (setup.py): the
# classes become extension types with typed fields, the methods the proxy calls per transaction
# are called in C. The .py stays the source; this file only types it (docs/architecture.md §8).
cimport cython

cdef class TimerQueue

cdef class Timer:
    cdef public double deadline
    cdef public long long order
    cdef public object callback
    cdef public object subject
    cdef public bint cancelled
    cdef TimerQueue _queue
    cpdef cancel(self)


cdef class TimerQueue:
    cdef dict _lanes
    cdef list _heap
    cdef long long _order
    cdef Py_ssize_t _cancelled

    cpdef Timer call_later(self, double now, double delay, object callback, object subject, double tick=*)
    cpdef Timer call_at(self, double deadline, object callback, object subject)
    cdef void _cancelled_one(self) noexcept
    @cython.locals(timer=Timer)
    cpdef object next_deadline(self)
    @cython.locals(timer=Timer, due=list, fired=list)
    cpdef list expire(self, double now)
