# C declarations for fastds/net/pump.py, which Cython compiles as it is (setup.py): the pump
# is an extension type whose core, egress check and actions are typed, so that the core's
# entry points, the check of every send and each action's fields are C calls and C reads
# instead of a method lookup and an attribute lookup per message and per send.
cimport cython

from fastds._ext.udpio cimport DatagramIO
from fastds.dispatch.peers cimport on_stream
from fastds.dispatch.proxy cimport Proxy
from fastds.dispatch.txn cimport Send
from fastds.net.egress cimport EgressPolicy
from fastds.net.handoff cimport Handoff


cdef int BATCH, BATCHES_PER_TURN  # C constants: a loop over range(BATCHES_PER_TURN) is a C loop


cdef class MessagePump:
    cdef object _capture, _loop, _guard, _streams, _on_failure
    cdef bint _streams_written
    cdef Handoff _handoff
    cdef Proxy _proxy
    cdef EgressPolicy _egress
    cdef list _sockets
    cdef DatagramIO _public, _private
    cdef list _to_public, _to_private
    cdef object _timer, _armed_at
    cdef set _handoff_watched
    cdef public long long packets_out
    cdef public long long handler_errors

    @cython.locals(handoff=Handoff, owner=int)
    cdef _read(self, DatagramIO io, bint public)
    cdef _to_owner(self, bytes data, tuple source, double now, object guard)
    cdef _handle(self, bytes data, tuple addr, double now, bint private=*)
    @cython.locals(send=Send)
    cdef _apply(self, list actions, double now)
    cdef _after_batch(self)
