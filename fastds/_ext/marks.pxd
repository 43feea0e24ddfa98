# Declarations of fastds's keyed marks (source: ext/marks.pyx), for the proxy core to cimport.
from libc.stdint cimport uint8_t, uint64_t

from fastds._ext.sipscan cimport SipMessage, UriSpans

cdef enum:
    BLOCK = 128  # BLAKE2b's block
    DIGEST = 6   # bytes of MAC in a tag
    HEX = 12     # DIGEST as hex digits

cdef struct Blake2b:
    uint64_t h[8]
    uint64_t t          # bytes compressed so far (tags are far below 2**64)
    uint8_t buf[BLOCK]
    int buflen


cdef class KeyedTag:
    cdef Blake2b after_key  # the key block compressed: where every tag's message starts

    cpdef bytes branch(self, bytes prefix, unsigned long long number)
    cdef bint _signs_branch(self, const uint8_t *p, Py_ssize_t n) noexcept
    cdef void _dialog(self, Blake2b *state, const uint8_t *call_id, Py_ssize_t call_id_n,
                      const uint8_t *dialog_tag, Py_ssize_t dialog_tag_n, const uint8_t *flow,
                      Py_ssize_t flow_n) noexcept
    cdef bint _signs_dialog(self, const uint8_t *tag, Py_ssize_t tag_n, const uint8_t *call_id,
                            Py_ssize_t call_id_n, const uint8_t *dialog_tag, Py_ssize_t dialog_tag_n,
                            const uint8_t *flow, Py_ssize_t flow_n) noexcept


cdef class BranchFactory:
    cdef KeyedTag tag
    cdef bytes prefix
    cdef unsigned long long counter

    cpdef bytes new(self)
    cdef bint _ours(self, const uint8_t *p, Py_ssize_t n) noexcept
    cpdef bint is_ours(self, bytes branch)
    cpdef bint came_back(self, SipMessage request)


cdef class RecordRoute:
    cdef KeyedTag tag
    cdef dict at  # transport -> what follows sip: up to the parameters

    cpdef bytes uri(self, SipMessage request, str transport=*, long long connection=*)
    cdef bint _param(self, const uint8_t *p, UriSpans *uri, const char *name, int *vs, int *ve) noexcept
    cdef bint _ours(self, SipMessage request, const uint8_t *p, UriSpans *uri) noexcept
    cdef bint _route_uri(self, SipMessage request, int which, UriSpans *uri) noexcept
    cpdef int ours(self, SipMessage request)
    cpdef long long connection(self, SipMessage request, int ours)
