"""HEP v3 capture: a copy of every SIP message a worker receives and sends, for Homer.

Owns encoding a message as a HEP v3 packet (sipcapture's HEP3 specification: "HEP3", the
total length, then generic chunks of vendor 0 -- IP family 1, IP protocol 2, IPv4 or IPv6
addresses 3/4 or 5/6, ports 7/8, timestamp seconds 9 and microseconds 10, protocol type 11
(1: SIP), capture agent id 12, payload 15, correlation id 17: the Call-ID), choosing the
calls captured (FASTDS_HEP_SAMPLING, by a hash of the Call-ID so a call is whole or absent),
and sending what one loop turn captured in one sendmmsg from a socket of its own. The
pump calls it only when FASTDS_HEP_DESTINATION is set: off, capture costs one compare per
message. TCP and TLS messages are captured as IP protocol 6 with the listener's port as
fastds's own; what could not be sent (the kernel's buffer full) is counted, never retried.
"""

from __future__ import annotations

import socket
import struct
import time

import xxhash

from fastds._ext.sipscan import call_id_of
from fastds._ext.udpio import DatagramIO
from fastds.dispatch.peers import on_stream

HEADER = struct.Struct("!4sH")
CHUNK = struct.Struct("!HHH")  # vendor, type, length (the chunk's own 6 bytes included)
U8, U16 = struct.Struct("!HHHB"), struct.Struct("!HHHH")
FAMILY, PROTOCOL, SRC4, DST4, SRC6, DST6, SRC_PORT, DST_PORT = 1, 2, 3, 4, 5, 6, 7, 8
SECONDS, MICROSECONDS, PROTOCOL_TYPE, CAPTURE_ID, PAYLOAD, CORRELATION = 9, 10, 11, 12, 15, 17
PROTOCOL_SIP = 1
BATCH = 64  # datagrams per sendmmsg
MAX_HEP_BYTES = 65507  # one UDP datagram


# protocol, seconds, microseconds, protocol type, capture id: one pack per message
FIXED = struct.Struct("!HHHB HHHI HHHI HHHB HHHI")
ADDRESSES_KEPT = 4096  # (source, destination) pairs whose address chunks are kept packed


def address_chunks(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """The family, address and port chunks of a message from `source` to `destination`."""
    if ":" in source[0] or ":" in destination[0]:
        family, src_type, dst_type = socket.AF_INET6, SRC6, DST6
        src, dst = (socket.inet_pton(socket.AF_INET6, _v6(ip)) for ip in (source[0], destination[0]))
    else:
        family, src_type, dst_type = socket.AF_INET, SRC4, DST4
        src, dst = socket.inet_aton(source[0]), socket.inet_aton(destination[0])
    return b"".join((U8.pack(0, FAMILY, 7, 2 if family == socket.AF_INET else 10),
                     CHUNK.pack(0, src_type, 6 + len(src)), src, CHUNK.pack(0, dst_type, 6 + len(dst)), dst,
                     U16.pack(0, SRC_PORT, 8, source[1]), U16.pack(0, DST_PORT, 8, destination[1])))


def _v6(ip: str) -> str:
    """An IPv4 peer seen on an IPv6 socket is written as its mapped IPv6 address."""
    return ip if ":" in ip else "::ffff:" + ip


def encode(payload: bytes, addresses: bytes, tcp: bool, at: float, capture_id: int, correlation: bytes | None) -> bytes:
    """One HEP v3 packet of `payload`, its address_chunks() given, captured at Unix time `at`."""
    seconds = int(at)
    fixed = FIXED.pack(0, PROTOCOL, 7, 6 if tcp else 17, 0, SECONDS, 10, seconds,
                       0, MICROSECONDS, 10, int((at - seconds) * 1e6), 0, PROTOCOL_TYPE, 7, PROTOCOL_SIP,
                       0, CAPTURE_ID, 10, capture_id)
    correlated = CHUNK.pack(0, CORRELATION, 6 + len(correlation)) + correlation if correlation else b""
    length = HEADER.size + len(addresses) + FIXED.size + len(correlated) + 6 + len(payload)
    return b"".join((HEADER.pack(b"HEP3", length), addresses, fixed, correlated,
                     CHUNK.pack(0, PAYLOAD, 6 + len(payload)), payload))


def sampled(call_id: bytes | None, ratio: float) -> bool:
    """Whether the call of `call_id` is captured: the same answer for each of its messages."""
    if ratio >= 1.0:
        return True
    return call_id is not None and xxhash.xxh32_intdigest(call_id) < ratio * 4294967296.0


class HepCapture:
    """A worker's capture: `received()` / `sent()` per message, `flush()` once per loop turn."""

    def __init__(self, destination: tuple[str, int], capture_id: int, ratio: float,
                 local: dict[str, tuple[str, int]]):
        """local: fastds's own address per socket kind -- "public" and "private" (UDP), "tcp", "tls"."""
        family = socket.AF_INET6 if ":" in destination[0] else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._io = DatagramIO(self._socket.fileno(), family, BATCH, 1)  # sends only: no receive buffers
        self._destination = destination
        self._capture_id = capture_id
        self._ratio = ratio
        self._local = local
        self._waiting: list[tuple[bytes, tuple[str, int]]] = []
        self._addresses: dict[tuple, bytes] = {}  # (source, destination) -> their packed chunks
        self.sent_packets = 0
        self.lost = 0  # not sent: too big for a datagram, or the kernel's buffer was full

    def received(self, data: bytes, peer: tuple, private: bool) -> None:
        self._capture(data, peer, self._local_for(peer, private), True)

    def sent(self, data: bytes, peer: tuple, upstream: bool) -> None:
        self._capture(data, peer, self._local_for(peer, not upstream), False)

    def _local_for(self, peer: tuple, private: bool) -> tuple[str, int]:
        if on_stream(peer):
            return self._local.get("tls" if peer[2] & 1 else "tcp") or self._local["public"]
        return self._local["private" if private else "public"]

    def _capture(self, data: bytes, peer: tuple, local: tuple[str, int], inbound: bool) -> None:
        call_id = call_id_of(data)
        if not sampled(call_id, self._ratio):
            return
        key = (peer[0], peer[1], local, inbound)
        addresses = self._addresses.get(key)
        if addresses is None:
            remote = (peer[0], peer[1])
            addresses = address_chunks(remote, local) if inbound else address_chunks(local, remote)
            if len(self._addresses) >= ADDRESSES_KEPT:
                self._addresses.clear()
            self._addresses[key] = addresses
        packet = encode(data, addresses, on_stream(peer), time.time(), self._capture_id, call_id)
        if len(packet) > MAX_HEP_BYTES:
            self.lost += 1
            return
        self._waiting.append((packet, self._destination))

    def flush(self) -> None:
        if not self._waiting:
            return
        waiting, self._waiting = self._waiting, []
        sent = self._io.send(waiting)  # sendmmsg, BATCH at a time
        self.sent_packets += sent
        self.lost += len(waiting) - sent

    def close(self) -> None:
        self._socket.close()
