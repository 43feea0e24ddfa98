"""HEP v3 capture end to end (issue 24 #5): a capture server on loopback receives every message
of a 100-call SIPp run through two workers, each call whole and in order, decoded with the
tests' own HEP v3 decoder (tests/hep3.py)."""

from tests.harness import LoopbackDestination, free_udp_port, wait_for
from tests.hep3 import decode

CAPTURE_ID = 2026
CALL = [("from caller", "INVITE"), ("to caller", "100"), ("to callee", "INVITE"), ("from callee", "180"),
        ("to caller", "180"), ("from callee", "200"), ("to caller", "200"), ("from caller", "ACK"),
        ("to callee", "ACK"), ("from caller", "BYE"), ("to callee", "BYE"), ("from callee", "200"),
        ("to caller", "200")]


def token(packet, fastds_port: int, callee_port: int) -> tuple[str, str]:
    """(which way, the method or status code) of one captured message."""
    line = packet.first_line
    what = line.split()[1] if line.startswith("SIP/2.0") else line.split()[0]
    if packet.destination_port == callee_port:
        return "to callee", what
    if packet.source_port == callee_port:
        return "from callee", what
    return ("to caller" if packet.source_port == fastds_port else "from caller"), what


def test_a_100_call_run_is_captured_whole_and_in_order(harness):
    server = LoopbackDestination()  # the capture server: keeps every datagram
    try:
        callee_port = free_udp_port()
        harness.add_destination(callee_port)
        harness.uas("uas.xml", callee_port)
        harness.start_fastds(hep_destination=f"udp:127.0.0.1:{server.port}", hep_capture_id=CAPTURE_ID)
        code, stats = harness.uac("uac.xml", 100, 50)
        assert code == 0 and stats["SuccessfulCall(C)"] == "100"

        def totals():
            return harness.api("GET", "/api/v1/stats")[1]["totals"]

        # the workers publish their counters each second: wait until they have counted every copy
        wait_for(lambda: (now := totals())["hep_sent"] == now["packets_in"] + now["packets_out"] >= 100 * 13
                 and len(server.received) == now["hep_sent"], 20, "every message's copy at the capture server")
        assert totals()["hep_lost"] == 0
    finally:
        server.stop()
    calls: dict[bytes, list] = {}
    for _, datagram in server.received:
        packet = decode(datagram)
        assert (packet.capture_id, packet.protocol_type, packet.family, packet.ip_protocol) == (CAPTURE_ID, 1, 2, 17)
        assert packet.source_ip == packet.destination_ip == "127.0.0.1"
        calls.setdefault(packet.correlation_id, []).append(packet)
    assert len(calls) == 100
    for call_id, packets in calls.items():
        assert all(call_id in p.payload for p in packets)
        seen, shown = set(), []
        for packet in packets:  # a retransmission (same bytes the same way) is captured too: shown once here
            key = (token(packet, harness.port, callee_port)[0], packet.payload)
            if key not in seen:
                seen.add(key)
                shown.append(token(packet, harness.port, callee_port))
        assert shown == CALL, call_id
        assert [p.at for p in packets] == sorted(p.at for p in packets)
