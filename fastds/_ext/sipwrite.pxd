# Declarations of the message writer (source: ext/sipwrite.pyx), for the proxy core to cimport:
# its three entry points are C calls from there.
from fastds._ext.sipscan cimport SipMessage

cpdef bytes forward_request(SipMessage msg, bytes transport, bytes sent_by, bytes branch, bytes record_route=*,
                            bytes record_route_inbound=*, int pop_routes=*, bytes request_uri=*,
                            bytes source_ip=*, int source_port=*)
cpdef bytes forward_response(SipMessage msg)
cpdef bytes build_response(SipMessage request, int code, bytes reason=*, bytes to_tag=*, bytes server=*,
                           object retry_after_s=*, bytes extra_headers=*, object source=*)
