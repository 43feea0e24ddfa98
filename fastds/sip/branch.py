"""What marks a message as fastds's own: Via branch ids and Record-Route (RFC 3261 §8.1.1.7,
§16.6). Transaction keys (§17.1.3, §17.2.3) are the scanned message's (server_key(),
client_key() in ext/sipscan.pyx).

Owns the keyed tags of docs/architecture.md §2: a response is relayed only when its top Via branch
carries our tag, an in-dialog request is loose-routed only when its top Route is our
signed Record-Route. Tags are BLAKE2b keyed with FASTDS_SECRET (a real MAC; computed and
checked in constant time in C by fastds/_ext/keyedtag, ext/keyedtag.pyx), so every node sharing
the secret recognises the others' branches and routes. Sans-IO.

Branch: z9hG4bK + node id + '.' + per-process random + counter (hex) + '.' + tag.
Record-Route: <sip:HOST:PORT;lr;ftag=FROM-TAG;fds=TAG> (;transport=tcp or tls after the port
for the stream side of a dialog that changes transport here), TAG over Call-ID and ftag, so a
route lifted from one dialog does not open a relay for another. The From tag is a token,
which may hold characters a URI parameter may not (% and `): it goes in %-escaped.
"""

from __future__ import annotations

import itertools
import os
import re

from fastds._ext.keyedtag import KeyedTag
from fastds._ext.sipscan import SipMessage, SipUri

MAGIC_COOKIE = b"z9hG4bK"


_NOT_PARAMCHAR = re.compile(rb"[^A-Za-z0-9\-_.!~*'()\[\]/:&+$]")  # RFC 3261 paramchar, unescaped


def escape_param(value: bytes) -> bytes:
    """value as a URI parameter value: every byte that is not a paramchar %-escaped."""
    if value.isalnum() or _NOT_PARAMCHAR.search(value) is None:  # isalnum: the common tag, 4x cheaper
        return value
    return _NOT_PARAMCHAR.sub(lambda found: b"%%%02X" % found.group()[0], value)


class BranchFactory:
    """Makes and checks fastds branch ids for one process."""

    def __init__(self, secret: bytes, node_id: str):
        if not secret:
            raise ValueError("secret must not be empty")
        if not node_id or not node_id.isalnum():
            raise ValueError(f"node_id must be letters and digits, not {node_id!r}")
        self._tag = KeyedTag(secret)
        self._prefix = MAGIC_COOKIE + node_id.encode() + b"." + os.urandom(4).hex().encode()
        self._counter = itertools.count(1)

    def new(self) -> bytes:
        return self._tag.branch(self._prefix, next(self._counter))

    def is_ours(self, branch: bytes | None) -> bool:
        """True when branch was made by a factory with the same secret (any process or node)."""
        return bool(branch) and branch.startswith(MAGIC_COOKIE) and self._tag.signs_branch(branch)


class RecordRoute:
    """Our Record-Route URIs for a dialog, and the check that a Route is one of them. The
    URI for a side reached over a connection fastds accepted names that connection (fdsc=,
    RFC 5626's flow token in spirit): requests towards that side go back on it. Every
    parameter that steers routing is under the MAC."""

    def __init__(self, secret: bytes, sent_by: bytes, streams: dict[str, bytes] | None = None):
        """sent_by: host:port of the UDP listener; streams: of the TCP and TLS ones there are,
        by transport."""
        self._tag = KeyedTag(secret)
        self._at = {"udp": sent_by}
        self._at.update((transport, at + b";transport=" + transport.encode()) for transport, at in (streams or {}).items())

    def uri(self, request: SipMessage, transport: str = "udp", connection: int = 0) -> bytes:
        """The URI for the side of the dialog that reaches fastds over `transport`, on the
        connection with id `connection` (0: none in particular)."""
        at = self._at.get(transport)
        if at is None:
            raise ValueError(f"no {transport} listener to record-route with")
        ftag = request.from_tag or b""
        if not connection:
            return b"sip:%s;lr;ftag=%s;fds=%s" % (at, escape_param(ftag), self._tag.dialog(request.call_id, ftag))
        flow = b"%x" % connection
        return b"sip:%s;lr;ftag=%s;fdsc=%s;fds=%s" % (at, escape_param(ftag), flow,
                                                      self._tag.dialog(request.call_id, ftag, flow))

    def is_ours(self, route_uri: SipUri, request: SipMessage) -> bool:
        """route_uri (a Route value's URI) was made by uri() for this request's dialog;
        the dialog's first From tag is ours to check against From or To (either side)."""
        ftag, tag = route_uri.param("ftag"), route_uri.param("fds")
        if ftag is None or tag is None:
            return False
        flow = route_uri.param("fdsc")
        for dialog_tag in (request.from_tag or b"", request.to_tag or b""):
            # raw first (the usual tag needs no escaping); either way the MAC decides
            if ftag == dialog_tag or ftag == escape_param(dialog_tag):
                return self._tag.signs_dialog(tag, request.call_id, dialog_tag, flow)
        return False

    @staticmethod
    def connection_of(route_uri: SipUri) -> int:
        """The connection a Route of ours (is_ours) names, 0 for none."""
        flow = route_uri.param("fdsc")
        try:
            return int(flow, 16) if flow else 0
        except ValueError:
            return 0
