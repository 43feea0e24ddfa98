# C declarations for fastds/net/handoff.py, which Cython compiles as it is (setup.py): a
# worker's end of the hand-off is an extension type over the C frame buffers
# (fastds/_ext/frames.pxd), so the pump's calls for every message it hands off or receives,
# and theirs into the buffers, are C calls, not method lookups.
cimport cython

from fastds._ext.frames cimport FrameInbox, FrameOutbox
from fastds._ext.sipscan cimport call_id_of


cpdef int owner_of(bytes call_id, int workers)


cdef class Handoff:
    cdef readonly int index, workers
    cdef int _master_pid
    cdef readonly object socket
    cdef readonly dict _senders  # by owner: the sibling's own socket to it (tests look at it)
    cdef list _sender_fds
    cdef set _connected
    cdef FrameInbox _inbox
    cdef list _outboxes
    cdef bint _queued
    cdef list _full
    cdef dict _waiting, _waiting_bytes
    cdef public long long handed_off
    cdef long long _send_dropped

    cpdef int owner(self, bytes data)
    cpdef send(self, int owner, bytes data, tuple source)
    cpdef write(self, int holder, bytes data, tuple peer)
    @cython.locals(outbox=FrameOutbox)
    cdef _pack(self, int owner, int kind, bytes data, tuple address)
    @cython.locals(outbox=FrameOutbox, owner=int)
    cpdef flush(self)
    @cython.locals(frames=int, error=int)
    cdef _send_outbox(self, int owner, FrameOutbox outbox)
    cdef bint _connect(self, int owner)
    cdef _send_batch(self, int owner, bytes batch, int frames)
    cdef _wait(self, int owner, bytes batch, int frames)
    cpdef list waiting(self)
    cpdef bint retry(self, int owner)
    @cython.locals(messages=list, writes=list)
    cpdef tuple receive(self, int datagrams=*)
