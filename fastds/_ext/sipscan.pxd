# Declarations of the SIP scanner (source: ext/sipscan.pyx), kept beside the compiled
# module so that other extensions can cimport it. Shared with the other extensions (dshash reads the
# scan result's offsets at C speed through these). Offsets are byte positions in
# SipMessage.data; a span whose start is -1 is absent.

cdef enum HeaderId:
    H_OTHER = 0
    H_VIA
    H_CALL_ID
    H_FROM
    H_TO
    H_CSEQ
    H_MAX_FORWARDS
    H_ROUTE
    H_RECORD_ROUTE
    H_CONTACT
    H_CONTENT_LENGTH
    H_CONTENT_TYPE
    H_AUTHORIZATION
    H_PROXY_AUTHORIZATION
    H_SUPPORTED
    H_SUBJECT
    H_CONTENT_ENCODING
    H_EVENT
    H_REFER_TO
    H_ALLOW_EVENTS
    H_REFERRED_BY
    H_SESSION_EXPIRES
    H_IDENTITY
    H_REQUIRE
    H_PROXY_REQUIRE
    H_TIMESTAMP
    H_RETRY_AFTER

cdef enum MethodId:
    M_OTHER = 0
    M_INVITE
    M_ACK
    M_CANCEL
    M_BYE
    M_OPTIONS
    M_REGISTER
    M_PRACK
    M_UPDATE
    M_INFO
    M_SUBSCRIBE
    M_NOTIFY
    M_REFER
    M_MESSAGE
    M_PUBLISH

cdef enum UriKind:
    URI_OTHER = 0
    URI_SIP
    URI_SIPS
    URI_TEL

cdef struct HeaderEntry:
    int hid
    int line_start      # first byte of the header name
    int name_end
    int value_start     # trimmed value (may contain folded line breaks)
    int value_end
    int line_end        # first byte of the next line

cdef struct ListEntry:  # one comma-separated value of Via / Route / Record-Route / Contact
    int hid
    int header_index
    int start
    int end
    int uri_start       # the URI inside <...> (Route, Record-Route, Contact); -1 for Via
    int uri_end

cdef struct UriSpans:
    int kind
    int start
    int end
    int scheme_end      # the scheme is [start, scheme_end)
    int user_start      # SIP/SIPS user, or the TEL number
    int user_end
    int password_start
    int password_end
    int host_start      # [IPv6] keeps its brackets
    int host_end
    int port            # 0 when absent
    int params_start    # after the first ';', up to '?' or the end
    int params_end
    int headers_start   # after '?'
    int headers_end


cdef class SipUri:
    cdef readonly bytes data
    cdef UriSpans s
    cdef _slice(self, int s, int e)
    cpdef object param(self, name)


cdef class SipMessage:
    cdef readonly bytes data
    cdef readonly bint is_request
    cdef readonly int method_id
    cdef readonly int method_start, method_end
    cdef readonly int ruri_start, ruri_end
    cdef UriSpans ruri_spans
    cdef readonly int status_code
    cdef readonly int reason_start, reason_end

    cdef HeaderEntry *hdrs               # the header index, inline_hdrs until it grows
    cdef readonly int n_headers
    cdef int hdr_capacity
    cdef HeaderEntry inline_hdrs[24]
    cdef ListEntry *ents                 # Via / Route / Record-Route / Contact values
    cdef int n_entries, ent_capacity
    cdef ListEntry inline_ents[12]

    # header indices of the headers that may appear once (-1 absent)
    cdef readonly int idx_call_id, idx_from, idx_to, idx_cseq, idx_max_forwards, idx_content_length
    cdef readonly int idx_first_via, idx_first_route, idx_first_record_route

    cdef readonly int call_id_start, call_id_end
    cdef readonly long long cseq_number
    cdef readonly int cseq_method_start, cseq_method_end
    cdef readonly int from_uri_start, from_uri_end, from_tag_start, from_tag_end
    cdef readonly int to_uri_start, to_uri_end, to_tag_start, to_tag_end
    cdef readonly int max_forwards, max_forwards_start, max_forwards_end
    cdef readonly int content_length
    cdef readonly int headers_end, body_start, body_end
    cdef readonly int auth_user_start, auth_user_end
    cdef readonly int proxy_auth_user_start, proxy_auth_user_end

    # the top Via value and its parameters
    cdef readonly int via_start, via_end, via_count
    cdef readonly int via_transport_start, via_transport_end
    cdef readonly int via_host_start, via_host_end, via_port
    cdef readonly int branch_start, branch_end
    cdef readonly int received_start, received_end
    cdef readonly int rport             # -2 absent, -1 present without value
    cdef readonly int rport_param_start, rport_param_end  # "rport" or "rport=N" in the top Via
    cdef readonly int maddr_start, maddr_end

    cdef const char *err_reason
    cdef int err_offset, err_status

    cdef int _error(self, const char *reason, int offset, int status) noexcept
    cdef int _grow_headers(self) noexcept
    cdef int _add_entry(self, int hid, int header_index, int start, int end, int uri_start, int uri_end) noexcept
    cdef int _start_line(self, const unsigned char *p, int pos, int n) noexcept
    cdef int _header(self, const unsigned char *p, int index) noexcept
    cdef int _via_list(self, const unsigned char *p, int index, int s, int e) noexcept
    cdef int _address_list(self, const unsigned char *p, int index, int s, int e) noexcept
    cdef int _name_addr(self, const unsigned char *p, int s, int e, bint in_list, int *out) noexcept
    cdef int _single_address(self, const unsigned char *p, int s, int e, int *uri_s, int *uri_e, int *tag_s, int *tag_e) noexcept
    cdef int _cseq(self, const unsigned char *p, int s, int e) noexcept
    cdef int _call_id(self, const unsigned char *p, int s, int e) noexcept
    cdef int _finish(self, const unsigned char *p, int n) noexcept
    cdef _slice(self, int s, int e)
    cdef bint value_cut(self, int hid, int *start, int *end) noexcept
    cpdef bint has_header(self, bytes name)
    cpdef object next_hop(self, int skip_routes)
    cpdef bytes server_key(self, bytes method=*)
    cpdef bytes client_key(self)


cdef int parse_uri_spans(const unsigned char *p, int s, int e, UriSpans *out) noexcept
cdef bint uri_param_span(const unsigned char *p, int s, int e, const unsigned char *name, int n, int *vs, int *ve) noexcept
cdef SipMessage scan_message(bytes data, int max_bytes, int max_headers)
cpdef SipMessage scan(object data, int max_bytes=*, int max_headers=*)
cpdef object call_id_of(object data)
