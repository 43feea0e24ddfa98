# cython: language_level=3, boundscheck=False, wraparound=False
"""The timers of one worker's transactions, without an object per timer.

Owns ordering transaction timers by deadline so the network layer arms a single loop.call_at
for next_deadline() (docs/architecture.md §3, step 7). A Timed (a transaction) carries its
timers itself: TIMER_SLOTS links (a retransmission, a final-response wait, an end), each
linked into the lane of its delay -- one list per (delay, slot), in deadline order, so
starting and expiring one is O(1) and stopping one unlinks it at once. A lane holds a
reference to what is linked in it; nothing else is allocated. A timer that tolerates lateness
(the cleanup timers D, H, I, J, K, L) is started with a `tick`: its deadline is rounded up to
the tick, so those that fall in one tick expire together in one wake-up, as OpenSIPS's tm runs
its timers on ticks. Among equal deadlines the one started first fires first. A clock that
went back only costs a walk back from the lane's tail. Sans-IO: time enters as `now`; what a
timer does is its `kind`, the owner's number (fastds/dispatch/proxy.py dispatches on it).
"""

from cpython.ref cimport Py_DECREF, Py_INCREF, PyObject
from libc.math cimport INFINITY, ceil, round


cdef class Timed:
    """Something with timers (a transaction); its links into the lanes live in it."""

    def __cinit__(self):
        cdef int slot
        for slot in range(TIMER_SLOTS):
            self.links[slot].lane = -1

    def armed(self, int slot) -> bool:
        """A timer runs in `slot`."""
        return 0 <= slot < TIMER_SLOTS and self.links[slot].lane >= 0


cdef inline Link *link_of(PyObject *subject, int slot) noexcept:
    return &(<Timed>subject).links[slot]


cdef class TimerQueue:
    def __dealloc__(self):
        cdef int lane
        while True:  # let go of everything still linked
            for lane in range(self.n_lanes):
                if self.lanes[lane].head is not NULL:
                    self._unlink(self.lanes[lane].head, self.lanes[lane].slot)
                    break
            else:
                return

    def __len__(self) -> int:
        """Live timers."""
        return self.live

    cdef int _lane(self, double delay, int slot) except -1:
        cdef int lane
        for lane in range(self.n_lanes):
            if self.lanes[lane].delay == delay and self.lanes[lane].slot == slot:
                return lane
        if self.n_lanes == MAX_LANES:
            raise ValueError(f"more than {MAX_LANES} timer delays")
        lane = self.n_lanes
        self.lanes[lane].delay, self.lanes[lane].slot = delay, slot
        self.lanes[lane].head = self.lanes[lane].tail = NULL
        self.n_lanes += 1
        return lane

    cpdef start(self, Timed subject, int slot, int kind, double now, double delay, double tick=0.0):
        """Run `kind` for subject at now + delay, or (tick > 0) at the first multiple of `tick`
        from then; what ran in that slot before is stopped."""
        cdef double deadline = now + delay
        cdef Lane *lane
        cdef Link *link
        cdef PyObject *me = <PyObject *>subject
        cdef PyObject *after
        if not 0 <= slot < TIMER_SLOTS:
            raise ValueError(f"slot must be 0 to {TIMER_SLOTS - 1}, not {slot}")
        if tick > 0.0:
            deadline = round(ceil(deadline / tick - 1e-9) * tick * 1e9) / 1e9
        self.stop(subject, slot)
        link = &subject.links[slot]
        link.queue = <void *>self
        link.lane = self._lane(delay, slot)
        link.kind, link.deadline = kind, deadline
        self.order += 1
        link.order = self.order
        lane = &self.lanes[link.lane]
        after = lane.tail  # the last one due no later (a clock that went back: walk back)
        while after is not NULL and link_of(after, slot).deadline > deadline:
            after = link_of(after, slot).prev
        link.prev = after
        link.next = lane.head if after is NULL else link_of(after, slot).next
        if link.prev is NULL:
            lane.head = me
        else:
            link_of(link.prev, slot).next = me
        if link.next is NULL:
            lane.tail = me
        else:
            link_of(link.next, slot).prev = me
        Py_INCREF(subject)  # the lane's reference
        self.live += 1

    cdef void _unlink(self, PyObject *subject, int slot) noexcept:
        cdef Link *link = link_of(subject, slot)
        cdef Lane *lane = &self.lanes[link.lane]
        if link.prev is NULL:
            lane.head = link.next
        else:
            link_of(link.prev, slot).next = link.next
        if link.next is NULL:
            lane.tail = link.prev
        else:
            link_of(link.next, slot).prev = link.prev
        link.prev = link.next = NULL
        link.lane = -1
        self.live -= 1
        Py_DECREF(<object>subject)  # may be the last reference: nothing touches subject after

    cdef int _mine(self, Timed subject, int slot) except -1:
        """1 when a timer of this queue runs in `slot`, 0 when none does; another queue's is
        refused (its lane index means nothing here)."""
        if subject.links[slot].lane < 0:
            return 0
        if subject.links[slot].queue != <void *>self:
            raise ValueError("this timer runs in another TimerQueue")
        return 1

    cpdef stop(self, Timed subject, int slot):
        """Stop the timer in `slot`, if one runs."""
        if 0 <= slot < TIMER_SLOTS and self._mine(subject, slot):
            self._unlink(<PyObject *>subject, slot)

    cpdef stop_all(self, Timed subject):
        cdef int slot
        for slot in range(TIMER_SLOTS):
            if self._mine(subject, slot):
                self._unlink(<PyObject *>subject, slot)

    cdef Link *_first(self, double limit, PyObject **subject, int *slot) noexcept:
        """The link due first (deadline, then start order) among the lanes' heads due by
        `limit`, with its subject and slot; NULL when none is."""
        cdef PyObject *head
        cdef Link *candidate
        cdef Link *chosen = NULL
        cdef int lane
        for lane in range(self.n_lanes):
            head = self.lanes[lane].head
            if head is NULL:
                continue
            candidate = link_of(head, self.lanes[lane].slot)
            if candidate.deadline > limit:
                continue
            if chosen is NULL or candidate.deadline < chosen.deadline or (
                    candidate.deadline == chosen.deadline and candidate.order < chosen.order):
                chosen, subject[0], slot[0] = candidate, head, self.lanes[lane].slot
        return chosen

    cpdef object next_deadline(self):
        cdef PyObject *subject
        cdef int slot
        cdef Link *first = self._first(INFINITY, &subject, &slot)
        return None if first is NULL else first.deadline

    cpdef Timed pop(self, double now):
        """The timer due first at `now`, stopped: its subject (None when nothing is due);
        `kind` says what it was. Run each before popping the next: one it stops does not fire."""
        cdef PyObject *due
        cdef int slot
        cdef Link *first = self._first(now, &due, &slot)
        if first is NULL:
            return None
        cdef Timed subject = <Timed>due  # a reference of our own before the lane lets go of it
        self.kind = first.kind
        self._unlink(due, slot)
        return subject

    def expire(self, double now) -> list:
        """Every timer due at `now` as (kind, subject), earliest first, stopped (for Python
        callers; the proxy pops them one by one)."""
        fired = []
        while True:
            subject = self.pop(now)
            if subject is None:
                return fired
            fired.append((self.kind, subject))
