# Declarations of the batched datagram IO (source: ext/udpio.pyx): the system's structures it
# keeps per socket, and its class, so that the message pump (fastds/net/pump.pxd) calls
# receive() and send() in C.

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t
    struct sockaddr:
        sa_family_t sa_family
    struct sockaddr_storage:
        sa_family_t ss_family
    struct iovec:
        void *iov_base
        size_t iov_len
    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    struct timespec:
        pass
    int recvmmsg(int fd, mmsghdr *msgs, unsigned int n, int flags, timespec *timeout)
    int sendmmsg(int fd, mmsghdr *msgs, unsigned int n, int flags)
    enum: AF_INET, AF_INET6, MSG_DONTWAIT, MSG_TRUNC

cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        unsigned int s_addr
    struct in6_addr:
        unsigned char s6_addr[16]
    struct sockaddr_in:
        sa_family_t sin_family
        unsigned short sin_port
        in_addr sin_addr
    struct sockaddr_in6:
        sa_family_t sin6_family
        unsigned short sin6_port
        unsigned int sin6_flowinfo
        in6_addr sin6_addr
        unsigned int sin6_scope_id
    unsigned short ntohs(unsigned short)
    unsigned short htons(unsigned short)


cdef class DatagramIO:
    cdef int fd
    cdef int family
    cdef readonly unsigned int batch
    cdef size_t buffer_bytes
    cdef char *buffers
    cdef mmsghdr *messages
    cdef iovec *vectors
    cdef sockaddr_storage *names
    cdef mmsghdr *send_messages  # send()'s own headers and vectors: the receiving ones stay set
    cdef iovec *send_vectors
    cdef dict _sources  # raw address bytes -> (ip, port)
    cdef dict _destinations  # (ip, port) -> raw sockaddr bytes
    cdef sockaddr_storage _last_name  # the last source, whose tuple is reused while it repeats
    cdef socklen_t _last_length
    cdef object _last_source
    cdef readonly unsigned long long truncated
    cdef readonly unsigned long long receive_errors
    cdef readonly unsigned long long send_errors
    cdef readonly int last_send_errno

    cdef void _prepare(self) noexcept
    cdef object _source(self, sockaddr_storage *name, socklen_t length)
    cdef object _new_source(self, sockaddr_storage *name)
    cpdef list receive(self)
    cdef bytes _destination(self, tuple address)
    cpdef unsigned int send(self, list datagrams)
