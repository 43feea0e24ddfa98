"""Call-ID ownership: every message of a Call-ID is processed by one worker, its owner.

Owns who owns a datagram (xxh3-64 of its Call-ID, found without a full scan by
sipscan.call_id_of, modulo the worker count), each worker's hand-off address (an
abstract unix datagram socket named after the master's pid and the worker's index), the
framing of a handed-off message (the source address it came from -- with the id of the TCP
connection it was read on, for a stream's -- then its bytes untouched) and of a write (bytes
for the worker holding a TCP connection to write on it: what the Call-ID's owner sends to a
stream peer); the frames for one worker that one loop turn produced go in one unix datagram,
each behind its length, so a burst costs one send and one receive), and what is not
handled: a datagram for an owner whose socket is full (or not bound) is dropped and
counted, never handled by a worker without the state (SIP retransmits) -- while an owner
is being respawned its socket stays bound (the master holds it) and frames wait in it; a frame from
anything but a sibling worker's socket is dropped too (any local process could otherwise
inject datagrams with a forged source address). SO_REUSEPORT gives all of one peer's
datagrams to one worker; this spreads them over all.
"""

from __future__ import annotations

import socket
import struct

import xxhash

from fastds._ext.sipscan import call_id_of

Address = tuple[str, int]
_HEAD = struct.Struct("!BBHQ")  # kind, length of the source IP text, source port, connection id (0: a datagram)
_LENGTH = struct.Struct("!I")  # of each frame in a batch
MESSAGE, WRITE = 0, 1  # a frame's kind: handle this message / write these bytes on your connection
MAX_FRAME = 65535 + _HEAD.size + 45  # the largest message, its source (an IPv6 address is at most 45 characters)
BATCH_BYTES = 64 * 1024  # a batch is sent once it reaches this (so at most this plus one frame)
MAX_BATCH = BATCH_BYTES + _LENGTH.size + MAX_FRAME


def owner_of(call_id: bytes, workers: int) -> int:
    return xxhash.xxh3_64_intdigest(call_id) % workers


def handoff_address(master_pid: int, index: int) -> str:
    return f"\0fastds-{master_pid}-worker-{index}"


def encode(data: bytes, address: Address, kind: int = MESSAGE) -> bytes:
    """A frame: a message from `address` (IP, port) or (IP, port, connection id), or bytes
    to write on the connection of `address`."""
    ip = address[0].encode()
    return _HEAD.pack(kind, len(ip), address[1], address[2] if len(address) == 3 else 0) + ip + data


def decode(frame: bytes) -> tuple[int, bytes, Address] | None:
    """(kind, bytes, address) of a frame; None for one that is cut short or not one."""
    if len(frame) < _HEAD.size:
        return None
    kind, ip_length, port, connection = _HEAD.unpack_from(frame)
    start = _HEAD.size + ip_length
    if kind not in (MESSAGE, WRITE) or ip_length == 0 or len(frame) <= start or (kind == WRITE and not connection):
        return None
    try:
        ip = frame[_HEAD.size:start].decode("ascii")
    except UnicodeDecodeError:
        return None
    return kind, frame[start:], ((ip, port, connection) if connection else (ip, port))


class Handoff:
    """One worker's end: its own socket to receive on, and sending to the other owners."""

    def __init__(self, master_pid: int, index: int, workers: int):
        self.index, self.workers = index, workers
        self._master_pid = master_pid
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(handoff_address(master_pid, index))
        self.socket.setblocking(False)
        self._siblings = {handoff_address(master_pid, other).encode() for other in range(workers) if other != index}
        self._outbox: dict[int, list[bytes]] = {}  # frames by owner, sent by flush()
        self.handed_off = 0
        self.received = 0
        self.dropped = 0  # the owner's socket was full or unbound, or a frame came from elsewhere or did not decode

    def owner(self, data: bytes) -> int:
        """The worker that owns a datagram (one without a Call-ID stays here, as does
        everything when this is the only worker: its Call-ID is then not even looked for)."""
        if self.workers == 1:
            return self.index
        call_id = call_id_of(data)
        return self.index if call_id is None else owner_of(call_id, self.workers)

    def send(self, owner: int, data: bytes, source: Address) -> None:
        """Queue a message for its owner, sent by the next flush() (the caller's, once the
        batch it is reading is done)."""
        self._outbox.setdefault(owner, []).append(encode(data, source))

    def write(self, holder: int, data: bytes, peer: Address) -> None:
        """Queue bytes for the worker holding the connection of `peer` (IP, port, connection
        id) to write on it, sent by the next flush()."""
        self._outbox.setdefault(holder, []).append(encode(data, peer, WRITE))

    def flush(self) -> None:
        """Send what send() and write() queued, each worker's frames in as few datagrams as fit."""
        if not self._outbox:
            return
        outbox, self._outbox = self._outbox, {}
        for owner, frames in outbox.items():
            address = handoff_address(self._master_pid, owner)
            batch: list[bytes] = []
            size = 0
            for frame in frames:
                batch += (_LENGTH.pack(len(frame)), frame)
                size += _LENGTH.size + len(frame)
                if size >= BATCH_BYTES:
                    self._send_batch(batch, address)
                    batch, size = [], 0
            if batch:
                self._send_batch(batch, address)

    def _send_batch(self, batch: list[bytes], address: str) -> None:
        frames = len(batch) // 2
        try:
            self.socket.sendto(b"".join(batch), address)
            self.handed_off += frames
        except OSError:  # its buffer is full (or it is not bound)
            self.dropped += frames

    def receive(self) -> tuple[list[tuple[bytes, Address]], list[tuple[bytes, Address]]]:
        """Everything waiting: the messages to handle, with the source each came from, and
        the bytes to write on this worker's connections, with the peer each is to."""
        found: tuple[list, list] = ([], [])  # by kind: MESSAGE, WRITE
        while True:
            try:
                batch, sender = self.socket.recvfrom(MAX_BATCH)
            except OSError:  # drained
                return found
            if sender not in self._siblings:  # abstract names come as bytes; an unbound sender as None
                self.dropped += 1
                continue
            self._unpack(batch, found)

    def _unpack(self, batch: bytes, found: tuple[list, list]) -> None:
        at = 0
        while at < len(batch):
            decoded = None
            if at + _LENGTH.size <= len(batch):
                (length,) = _LENGTH.unpack_from(batch, at)
                at += _LENGTH.size
                if at + length <= len(batch):
                    decoded = decode(batch[at:at + length])
                    at += length
            if decoded is None:  # the rest of the batch cannot be trusted
                self.dropped += 1
                return
            self.received += 1
            kind, data, address = decoded
            found[kind].append((data, address))

    def close(self) -> None:
        self.socket.close()
