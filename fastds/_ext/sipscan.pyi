"""Type stub of the compiled SIP scanner (source: ext/sipscan.pyx).

Offsets are byte positions in SipMessage.data; a *_start of -1 means absent.
"""

class SipUri:
    data: bytes
    kind: str  # "sip", "sips", "tel" or "other"
    scheme: bytes
    user: bytes | None  # the number for tel:
    password: bytes | None
    host: bytes | None  # [IPv6] keeps its brackets
    port: int  # 0 when absent
    params: bytes | None
    headers: bytes | None
    span: tuple[int, int]
    user_span: tuple[int, int] | None
    def param(self, name: str | bytes) -> bytes | None: ...

class SipMessage:
    data: bytes
    is_request: bool
    method_id: int
    method_start: int
    method_end: int
    ruri_start: int
    ruri_end: int
    status_code: int
    reason_start: int
    reason_end: int
    n_headers: int
    idx_call_id: int
    idx_from: int
    idx_to: int
    idx_cseq: int
    idx_max_forwards: int
    idx_content_length: int
    idx_first_via: int
    idx_first_route: int
    idx_first_record_route: int
    call_id_start: int
    call_id_end: int
    cseq_number: int
    cseq_method_start: int
    cseq_method_end: int
    from_uri_start: int
    from_uri_end: int
    from_tag_start: int
    from_tag_end: int
    to_uri_start: int
    to_uri_end: int
    to_tag_start: int
    to_tag_end: int
    max_forwards: int  # -1 when absent
    max_forwards_start: int
    max_forwards_end: int
    content_length: int  # -1 when absent
    headers_end: int
    body_start: int
    body_end: int
    auth_user_start: int
    auth_user_end: int
    proxy_auth_user_start: int
    proxy_auth_user_end: int
    via_start: int
    via_end: int
    via_count: int
    via_transport_start: int
    via_transport_end: int
    via_host_start: int
    via_host_end: int
    via_port: int  # 0 when absent
    branch_start: int
    branch_end: int
    received_start: int
    received_end: int
    rport: int  # -2 absent, -1 present without a value
    rport_param_start: int  # the whole "rport" / "rport=N" parameter
    rport_param_end: int
    maddr_start: int
    maddr_end: int

    method: bytes | None
    request_uri: bytes | None
    ruri: SipUri | None
    reason: bytes | None
    call_id: bytes | None
    cseq_method: bytes | None
    from_uri: bytes | None
    from_tag: bytes | None
    to_uri: bytes | None
    to_tag: bytes | None
    body: bytes
    top_via: bytes | None
    branch: bytes | None
    via_transport: bytes | None
    via_host: bytes | None
    received: bytes | None
    maddr: bytes | None
    auth_username: bytes | None
    vias: list[bytes]
    routes: list[bytes]
    record_routes: list[bytes]
    contacts: list[bytes]

    def uri_of(self, which: str) -> SipUri | None: ...
    def entry_spans(self, kind: str) -> list[tuple[int, int, int, int, int]]: ...
    def first_value_cut(self, kind: str) -> tuple[int, int] | None: ...
    def has_header(self, name: bytes) -> bool: ...
    def next_hop(self, skip_routes: int) -> tuple[str, int, str] | None: ...
    def server_key(self, method: bytes | None = None) -> bytes: ...
    def client_key(self) -> bytes: ...
    def header_span(self, index: int) -> tuple[int, int, int, int, int]: ...
    def header_spans(self, name: str | bytes) -> list[tuple[int, int, int, int, int]]: ...
    def header_values(self, name: str | bytes) -> list[bytes]: ...
    def header(self, name: str | bytes) -> bytes | None: ...
    def headers(self) -> list[tuple[bytes, bytes]]: ...

def scan(data: bytes, max_bytes: int = 65535, max_headers: int = 256) -> SipMessage: ...
def parse_uri(data: bytes, start: int = 0, end: int | None = None) -> SipUri: ...
def call_id_of(data: bytes) -> bytes | None: ...

def client_key_of(branch: bytes, method: bytes) -> bytes: ...
def ip_literal(host: bytes) -> bool: ...
