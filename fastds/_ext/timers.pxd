# Declarations of the transaction timers (source: ext/timers.pyx), kept beside the compiled
# module so that the transactions (fastds/dispatch/txn.pxd) and the proxy can cimport them.
from cpython.ref cimport PyObject

cdef enum:
    TIMER_SLOTS = 3   # per Timed: a retransmission (A, E, G), the final-response wait (B, F), an end (D, K, H, I, J, L)
    MAX_LANES = 32    # distinct (delay, slot) pairs; a proxy uses about a dozen

cdef struct Link:     # one slot's place in its lane (48 bytes: the two ints last, side by side)
    PyObject *prev    # borrowed: the lane holds one reference per linked subject
    PyObject *next
    double deadline
    long long order   # start order, among equal deadlines
    void *queue       # the TimerQueue whose lane it is in (a Timed belongs to one queue at a time)
    int lane          # -1: no timer runs in this slot
    int kind          # what it does, the owner's number

cdef struct Lane:     # the subjects linked through one slot with one delay, in deadline order
    double delay
    int slot
    PyObject *head
    PyObject *tail

cdef class Timed:
    cdef Link links[TIMER_SLOTS]

cdef class TimerQueue:
    cdef Lane lanes[MAX_LANES]
    cdef int n_lanes
    cdef long long order
    cdef Py_ssize_t live
    cdef readonly int kind  # of the timer pop() returned last

    cdef int _lane(self, double delay, int slot) except -1
    cdef int _mine(self, Timed subject, int slot) except -1
    cpdef start(self, Timed subject, int slot, int kind, double now, double delay, double tick=*)
    cdef void _unlink(self, PyObject *subject, int slot) noexcept
    cpdef stop(self, Timed subject, int slot)
    cpdef stop_all(self, Timed subject)
    cdef Link *_first(self, double limit, PyObject **subject, int *slot) noexcept
    cpdef object next_deadline(self)
    cpdef Timed pop(self, double now)
