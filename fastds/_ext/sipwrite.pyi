"""Type stubs for the messages written in C (ext/sipwrite.pyx)."""

from fastds._ext.sipscan import SipMessage

def forward_request(msg: SipMessage, *, transport: bytes, sent_by: bytes, branch: bytes,
                    record_route: bytes | None = None, record_route_inbound: bytes | None = None,
                    pop_routes: int = 0, request_uri: bytes | None = None, source_ip: bytes | None = None,
                    source_port: int = 0) -> bytes: ...
def forward_response(msg: SipMessage) -> bytes: ...
def build_response(request: SipMessage, code: int, reason: bytes | None = None, *, to_tag: bytes | None = None,
                   server: bytes | None = None, retry_after_s: int | None = None, extra_headers: bytes = b"",
                   source: tuple | None = None) -> bytes: ...
