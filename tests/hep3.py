"""A HEP v3 decoder written from sipcapture's HEP3 specification (not from fastds/net/hep.py),
for the tests to read what fastds sent to a capture server."""

import dataclasses
import ipaddress
import struct


class NotHep3(ValueError):
    pass


@dataclasses.dataclass
class HepPacket:
    family: int = 0         # chunk 1: 2 IPv4, 10 IPv6
    ip_protocol: int = 0    # chunk 2: 17 UDP, 6 TCP
    source_ip: str = ""     # chunk 3 or 5
    destination_ip: str = ""  # chunk 4 or 6
    source_port: int = 0    # chunk 7
    destination_port: int = 0  # chunk 8
    seconds: int = 0        # chunk 9
    microseconds: int = 0   # chunk 10
    protocol_type: int = 0  # chunk 11: 1 SIP
    capture_id: int = 0     # chunk 12
    payload: bytes = b""    # chunk 15
    correlation_id: bytes = b""  # chunk 17
    chunk_types: list = dataclasses.field(default_factory=list)

    @property
    def first_line(self) -> str:
        return self.payload.split(b"\r\n", 1)[0].decode()

    @property
    def at(self) -> float:
        return self.seconds + self.microseconds / 1e6


def decode(packet: bytes) -> HepPacket:
    """One HEP v3 packet: "HEP3", u16 total length, then chunks of (u16 vendor, u16 type,
    u16 length including these 6 bytes, value), all in network byte order."""
    if len(packet) < 6 or packet[:4] != b"HEP3":
        raise NotHep3("no HEP3 magic")
    (total,) = struct.unpack("!H", packet[4:6])
    if total != len(packet):
        raise NotHep3(f"total length {total} but {len(packet)} bytes")
    found = HepPacket()
    at = 6
    while at < total:
        if at + 6 > total:
            raise NotHep3("a truncated chunk header")
        vendor, kind, length = struct.unpack("!HHH", packet[at:at + 6])
        if length < 6 or at + length > total:
            raise NotHep3(f"chunk {kind} has length {length}")
        value = packet[at + 6:at + length]
        at += length
        found.chunk_types.append(kind)
        if vendor != 0:
            continue
        if kind in (1, 2, 11):
            if len(value) != 1:
                raise NotHep3(f"chunk {kind} is not one byte")
            setattr(found, {1: "family", 2: "ip_protocol", 11: "protocol_type"}[kind], value[0])
        elif kind in (7, 8):
            setattr(found, "source_port" if kind == 7 else "destination_port", struct.unpack("!H", value)[0])
        elif kind in (9, 10, 12):
            setattr(found, {9: "seconds", 10: "microseconds", 12: "capture_id"}[kind], struct.unpack("!I", value)[0])
        elif kind in (3, 4, 5, 6):
            if len(value) != (4 if kind in (3, 4) else 16):
                raise NotHep3(f"address chunk {kind} has {len(value)} bytes")
            setattr(found, "source_ip" if kind in (3, 5) else "destination_ip", str(ipaddress.ip_address(value)))
        elif kind == 15:
            found.payload = value
        elif kind == 17:
            found.correlation_id = value
    return found
