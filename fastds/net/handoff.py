"""Call-ID ownership: every message of a Call-ID is processed by one worker, its owner
(docs/architecture.md §2).

Owns who owns a message (xxh3-64 of its Call-ID, sipscan.call_id_of, modulo the workers),
each worker's hand-off socket (abstract unix datagram, named after the master's pid and the
worker's index), the frames (a message with its source address and connection id; a write for
the worker holding a connection), batched one unix datagram per owner per loop turn, waiting in
order while a busy owner's queue is full (up to MAX_WAITING_BYTES, then dropped and counted),
and refusing frames from anything but a sibling worker.
"""

from __future__ import annotations

import collections
import socket
import struct

import xxhash

from fastds._ext.sipscan import call_id_of
from fastds.dispatch.peers import Address

_HEAD = struct.Struct("!BBHQ")  # kind, length of the source IP text, source port, connection id (0: a datagram)
_LENGTH = struct.Struct("!I")  # of each frame in a batch
MESSAGE, WRITE = 0, 1  # a frame's kind: handle this message / write these bytes on your connection
MAX_FRAME = 65535 + _HEAD.size + 45  # the largest message, its source (an IPv6 address is at most 45 characters)
BATCH_BYTES = 64 * 1024  # a batch is sent once it reaches this (so at most this plus one frame)
MAX_BATCH = BATCH_BYTES + _LENGTH.size + MAX_FRAME
MAX_QUEUED = 1024  # receive()'s default: more batches than an owner's queue holds (net.unix.max_dgram_qlen)
MAX_WAITING_BYTES = 8 * 1024 * 1024  # per owner: batches waiting for its queue to drain; beyond, dropped


def owner_of(call_id: bytes, workers: int) -> int:
    return xxhash.xxh3_64_intdigest(call_id) % workers


def handoff_address(master_pid: int, index: int) -> str:
    return f"\0fastds-{master_pid}-worker-{index}"


def sender_address(master_pid: int, index: int, owner: int) -> str:
    """The socket worker `index` sends to `owner` from, connected to it: the kernel then says
    when the owner's queue (net.unix.max_dgram_qlen datagrams, 10 by default) has room."""
    return f"\0fastds-{master_pid}-worker-{index}-to-{owner}"


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
        self.socket = _bound(handoff_address(master_pid, index))
        self._buffer = bytearray(MAX_BATCH)  # receive() reads every batch into it
        self._view = memoryview(self._buffer)
        others = [other for other in range(workers) if other != index]
        self._senders = {other: _bound(sender_address(master_pid, index, other)) for other in others}
        self._connected: set[int] = set()  # senders connected to their owner (on first use: it may bind after us)
        self._siblings = {sender_address(master_pid, other, index).encode() for other in others}
        self._outbox: dict[int, list[bytes]] = {}  # frames by owner, sent by flush()
        self._waiting: dict[int, collections.deque[tuple[bytes, int]]] = {}  # (batch, frames) by owner, its queue full
        self._waiting_bytes: dict[int, int] = {}
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
            batch: list[bytes] = []
            size = 0
            for frame in frames:
                batch += (_LENGTH.pack(len(frame)), frame)
                size += _LENGTH.size + len(frame)
                if size >= BATCH_BYTES:
                    self._send_batch(owner, b"".join(batch), len(batch) // 2)
                    batch, size = [], 0
            if batch:
                self._send_batch(owner, b"".join(batch), len(batch) // 2)

    def _send_batch(self, owner: int, batch: bytes, frames: int) -> None:
        """Send now, or wait behind what already waits for the owner (in order); a full queue
        makes it wait (waiting() / retry()), an owner that is not bound loses it, counted."""
        waiting = self._waiting.get(owner)
        if waiting:
            self._wait(owner, batch, frames)
            return
        sender = self._senders[owner]
        try:
            if owner not in self._connected:
                sender.connect(handoff_address(self._master_pid, owner))
                self._connected.add(owner)
            sender.send(batch)
            self.handed_off += frames
        except BlockingIOError:  # its queue is full: it is busy, not gone
            self._wait(owner, batch, frames)
        except OSError:  # not bound (not started yet) or gone
            self.dropped += frames

    def _wait(self, owner: int, batch: bytes, frames: int) -> None:
        if self._waiting_bytes.get(owner, 0) + len(batch) > MAX_WAITING_BYTES:
            self.dropped += frames
            return
        self._waiting.setdefault(owner, collections.deque()).append((batch, frames))
        self._waiting_bytes[owner] = self._waiting_bytes.get(owner, 0) + len(batch)

    def waiting(self) -> list[tuple[int, int]]:
        """(owner, fd) of the owners whose queue was full: watch the fd for writability and
        call retry(owner) when it is writable."""
        return [(owner, self._senders[owner].fileno()) for owner, waiting in self._waiting.items() if waiting]

    def retry(self, owner: int) -> bool:
        """Send what waits for `owner` while its queue takes it; True once nothing waits."""
        waiting = self._waiting.get(owner)
        sender = self._senders[owner]
        while waiting:
            batch, frames = waiting[0]
            try:
                sender.send(batch)
                self.handed_off += frames
            except BlockingIOError:
                return False
            except OSError:
                self.dropped += frames
            waiting.popleft()
            self._waiting_bytes[owner] -= len(batch)
        return True

    def receive(self, datagrams: int = MAX_QUEUED) -> tuple[list[tuple[bytes, Address]], list[tuple[bytes, Address]]]:
        """What up to `datagrams` batches hold: the messages to handle, with the source each
        came from, and the bytes to write on this worker's connections, with the peer each is
        to. The pump reads one batch per readable event (a sibling sends one per loop turn):
        reading on until the queue is empty cost a failing recvfrom and its exception (~1.6
        µs) on every wake-up, and a fuller queue just stays readable."""
        found: tuple[list, list] = ([], [])  # by kind: MESSAGE, WRITE
        for _ in range(datagrams):
            try:
                # into the one buffer this end keeps: recvfrom(MAX_BATCH) allocated ~128 KiB per
                # datagram, above malloc's mmap threshold (mmap, page faults and munmap each time)
                length, sender = self.socket.recvfrom_into(self._buffer)
            except OSError:  # drained
                return found
            if sender not in self._siblings:  # abstract names come as bytes; an unbound sender as None
                self.dropped += 1
                continue
            self._unpack(bytes(self._view[:length]), found)
        return found

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
        self._view.release()
        self.socket.close()
        for sender in self._senders.values():
            sender.close()


def _bound(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.setblocking(False)
    return sock
