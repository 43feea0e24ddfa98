# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The Call-ID hand-off's frames, packed and unpacked in C buffers (the policy -- who owns a
message, which socket, what waits -- is fastds/net/handoff.py's).

Owns the wire format between sibling workers and the two buffers it lives in:
- a frame is u32 length, then kind (u8: MESSAGE, handle this message; WRITE, write these
  bytes on your connection), length of the source IP text (u8), port (u16) and connection id
  (u64, 0 for a datagram), all in network order, then the IP text and the bytes;
- FrameOutbox packs one owner's frames of a loop turn straight into one buffer and sends them
  as one unix datagram with send(2) -- no bytes object per frame or per batch;
- FrameInbox reads a batch into the one buffer it keeps, with recvfrom(2), refuses it unless
  it came from a sibling worker's socket (another local process could forge the source of
  what the owner handles), and unpacks it: each message costs its bytes and one (data,
  source) tuple, the source tuple being reused while it repeats (one upstream peer sends most
  of a worker's traffic). A batch cut short keeps what can be read and is counted once.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.errno cimport EINTR, errno
from libc.string cimport memcmp, memcpy

from fastds._ext.udpio cimport MSG_DONTWAIT, socklen_t


cdef extern from "<sys/socket.h>" nogil:
    ssize_t send(int fd, const void *buf, size_t n, int flags)
    ssize_t recvfrom(int fd, void *buf, size_t n, int flags, void *address, socklen_t *address_length)

cdef extern from "<sys/un.h>" nogil:
    struct sockaddr_un:
        unsigned short sun_family
        char sun_path[108]

MESSAGE, WRITE = KIND_MESSAGE, KIND_WRITE
MAX_FRAME = FRAME_LIMIT


cdef inline void put16(unsigned char *p, unsigned int value) noexcept:
    p[0] = (value >> 8) & 0xFF
    p[1] = value & 0xFF


cdef inline void put32(unsigned char *p, unsigned long value) noexcept:
    p[0] = (value >> 24) & 0xFF
    p[1] = (value >> 16) & 0xFF
    p[2] = (value >> 8) & 0xFF
    p[3] = value & 0xFF


cdef inline unsigned long get32(const unsigned char *p) noexcept:
    return (<unsigned long>p[0] << 24) | (<unsigned long>p[1] << 16) | (<unsigned long>p[2] << 8) | p[3]


cdef class FrameOutbox:
    """One owner's frames of a loop turn, in one buffer (a batch: at most BATCH_LIMIT plus one frame)."""

    def __cinit__(self):
        self.buffer = <unsigned char *> PyMem_Malloc(BUFFER_BYTES)
        if self.buffer == NULL:
            raise MemoryError()

    def __dealloc__(self):
        PyMem_Free(self.buffer)

    cpdef bint add(self, int kind, bytes data, tuple address) except -1:
        """Pack a frame: `data` from `address` (IP, port) or (IP, port, connection id), or to
        write on the connection of `address` (kind WRITE). False when it cannot be a frame (a
        message longer than MAX_FRAME allows, an IP text over 255 bytes) or the caller let the
        batch grow past full(): the caller counts it."""
        cdef Py_ssize_t ip_length, length = PyBytes_GET_SIZE(data)
        cdef const char *ip = PyUnicode_AsUTF8AndSize(address[0], &ip_length)
        cdef unsigned long long connection = address[2] if len(address) == 3 else 0
        cdef unsigned int port = address[1]
        cdef unsigned char *p
        cdef int shift
        if (ip_length < 1 or ip_length > 255 or HEAD_BYTES + ip_length + length > FRAME_LIMIT
                or self.size + LENGTH_BYTES + HEAD_BYTES + ip_length + length > BUFFER_BYTES):
            return False
        p = self.buffer + self.size  # the length, then the head at 4: kind, IP length, port at 6, connection at 8
        put32(p, HEAD_BYTES + ip_length + length)
        p[4] = kind
        p[5] = <unsigned char> ip_length
        put16(p + 6, port)
        for shift in range(8):
            p[8 + shift] = (connection >> (56 - 8 * shift)) & 0xFF
        memcpy(p + LENGTH_BYTES + HEAD_BYTES, ip, ip_length)
        memcpy(p + LENGTH_BYTES + HEAD_BYTES + ip_length, PyBytes_AS_STRING(data), length)
        self.size += LENGTH_BYTES + HEAD_BYTES + ip_length + length
        self.frames += 1
        return True

    cpdef bint full(self):
        """The batch reached BATCH_LIMIT: the next frame must start another."""
        return self.size >= BATCH_LIMIT

    cdef int send(self, int fd) noexcept:
        """Send the batch as one datagram on `fd` (connected to the owner) and empty the
        outbox; 0, or the errno that kept it (EAGAIN: the owner's queue is full, the batch is
        still here)."""
        cdef ssize_t sent
        while True:
            sent = send(fd, self.buffer, self.size, MSG_DONTWAIT)
            if sent >= 0:
                self.size = self.frames = 0
                return 0
            if errno != EINTR:
                return errno

    cpdef bytes take(self):
        """The batch as bytes, the outbox emptied (for a batch that must wait its turn)."""
        cdef bytes batch = PyBytes_FromStringAndSize(<char *> self.buffer, self.size)
        self.size = self.frames = 0
        return batch


cdef class FrameInbox:
    """Receives batches on one unix datagram socket from the named sibling sockets."""

    def __cinit__(self, int fd, siblings):
        """fd stays owned by the caller (its socket object); siblings: the abstract names
        (bytes, with their leading NUL) of the sockets frames may come from."""
        self.buffer = <unsigned char *> PyMem_Malloc(BUFFER_BYTES)
        if self.buffer == NULL:
            raise MemoryError()
        self.fd = fd
        self.siblings = tuple(bytes(name) for name in siblings)

    def __dealloc__(self):
        PyMem_Free(self.buffer)

    cdef int receive(self, list messages, list writes) except -2:
        """Read one batch into `messages` and `writes` ((bytes, source) each): 1, or 0 once
        the socket is drained (or fails: the loop then waits for the next readable event)."""
        cdef sockaddr_un sender
        cdef socklen_t sender_length = sizeof(sender)
        cdef ssize_t length
        while True:
            length = recvfrom(self.fd, self.buffer, BUFFER_BYTES, MSG_DONTWAIT, &sender, &sender_length)
            if length >= 0:
                break
            if errno != EINTR:
                return 0
        if not self._from_sibling(&sender, sender_length):
            self.dropped += 1
            return 1
        self._unpack(self.buffer, length, messages, writes)
        return 1

    cdef bint _from_sibling(self, void *address, socklen_t length) noexcept:
        cdef sockaddr_un *sender = <sockaddr_un *> address
        cdef Py_ssize_t name_length = <Py_ssize_t> length - (<char *> sender.sun_path - <char *> sender)
        cdef bytes name
        if name_length <= 0:  # an unbound sender
            return False
        for name in self.siblings:
            if PyBytes_GET_SIZE(name) == name_length and memcmp(PyBytes_AS_STRING(name), sender.sun_path,
                                                                name_length) == 0:
                return True
        return False

    cpdef unpack(self, bytes batch, list messages, list writes):
        """Unpack a batch that came another way (bytes), as receive() does."""
        self._unpack(<const unsigned char *> PyBytes_AS_STRING(batch), PyBytes_GET_SIZE(batch), messages, writes)

    cdef _unpack(self, const unsigned char *batch, Py_ssize_t length, list messages, list writes):
        cdef Py_ssize_t at = 0, frame
        cdef object source
        while at < length:
            if at + LENGTH_BYTES > length:
                self.dropped += 1  # the rest of the batch cannot be trusted
                return
            frame = get32(batch + at)
            at += LENGTH_BYTES
            if at + frame > length:
                self.dropped += 1
                return
            source = self._frame(batch + at, frame, messages, writes)
            at += frame
            if source is None:
                self.dropped += 1
                return
            self.received += 1

    cdef object _frame(self, const unsigned char *p, Py_ssize_t length, list messages, list writes):
        """One frame into its list; its source, or None for one that is not a frame."""
        cdef int kind, ip_length, shift
        cdef unsigned int port
        cdef unsigned long long connection = 0
        cdef object source
        if length < HEAD_BYTES:
            return None
        kind, ip_length, port = p[0], p[1], (<unsigned int> p[2] << 8) | p[3]
        for shift in range(8):
            connection = (connection << 8) | p[4 + shift]
        if ((kind != KIND_MESSAGE and kind != KIND_WRITE) or ip_length == 0 or length <= HEAD_BYTES + ip_length
                or (kind == KIND_WRITE and connection == 0)):
            return None
        source = self._source(p + HEAD_BYTES, ip_length, port, connection)
        if source is None:
            return None
        (messages if kind == KIND_MESSAGE else writes).append(
            (PyBytes_FromStringAndSize(<const char *> p + HEAD_BYTES + ip_length, length - HEAD_BYTES - ip_length),
             source))
        return source

    cdef object _source(self, const unsigned char *ip, int ip_length, unsigned int port,
                        unsigned long long connection):
        """(IP, port) or (IP, port, connection id): the last one again while it repeats; None
        for an IP text that is not ASCII."""
        cdef int i
        if (self._last_source is not None and ip_length == self._last_ip_length and port == self._last_port
                and connection == self._last_connection and memcmp(ip, self._last_ip, ip_length) == 0):
            return self._last_source
        for i in range(ip_length):
            if ip[i] > 127:
                return None
        text = (<const char *> ip)[:ip_length].decode("ascii")
        self._last_source = (text, port, connection) if connection else (text, port)
        memcpy(self._last_ip, ip, ip_length)
        self._last_ip_length, self._last_port, self._last_connection = ip_length, port, connection
        return self._last_source
