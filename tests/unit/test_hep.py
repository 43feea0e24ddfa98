"""HEP v3 packets of fastds/net/hep.py read back with the tests' own decoder (tests/hep3.py),
and the Call-ID sampling that keeps a call whole."""

import pytest

from fastds.net.hep import address_chunks, encode, sampled
from tests.hep3 import NotHep3, decode

INVITE = (b"INVITE sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
          b"Call-ID: abc@host\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")


def test_an_ipv4_udp_message_has_every_chunk_the_spec_names():
    packet = decode(encode(INVITE, address_chunks(("127.0.0.1", 5070), ("127.0.0.2", 5060)), False, 1765000000.25, 2001,
                           b"abc@host"))
    assert (packet.family, packet.ip_protocol, packet.protocol_type, packet.capture_id) == (2, 17, 1, 2001)
    assert (packet.source_ip, packet.source_port, packet.destination_ip, packet.destination_port) == (
        "127.0.0.1", 5070, "127.0.0.2", 5060)
    assert (packet.seconds, packet.microseconds) == (1765000000, 250000)
    assert packet.payload == INVITE and packet.correlation_id == b"abc@host"
    assert sorted(packet.chunk_types) == [1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 15, 17]


def test_ipv6_and_tcp_and_an_ipv4_peer_on_an_ipv6_socket():
    packet = decode(encode(INVITE, address_chunks(("::1", 5061), ("127.0.0.1", 5060)), True, 1.0, 7, None))
    assert (packet.family, packet.ip_protocol) == (10, 6)
    assert (packet.source_ip, packet.destination_ip) == ("::1", "::ffff:7f00:1")
    assert 17 not in packet.chunk_types  # no Call-ID, no correlation chunk


def test_the_decoder_refuses_what_is_not_hep3():
    good = encode(INVITE, address_chunks(("127.0.0.1", 1), ("127.0.0.1", 2)), False, 0.0, 1, None)
    for bad in (b"HEP2" + good[4:], good[:-1], good[:6] + b"\x00\x00\x00\x0f\x00\x02"):
        with pytest.raises(NotHep3):
            decode(bad)


def test_sampling_keeps_or_drops_a_whole_call_and_takes_about_the_ratio():
    call_ids = [b"call-%d@test" % n for n in range(10000)]
    assert all(sampled(call_id, 1.0) for call_id in call_ids) and sampled(None, 1.0)
    kept = [call_id for call_id in call_ids if sampled(call_id, 0.1)]
    assert 800 < len(kept) < 1200
    assert all(sampled(call_id, 0.1) for call_id in kept)  # the same answer each time
    assert not sampled(None, 0.5)  # no Call-ID: only kept when everything is
