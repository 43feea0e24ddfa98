# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Batched datagram IO on one non-blocking UDP socket: recvmmsg and sendmmsg (Linux).

Owns reading up to `batch` datagrams per system call into buffers allocated once, sending
a list of datagrams in as few system calls as the kernel takes, and the addresses as
Python tuples (IP text, port) -- cached per address, so a busy peer costs no new objects.
IPv4 and IPv6 (an IPv4 destination on an IPv6 socket goes as ::ffff:a.b.c.d). Never raises
for what the network does: a datagram longer than the buffer is dropped and counted
(`truncated`), never handed on cut short; a datagram the kernel refuses to send (buffer
full, unreachable, a bad address) is counted with its errno and the rest are still sent.
The adapter that runs it on the event loop is fastds/net/pump.py.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.errno cimport errno, EINTR, EAGAIN
from libc.string cimport memcmp, memcpy, memset


cdef extern from "<arpa/inet.h>" nogil:
    const char *inet_ntop(int af, const void *src, char *dst, socklen_t size)
    int inet_pton(int af, const char *src, void *dst)

cdef enum:
    ADDRESS_TEXT = 64
    ADDRESS_CACHE = 4096  # addresses remembered per socket and direction; forgotten all at once when full
    EINVAL = 22


cdef class DatagramIO:
    """One socket's batched IO. fd stays owned by the caller (its socket object)."""

    def __cinit__(self, int fd, int family, unsigned int batch=64, size_t max_datagram=65535):
        """family: socket.AF_INET or AF_INET6 (the socket's); batch: datagrams per system
        call; max_datagram: the longest datagram handed on (longer ones are counted in
        `truncated` and dropped)."""
        if family != AF_INET and family != AF_INET6:
            raise ValueError(f"family must be AF_INET or AF_INET6, not {family}")
        if batch < 1 or batch > 1024:
            raise ValueError(f"batch must be 1..1024, not {batch}")
        self.fd, self.family, self.batch = fd, family, batch
        self.buffer_bytes = max_datagram + 1  # one byte more: a datagram that fills it was longer
        self.buffers = <char *> PyMem_Malloc(batch * self.buffer_bytes)
        self.messages = <mmsghdr *> PyMem_Malloc(batch * sizeof(mmsghdr))
        self.vectors = <iovec *> PyMem_Malloc(batch * sizeof(iovec))
        self.names = <sockaddr_storage *> PyMem_Malloc(batch * sizeof(sockaddr_storage))
        self.send_messages = <mmsghdr *> PyMem_Malloc(batch * sizeof(mmsghdr))
        self.send_vectors = <iovec *> PyMem_Malloc(batch * sizeof(iovec))
        if not (self.buffers and self.messages and self.vectors and self.names and self.send_messages
                and self.send_vectors):
            raise MemoryError()
        self._sources = {}
        self._destinations = {}
        self._prepare()

    def __dealloc__(self):
        PyMem_Free(self.buffers)
        PyMem_Free(self.messages)
        PyMem_Free(self.vectors)
        PyMem_Free(self.names)
        PyMem_Free(self.send_messages)
        PyMem_Free(self.send_vectors)

    cdef void _prepare(self) noexcept:
        """The headers, set once: receiving into the buffers (of what recvmmsg changes, only
        the address length is read back, and receive() resets it), sending from one vector
        each (send() points them at the data and the address). Setting all `batch` of them before every call was a 4 KiB
        memset and a loop per wake-up, for the one datagram a wake-up usually brings."""
        cdef unsigned int i
        memset(self.messages, 0, self.batch * sizeof(mmsghdr))
        memset(self.send_messages, 0, self.batch * sizeof(mmsghdr))
        for i in range(self.batch):
            self.vectors[i].iov_base = self.buffers + i * self.buffer_bytes
            self.vectors[i].iov_len = self.buffer_bytes
            self.messages[i].msg_hdr.msg_iov = &self.vectors[i]
            self.messages[i].msg_hdr.msg_iovlen = 1
            self.messages[i].msg_hdr.msg_name = &self.names[i]
            self.messages[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
            self.send_messages[i].msg_hdr.msg_iov = &self.send_vectors[i]
            self.send_messages[i].msg_hdr.msg_iovlen = 1

    cdef object _source(self, sockaddr_storage *name, socklen_t length):
        if length == self._last_length and memcmp(name, &self._last_name, length) == 0:
            return self._last_source
        cdef bytes raw = PyBytes_FromStringAndSize(<char *> name, length)
        found = self._sources.get(raw)
        if found is None:
            found = self._new_source(name)
            if found is None:
                return None
            if len(self._sources) >= ADDRESS_CACHE:
                self._sources.clear()
            self._sources[raw] = found
        memcpy(&self._last_name, name, length)  # length is at most the sockaddr_storage recvmmsg filled
        self._last_length = length
        self._last_source = found
        return found

    cdef object _new_source(self, sockaddr_storage *name):
        cdef char text[ADDRESS_TEXT]
        cdef sockaddr_in *v4
        cdef sockaddr_in6 *v6
        if name.ss_family == AF_INET:
            v4 = <sockaddr_in *> name
            inet_ntop(AF_INET, &v4.sin_addr, text, ADDRESS_TEXT)
            return (text.decode("ascii"), ntohs(v4.sin_port))
        elif name.ss_family == AF_INET6:
            v6 = <sockaddr_in6 *> name
            inet_ntop(AF_INET6, &v6.sin6_addr, text, ADDRESS_TEXT)
            return (text.decode("ascii"), ntohs(v6.sin6_port))
        return None

    cpdef list receive(self):
        """Every datagram waiting, up to `batch`: [(bytes, (ip, port))]; [] when none is."""
        cdef int count, i
        cdef socklen_t length
        cdef list found = []
        while True:
            count = recvmmsg(self.fd, self.messages, self.batch, MSG_DONTWAIT, NULL)
            if count >= 0:
                break
            if errno == EINTR:
                continue
            if errno != EAGAIN:  # (EWOULDBLOCK is EAGAIN on Linux)
                self.receive_errors += 1
            return found
        for i in range(count):
            length = self.messages[i].msg_hdr.msg_namelen
            self.messages[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)  # what the next recvmmsg may fill
            if self.messages[i].msg_hdr.msg_flags & MSG_TRUNC or self.messages[i].msg_len >= self.buffer_bytes:
                self.truncated += 1
                continue
            source = self._source(&self.names[i], length)
            if source is None:
                self.receive_errors += 1
                continue
            found.append((PyBytes_FromStringAndSize(self.buffers + i * self.buffer_bytes, self.messages[i].msg_len),
                          source))
        return found

    cdef bytes _destination(self, tuple address):
        """The sockaddr for (ip, port), or None when it is not an address of this family."""
        found = self._destinations.get(address)
        if found is not None:
            return found
        cdef sockaddr_in v4
        cdef sockaddr_in6 v6
        cdef in_addr mapped
        cdef bytes ip = address[0].encode("ascii")
        port = address[1]
        if not 0 <= port <= 65535:
            return None
        if self.family == AF_INET:
            memset(&v4, 0, sizeof(v4))
            v4.sin_family = AF_INET
            v4.sin_port = htons(port)
            if inet_pton(AF_INET, ip, &v4.sin_addr) != 1:
                return None
            found = PyBytes_FromStringAndSize(<char *> &v4, sizeof(v4))
        else:
            memset(&v6, 0, sizeof(v6))
            v6.sin6_family = AF_INET6
            v6.sin6_port = htons(port)
            if inet_pton(AF_INET6, ip, &v6.sin6_addr) != 1:
                if inet_pton(AF_INET, ip, &mapped) != 1:
                    return None
                v6.sin6_addr.s6_addr[10] = 0xff
                v6.sin6_addr.s6_addr[11] = 0xff
                memcpy(&v6.sin6_addr.s6_addr[12], &mapped, 4)
            found = PyBytes_FromStringAndSize(<char *> &v6, sizeof(v6))
        if len(self._destinations) >= ADDRESS_CACHE:
            self._destinations.clear()
        self._destinations[address] = found
        return found

    cpdef unsigned int send(self, list datagrams):
        """Send [(bytes, (ip, port))] in order; returns how many the kernel took. One that
        it refuses, or whose address is not one, is counted (send_errors, last_send_errno)
        and skipped; the rest still go."""
        cdef Py_ssize_t next_index = 0, total = len(datagrams)
        cdef unsigned int filled, at, sent_total = 0
        cdef int sent
        cdef bytes name, data
        cdef list names = []  # the sockaddrs the headers point into, alive until sent
        while next_index < total:
            filled = 0
            while filled < self.batch and next_index < total:
                data, address = datagrams[next_index]
                next_index += 1
                name = self._destination(address)
                if name is None:
                    self.send_errors += 1
                    self.last_send_errno = EINVAL
                    continue
                names.append(name)
                self.send_vectors[filled].iov_base = <char *> data
                self.send_vectors[filled].iov_len = len(data)
                self.send_messages[filled].msg_hdr.msg_name = <char *> name
                self.send_messages[filled].msg_hdr.msg_namelen = len(name)
                filled += 1
            at = 0
            while at < filled:
                sent = sendmmsg(self.fd, self.send_messages + at, filled - at, MSG_DONTWAIT)
                if sent < 0:
                    if errno == EINTR:
                        continue
                    self.send_errors += 1
                    self.last_send_errno = errno
                    at += 1  # that one is lost; the rest still go
                else:
                    at += sent
                    sent_total += sent
            names.clear()
        return sent_total
