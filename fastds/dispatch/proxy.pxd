# C declarations for fastds/dispatch/proxy.py, which Cython compiles as it is (setup.py): the
# proxy core becomes an extension type with typed fields, and its steps (one per message kind,
# timer and failover decision) C calls on typed transactions and messages. The .py stays the
# source; this file only types it (docs/architecture.md §8).
cimport cython

from fastds._ext.counters cimport Counters
from fastds._ext.marks cimport BranchFactory, RecordRoute
from fastds._ext.sipscan cimport SipMessage, scan
from fastds._ext.sipwrite cimport build_response, forward_request, forward_response
from fastds._ext.timers cimport Timed, TimerQueue
from fastds.dispatch.histogram cimport Histogram
from fastds.dispatch.peers cimport dial, on_stream, transport_of
from fastds.dispatch.txn cimport ClientTransaction, Send, ServerTransaction


# the counter indices (COUNTERS in proxy.py), as C ints
cdef int PACKETS_IN, KEEPALIVES, PARSE_ERRORS, TOO_LARGE, RETRANSMISSIONS_ABSORBED, RETRANSMISSIONS_SENT, \
    FORWARDED_TO_DESTINATION, IN_DIALOG_FORWARDED, IN_DIALOG_REFUSED, ACK_DROPPED, FAILOVERS, TIMEOUTS, \
    CONNECTION_FAILOVERS, NO_ROUTE, TRANSPORT_REFUSED, DRAIN_REJECTED, OVERLOAD_REJECTED, LAG_REJECTED, \
    SCANNER_DROPPED, UNTRUSTED_DROPPED, UNTRUSTED_REJECTED, STRAY_RESPONSES_DROPPED, STRAY_STREAM_DROPPED, \
    REPLIES_1XX, REPLIES_2XX, REPLIES_3XX, REPLIES_4XX, REPLIES_5XX, REPLIES_6XX
cdef int TIMER_A_E, TIMER_B_F, TIMER_D_K, TIMER_G, TIMER_H_I_J_L  # timer kinds
cdef double CLEANUP_TICK_S, TIMER_D_S


cdef class Proxy:
    cdef readonly object config
    cdef public object trust
    cdef public dict last_answer
    cdef public object selector
    cdef public object router
    cdef public BranchFactory branches
    cdef public RecordRoute record_route
    cdef public dict servers
    cdef public dict clients
    cdef public dict stream_clients
    cdef public TimerQueue timers
    cdef public Counters counters
    cdef public Histogram setup_times
    cdef list _out
    cdef double _now
    cdef int _max_message_bytes, _max_headers, _max_datagram_bytes
    cdef double _t1, _t2, _t4, _fr_timeout, _fr_inv_timeout
    cdef bytes _server_header
    cdef tuple _udp_via
    cdef bytes _tag_prefix
    cdef unsigned long long _tags
    cdef public bint draining
    cdef public bint saturated

    cpdef list receive(self, bytes data, tuple source, double now)
    @cython.locals(timers=TimerQueue, subject=Timed, kind=int)
    cpdef list timer(self, double now)
    cpdef object next_deadline(self)
    @cython.locals(client=ClientTransaction, server=ServerTransaction)
    cpdef list connection_failed(self, tuple addr, str reason, double now)
    @cython.locals(send=Send)
    cdef void _send(self, bytes data, tuple addr, bint upstream)
    cdef bytes _new_tag(self)
    @cython.locals(method=int, server=ServerTransaction, in_dialog=bint, our_routes=int)
    cdef _on_request(self, SipMessage message, tuple source)
    cdef bint _admitted(self, SipMessage message, tuple source)
    @cython.locals(server=ServerTransaction)
    cdef ServerTransaction _new_server(self, bytes key, SipMessage message, tuple source)
    @cython.locals(server=ServerTransaction)
    cdef _on_in_dialog(self, SipMessage message, tuple source, bytes key, int our_routes)
    @cython.locals(flow="long long", port=int)
    cdef object _in_dialog_hop(self, SipMessage message, int our_routes)
    cdef tuple _via(self, tuple addr)
    @cython.locals(server=ServerTransaction, our_routes=int)
    cdef _on_ack(self, SipMessage message, tuple source)
    @cython.locals(server=ServerTransaction, client=ClientTransaction)
    cdef _on_cancel(self, SipMessage message, tuple source)
    cdef bint _try_next(self, ServerTransaction server)
    @cython.locals(request=SipMessage, client=ClientTransaction)
    cdef _forward(self, ServerTransaction server, tuple addr, object destination)
    cdef _start_client(self, ClientTransaction client)
    @cython.locals(cancel=ClientTransaction)
    cdef _send_cancel(self, ClientTransaction client)
    @cython.locals(interval=double)
    cpdef _timer_a_e(self, ClientTransaction client)
    @cython.locals(server=ServerTransaction)
    cpdef _timer_b_f(self, ClientTransaction client)
    @cython.locals(fail_over=bint, answering=bint)
    cdef _branch_failed(self, ServerTransaction server, ClientTransaction client, int code, SipMessage response,
                        object broken=*)
    @cython.locals(client=ClientTransaction, server=ServerTransaction, code=int)
    cdef _on_response(self, SipMessage message)
    @cython.locals(server=ServerTransaction)
    cdef _on_provisional(self, ClientTransaction client, SipMessage message)
    cdef _ack(self, ClientTransaction client, SipMessage response)
    cdef _relay_final(self, ServerTransaction server, SipMessage response)
    cdef _reply(self, ServerTransaction server, int code, object reason=*)
    cdef _final(self, ServerTransaction server, bytes data, int code)
    cpdef _timer_g(self, ServerTransaction server)
    cdef _on_stray_response(self, SipMessage message)
    @cython.locals(upstream=SipMessage)
    cdef _relay_stateless(self, SipMessage message)
    cpdef _timer_d_k(self, ClientTransaction client)
    cpdef _timer_h_i_j_l(self, ServerTransaction server)
