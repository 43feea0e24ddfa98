# C declarations for fastds/dispatch/txn.py, which Cython compiles as it is (setup.py): the
# transactions become extension types with typed fields, their transitions C-callable methods
# of the proxy core. The .py stays the source; this file only types it (docs/architecture.md §8).
cimport cython

from fastds._ext.sipscan cimport SipMessage
from fastds._ext.timers cimport Timed


# the states (State in txn.py), as C ints
cdef int CALLING, TRYING, PROCEEDING, COMPLETED, CONFIRMED, ACCEPTED, TERMINATED


cdef class ClientTransaction


cdef class Send:
    cdef public bytes data
    cdef public tuple addr
    cdef public bint upstream


cdef class ServerTransaction(Timed):
    cdef public bytes key
    cdef public SipMessage request
    cdef public tuple source
    cdef public bint is_invite
    cdef public int state
    cdef public object last_response
    cdef public bytes to_tag
    cdef public list targets
    cdef public ClientTransaction client
    cdef public bint cancelled
    cdef public object request_uri
    cdef public int pop_routes
    cdef public bint record_route
    cdef public double retransmit_interval
    cdef public double started

    cpdef bint proceeding(self)
    cdef bint resends_final(self)
    cdef bint absorbs_ack(self)
    cpdef object request_retransmitted(self)
    cpdef bint final_sent(self, bytes data, int code)
    cpdef bint ack_received(self)
    cpdef bint cancel_received(self)
    cpdef terminate(self)


cdef class ClientTransaction(Timed):
    cdef public bytes branch
    cdef public bytes method
    cdef public bytes key
    cdef public ServerTransaction server
    cdef public object destination
    cdef public tuple addr
    cdef public bytes data
    cdef public bint is_invite
    cdef public int state
    cdef public bint cancel_pending
    cdef public double retransmit_interval
    cdef public object ack
    cdef public object in_flight
    cdef SipMessage _sent

    cdef bint rang(self)
    cpdef bint done(self)
    cdef bint retransmits(self)
    cdef bint answered(self)
    cpdef bint provisional_received(self)
    cpdef final_received(self)
    cpdef bint timed_out(self)
    cpdef compact(self)
    cpdef terminate(self)
