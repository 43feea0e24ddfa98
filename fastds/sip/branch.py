"""Via branch ids and transaction keys (RFC 3261 §8.1.1.7, §17.1.3, §17.2.3).

Owns: making branches that are unique across workers and nodes and carry a keyed tag,
so that a response is relayed only when its top Via is really ours (DESIGN.md §2), and
the keys that match requests and responses to transactions. Sans-IO.

Branch: z9hG4bK + node id + '.' + per-process random + counter (hex) + '.' + tag, where
tag = BLAKE2b keyed with FASTDS_SECRET over what precedes it (hashlib's keyed mode is a
real MAC and costs well under a microsecond).
"""

from __future__ import annotations

import hashlib
import itertools
import os

from fastds._ext.sipscan import SipMessage

MAGIC_COOKIE = b"z9hG4bK"
_TAG_BYTES = 6


class BranchFactory:
    """Makes and checks fastds branch ids for one process."""

    def __init__(self, secret: bytes, node_id: str):
        if not secret:
            raise ValueError("secret must not be empty")
        if not node_id or not node_id.isalnum():
            raise ValueError(f"node_id must be letters and digits, not {node_id!r}")
        self._secret = secret
        self._prefix = MAGIC_COOKIE + node_id.encode() + b"." + os.urandom(4).hex().encode()
        self._counter = itertools.count(1)

    def _tag(self, body: bytes) -> bytes:
        return hashlib.blake2b(body, key=self._secret, digest_size=_TAG_BYTES).hexdigest().encode()

    def new(self) -> bytes:
        body = b"%s%x" % (self._prefix, next(self._counter))
        return body + b"." + self._tag(body)

    def is_ours(self, branch: bytes | None) -> bool:
        """True when branch was made by a factory with the same secret (any process or node)."""
        if not branch or not branch.startswith(MAGIC_COOKIE):
            return False
        body, dot, tag = branch.rpartition(b".")
        return bool(dot) and len(tag) == 2 * _TAG_BYTES and hashlib.blake2b(
            body, key=self._secret, digest_size=_TAG_BYTES).hexdigest().encode() == tag


def server_transaction_key(msg: SipMessage, method: bytes | None = None) -> tuple:
    """The key of the server transaction a request belongs to (§17.2.3).

    method: the method of the transaction to look for; by default the request's own,
    with ACK mapped to INVITE. Pass b"INVITE" to find the INVITE a CANCEL cancels (§9.2).
    A branch without the magic cookie (RFC 2543 peers) falls back to the request's
    identity: Request-URI, From tag, Call-ID, CSeq number and the top Via.
    """
    if method is None:
        method = b"INVITE" if msg.cseq_method == b"ACK" else msg.cseq_method
    branch = msg.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        return (branch, msg.via_host, msg.via_port, method)
    return (msg.request_uri, msg.from_tag, msg.call_id, msg.cseq_number, msg.top_via, method)


def client_transaction_key(msg: SipMessage) -> tuple:
    """The key of the client transaction a response belongs to (§17.1.3):
    the top Via branch and the CSeq method."""
    return (msg.branch, msg.cseq_method)
