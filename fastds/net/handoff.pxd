# C declarations for fastds/net/handoff.py, which Cython compiles as it is (setup.py): a
# worker's end of the hand-off is an extension type, so the pump's calls for every message it
# hands off or receives are C calls, not method lookups.

cdef class Handoff:
    cdef readonly int index, workers
    cdef int _master_pid
    cdef readonly object socket
    cdef readonly dict _senders  # by owner: the sibling's own socket to it (tests look at it)
    cdef set _connected, _siblings
    cdef dict _outbox, _waiting, _waiting_bytes
    cdef bytearray _buffer
    cdef object _view
    cdef public long long handed_off, received, dropped

    cpdef int owner(self, bytes data)
    cpdef send(self, int owner, bytes data, tuple source)
    cpdef write(self, int holder, bytes data, tuple peer)
    cpdef flush(self)
    cdef _send_batch(self, int owner, bytes batch, int frames)
    cdef _wait(self, int owner, bytes batch, int frames)
    cpdef list waiting(self)
    cpdef bint retry(self, int owner)
    cpdef tuple receive(self, int datagrams=*)
    cdef _unpack(self, bytes batch, tuple found)
