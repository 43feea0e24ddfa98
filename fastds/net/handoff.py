"""Call-ID ownership: every message of a Call-ID is processed by one worker, its owner
(docs/architecture.md §2).

Owns who owns a message (xxh3-64 of its Call-ID, sipscan.call_id_of, modulo the workers),
each worker's hand-off socket (abstract unix datagram, named after the master's pid and the
worker's index), and what goes to each owner: its frames of a loop turn (a message with its
source address and connection id; a write for the worker holding a connection), packed in C
one unix datagram per owner per turn (ext/frames.pyx, which also refuses frames from anything
but a sibling worker), waiting in order while a busy owner's queue is full (up to
MAX_WAITING_BYTES, then dropped and counted).
"""

from __future__ import annotations

import collections
import errno
import socket

import xxhash

from fastds._ext.frames import MESSAGE, WRITE, FrameInbox, FrameOutbox
from fastds._ext.sipscan import call_id_of
from fastds.dispatch.peers import Address

MAX_QUEUED = 1024  # receive()'s default: more batches than an owner's queue holds (net.unix.max_dgram_qlen)
MAX_WAITING_BYTES = 8 * 1024 * 1024  # per owner: batches waiting for its queue to drain; beyond, dropped


_xxh3_64 = xxhash.xxh3_64_intdigest  # a module global: no attribute lookup on xxhash per message


def owner_of(call_id: bytes, workers: int) -> int:
    return _xxh3_64(call_id) % workers


def handoff_address(master_pid: int, index: int) -> str:
    return f"\0fastds-{master_pid}-worker-{index}"


def sender_address(master_pid: int, index: int, owner: int) -> str:
    """The socket worker `index` sends to `owner` from, connected to it: the kernel then says
    when the owner's queue (net.unix.max_dgram_qlen datagrams, 10 by default) has room."""
    return f"\0fastds-{master_pid}-worker-{index}-to-{owner}"


