"""Framing SIP messages on a stream transport, TCP or TLS (RFC 3261 §18.3; RFC 5626 §4.4.1).

Owns cutting one connection's bytes into whole messages: the header block ends at the first
empty line, Content-Length (required on a stream; compact form `l`) says how many body bytes
follow. Owns the limits a connection's peer must keep -- the header block's size, the whole
message's size, and a deadline for a message once its first byte came (a peer that trickles
bytes to hold a connection is cut off) -- and the keep-alives: a double CRLF between messages
is a ping answered with one CRLF (RFC 5626 §4.4.1), a single CRLF is skipped (§7.5). A breach
is a FramingError with the status to answer (400, 408 or 513) and the header bytes read so far
(enough to build the response from); the connection is then closed, since nothing after the
breach can be framed. Sans-IO: bytes and the time come in as arguments, nothing is sent.
"""

from __future__ import annotations

import dataclasses
import re

from fastds._ext.sipscan import scan
from fastds._ext.sipwrite import build_response
from fastds.errors import SipParseError

CRLF = b"\r\n"
PONG = CRLF  # the answer to a double-CRLF ping
_HEADER_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
_DIGITS = re.compile(rb"[0-9]{1,10}")


@dataclasses.dataclass
class FramingError(Exception):
    """The stream cannot be framed any further: answer `status` (when `head` holds a request's
    start line and headers to answer from) and close the connection."""
    status: int      # 400 (framing rules), 408 (too slow), 513 (too large)
    reason: str
    head: bytes      # the header block read so far (possibly cut short)

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


@dataclasses.dataclass(frozen=True)
class Frames:
    """What one feed() found: the whole messages in order, and how many pings to answer."""
    messages: list[bytes]
    pings: int = 0


class StreamFramer:
    """One connection's framing state."""

    def __init__(self, max_message_bytes: int, max_header_bytes: int, message_deadline_s: float):
        if not 0 < max_header_bytes <= max_message_bytes:
            raise ValueError(f"max_header_bytes {max_header_bytes} must be in 1..max_message_bytes ({max_message_bytes})")
        self.max_message_bytes = max_message_bytes
        self.max_header_bytes = max_header_bytes
        self.message_deadline_s = message_deadline_s
        self._buffer = bytearray()
        self._started_at: float | None = None  # when the first byte of the pending message came
        self._searched = 0  # the pending bytes already searched for the header block's end
        self._expected = 0  # the pending message's whole length, once its header block is in (0: not yet)

    @property
    def pending(self) -> int:
        """Bytes of a message begun and not yet whole."""
        return len(self._buffer)

    def feed(self, data: bytes, now: float) -> Frames:
        """Take bytes read from the connection; the messages they complete. FramingError when
        the peer broke a limit or the framing rules (then feed no more: close)."""
        self._buffer += data
        messages: list[bytes] = []
        pings = 0
        while self._buffer:
            if self._buffer.startswith(CRLF):  # keep-alives, only ever between messages
                if self._buffer.startswith(_HEADER_END):
                    pings += 1
                    del self._buffer[:4]
                elif _HEADER_END.startswith(bytes(self._buffer[:4])):
                    break  # CRLF or CRLF CR: a ping or a skipped line -- the next bytes tell
                else:
                    del self._buffer[:2]  # a CRLF before a start line is skipped (§7.5)
                continue
            if self._started_at is None:
                self._started_at = now
            message = self._take_message()
            if message is None:
                break
            messages.append(message)
            self._started_at = None
        if self._buffer and self._started_at is not None and now - self._started_at >= self.message_deadline_s:
            raise FramingError(408, f"message not whole within {self.message_deadline_s:g} s",
                               bytes(self._buffer[:self.max_header_bytes]))
        return Frames(messages, pings)

    def overdue(self, now: float) -> bool:
        """A message was begun and is still not whole after the deadline (checked by the
        connection's owner on its idle sweep: a peer that stops sending mid-message)."""
        return self._started_at is not None and now - self._started_at >= self.message_deadline_s

    def _take_message(self) -> bytes | None:
        buffer = self._buffer
        if not self._expected:
            self._expected = self._message_length()
            if not self._expected:
                return None
        if len(buffer) < self._expected:
            return None
        message = bytes(buffer[:self._expected])
        del buffer[:self._expected]
        self._searched = self._expected = 0
        return message

    def _message_length(self) -> int:
        """The pending message's length from its header block; 0 while that is not all in."""
        buffer = self._buffer
        # resume where the last search stopped (a header trickled byte by byte is searched once)
        end = buffer.find(_HEADER_END, max(0, self._searched - 3), self.max_header_bytes + len(_HEADER_END))
        if end < 0:
            if len(buffer) > self.max_header_bytes:
                raise FramingError(513, "header block too large", bytes(buffer[:self.max_header_bytes]))
            self._searched = len(buffer)
            return 0
        head_end = end + len(_HEADER_END)
        head = bytes(buffer[:head_end])
        total = head_end + self._content_length(head)
        if total > self.max_message_bytes:
            raise FramingError(513, "message too large", head)
        return total

    @staticmethod
    def _content_length(head: bytes) -> int:
        """Content-Length of a header block (the start line is never a header: it has no
        leading CRLF). Required, one value, digits; repeats must agree."""
        values = {value.strip() for value in _CONTENT_LENGTH.findall(head)}
        if not values:
            raise FramingError(400, "Content-Length required on a stream", head)
        if len(values) > 1:
            raise FramingError(400, "conflicting Content-Length", head)
        value = values.pop()
        if _DIGITS.fullmatch(value) is None:
            raise FramingError(400, "bad Content-Length", head)
        return int(value)

    def closed(self) -> bool:
        """The peer closed the connection: True when it left a message unfinished (counted
        as a framing error by the caller; nothing is answered on a closed connection)."""
        unfinished = bool(self._buffer.strip(b"\r\n"))
        self._buffer.clear()
        self._started_at = None
        self._searched = self._expected = 0
        return unfinished


def framing_error_response(error: FramingError) -> bytes | None:
    """What to answer before closing: a response to the request whose header block (or the
    start of it) was read, or None when that is not a request."""
    try:
        message = scan(error.head)
    except SipParseError as exc:
        message = exc.message
    if message is None or not message.is_request:
        return None
    return build_response(message, error.status, error.reason.encode())
