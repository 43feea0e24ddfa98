# Declarations of the hand-off's frames (source: ext/frames.pyx): the buffers a worker packs
# one owner's frames into and unpacks a received batch from, so that fastds/net/handoff.py
# calls them in C.
from fastds._ext.udpio cimport socklen_t

cdef enum:
    KIND_MESSAGE = 0  # handle this message
    KIND_WRITE = 1  # write these bytes on your connection
    LENGTH_BYTES = 4  # a frame's length, before it
    HEAD_BYTES = 12  # kind, IP text length, port, connection id
    FRAME_LIMIT = 65535 + HEAD_BYTES + 45  # the largest message and its source (IPv6 text is at most 45)
    BATCH_LIMIT = 64 * 1024  # a batch is sent once it reaches this (so at most this plus one frame)
    BUFFER_BYTES = BATCH_LIMIT + LENGTH_BYTES + FRAME_LIMIT


cdef class FrameOutbox:
    cdef unsigned char *buffer
    cdef readonly Py_ssize_t size
    cdef readonly int frames

    cpdef bint add(self, int kind, bytes data, tuple address) except -1
    cpdef bint full(self)
    cdef int send(self, int fd) noexcept
    cpdef bytes take(self)


cdef class FrameInbox:
    cdef unsigned char *buffer
    cdef int fd
    cdef tuple siblings
    cdef readonly unsigned long long received, dropped
    cdef unsigned char _last_ip[256]
    cdef int _last_ip_length
    cdef unsigned int _last_port
    cdef unsigned long long _last_connection
    cdef object _last_source

    cdef int receive(self, list messages, list writes) except -2
    cdef bint _from_sibling(self, void *sender, socklen_t length) noexcept
    cpdef unpack(self, bytes batch, list messages, list writes)
    cdef _unpack(self, const unsigned char *batch, Py_ssize_t length, list messages, list writes)
    cdef object _frame(self, const unsigned char *p, Py_ssize_t length, list messages, list writes)
    cdef object _source(self, const unsigned char *ip, int ip_length, unsigned int port,
                        unsigned long long connection)