class Handoff:
    """One worker's end: its own socket to receive on, and sending to the other owners."""

    def __init__(self, master_pid: int, index: int, workers: int):
        self.index, self.workers = index, workers
        self._master_pid = master_pid
        self.socket = _bound(handoff_address(master_pid, index))
        others = [other for other in range(workers) if other != index]
        self._senders = {other: _bound(sender_address(master_pid, index, other)) for other in others}
        self._sender_fds = [self._senders[other].fileno() if other != index else -1 for other in range(workers)]
        self._connected: set[int] = set()  # senders connected to their owner (on first use: it may bind after us)
        self._inbox = FrameInbox(self.socket.fileno(), [sender_address(master_pid, other, index).encode()
                                                        for other in others])
        self._outboxes = [FrameOutbox() if other != index else None for other in range(workers)]  # by owner
        self._queued = False  # a frame was packed since the last flush()
        self._full: list[tuple[int, bytes, int]] = []  # (owner, batch, frames) of this turn that filled an outbox
        self._waiting: dict[int, collections.deque[tuple[bytes, int]]] = {}  # (batch, frames) by owner, its queue full
        self._waiting_bytes: dict[int, int] = {}
        self.handed_off = 0
        self._send_dropped = 0

    @property
    def received(self) -> int:
        return self._inbox.received

    @property
    def dropped(self) -> int:
        """Frames lost: the owner's socket was full or unbound, or a frame came from elsewhere or did not unpack."""
        return self._send_dropped + self._inbox.dropped

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
        self._pack(owner, MESSAGE, data, source)

    def write(self, holder: int, data: bytes, peer: Address) -> None:
        """Queue bytes for the worker holding the connection of `peer` (IP, port, connection
        id) to write on it, sent by the next flush()."""
        self._pack(holder, WRITE, data, peer)

    def _pack(self, owner: int, kind: int, data: bytes, address: Address) -> None:
        outbox = self._outboxes[owner]
        if not outbox.add(kind, data, address):  # longer than a frame can be
            self._send_dropped += 1
            return
        self._queued = True
        if outbox.full():  # the rest of the turn's frames for this owner go in the next datagram
            frames = outbox.frames
            self._full.append((owner, outbox.take(), frames))

    def flush(self) -> None:
        """Send what send() and write() queued, each owner's frames in as few datagrams as fit."""
        if not self._queued:
            return
        self._queued = False
        if self._full:
            full, self._full = self._full, []
            for owner, batch, frames in full:
                self._send_batch(owner, batch, frames)
        for owner in range(self.workers):
            outbox = self._outboxes[owner]
            if outbox is not None and outbox.frames:
                self._send_outbox(owner, outbox)

    def _send_outbox(self, owner: int, outbox: FrameOutbox) -> None:
        """The turn's last batch for `owner`, sent from the outbox's buffer, or as _send_batch() would."""
        frames = outbox.frames
        if self._waiting.get(owner) or owner not in self._connected:  # it waits, is connected first, or is lost
            self._send_batch(owner, outbox.take(), frames)
            return
        error = outbox.send(self._sender_fds[owner])
        if error == 0:
            self.handed_off += frames
        elif error == errno.EAGAIN:  # its queue is full: it is busy, not gone
            self._wait(owner, outbox.take(), frames)
        else:  # gone
            outbox.take()
            self._send_dropped += frames

    def _connect(self, owner: int) -> bool:
        """The sender to `owner` connected to it, on first use; False while it is not bound (not started yet, or gone)."""
        if owner in self._connected:
            return True
        try:
            self._senders[owner].connect(handoff_address(self._master_pid, owner))
        except OSError:
            return False
        self._connected.add(owner)
        return True

    def _send_batch(self, owner: int, batch: bytes, frames: int) -> None:
        """Send now, or wait behind what already waits for the owner (in order); a full queue
        makes it wait (waiting() / retry()), an owner that is not bound loses it, counted."""
        if self._waiting.get(owner):
            self._wait(owner, batch, frames)
            return
        if not self._connect(owner):
            self._send_dropped += frames
            return
        try:
            self._senders[owner].send(batch)
            self.handed_off += frames
        except BlockingIOError:  # its queue is full: it is busy, not gone
            self._wait(owner, batch, frames)
        except OSError:  # gone
            self._send_dropped += frames

    def _wait(self, owner: int, batch: bytes, frames: int) -> None:
        if self._waiting_bytes.get(owner, 0) + len(batch) > MAX_WAITING_BYTES:
            self._send_dropped += frames
            return
        self._waiting.setdefault(owner, collections.deque()).append((batch, frames))
        self._waiting_bytes[owner] = self._waiting_bytes.get(owner, 0) + len(batch)

    def waiting(self) -> list[tuple[int, int]]:
        """(owner, fd) of the owners whose queue was full: watch the fd for writability and
        call retry(owner) when it is writable."""
        if not self._waiting:  # the pump asks after every batch
            return []
        return [(owner, self._sender_fds[owner]) for owner in self._waiting]

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
                self._send_dropped += frames
            waiting.popleft()
            self._waiting_bytes[owner] -= len(batch)
        self._waiting.pop(owner, None)
        return True

    def receive(self, datagrams: int = MAX_QUEUED) -> tuple[list[tuple[bytes, Address]], list[tuple[bytes, Address]]]:
        """What up to `datagrams` batches hold: the messages to handle, with the source each
        came from, and the bytes to write on this worker's connections, with the peer each is
        to. The pump reads one batch per readable event (a sibling sends one per loop turn):
        reading on until the queue is empty cost a failing recvfrom on every wake-up, and a
        fuller queue just stays readable."""
        messages: list[tuple[bytes, Address]] = []
        writes: list[tuple[bytes, Address]] = []
        for _ in range(datagrams):
            if not self._inbox.receive(messages, writes):  # drained
                break
        return messages, writes

    def close(self) -> None:
        self.socket.close()
        for sender in self._senders.values():
            sender.close()


def _bound(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.setblocking(False)
    return sock
