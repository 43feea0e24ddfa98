"""Reason phrases of the status codes fastds builds responses with (RFC 3261 §21)."""

REASONS: dict[int, bytes] = {
    100: b"Trying",
    180: b"Ringing",
    183: b"Session Progress",
    200: b"OK",
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    408: b"Request Timeout",
    416: b"Unsupported URI Scheme",
    420: b"Bad Extension",
    480: b"Temporarily Unavailable",
    481: b"Call/Transaction Does Not Exist",
    482: b"Loop Detected",
    483: b"Too Many Hops",
    486: b"Busy Here",
    487: b"Request Terminated",
    500: b"Server Internal Error",
    501: b"Not Implemented",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    505: b"Version Not Supported",
    513: b"Message Too Large",
    600: b"Busy Everywhere",
    603: b"Decline",
}


def reason_for(code: int) -> bytes:
    """The RFC reason phrase of a code fastds sends."""
    return REASONS.get(code, b"Unknown")
