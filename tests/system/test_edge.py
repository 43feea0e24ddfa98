"""The edge's defences on a running fastds (issue: edge security): trusted sources and the
address table, the flood limit, scanners, and failures confirmed by a probe.

Sources are loopback addresses other than 127.0.0.1 (all of 127/8 is local on Linux):
127.0.0.2 plays a stranger, 127.0.x.y a spray of them. Every check waits on what fastds
did (its counters, its API, its replies), never on a time bucket.
"""

import socket
import time

from fastds.sip import scan
from tests.harness import OptionsCallee, free_udp_port, wait_for

STRANGER = "127.0.0.2"


def options(to_port: int, user: str = "", call_id: str = "", user_agent: str = "edge-test") -> bytes:
    """An OPTIONS to fastds itself (no user) or, with a user, one fastds routes to a destination."""
    call_id = call_id or f"{time.monotonic_ns()}@edge"
    target = f"sip:{user + '@' if user else ''}127.0.0.1:{to_port}"
    return (f"OPTIONS {target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-{call_id[:12]};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:test@127.0.0.1>;tag=t1\r\nTo: <{target}>\r\nCall-ID: {call_id}\r\n"
            f"CSeq: 1 OPTIONS\r\nUser-Agent: {user_agent}\r\nContent-Length: 0\r\n\r\n").encode()


def client(ip: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ip, 0))
    sock.settimeout(0.5)
    return sock


def ask(harness, sock: socket.socket, data: bytes, attempts: int = 10):
    """Send `data` until its final response comes (SIP retransmits too); the response or None.
    Responses to other requests sent from the same socket are skipped."""
    call_id = scan(data).call_id
    for _ in range(attempts):
        sock.sendto(data, ("127.0.0.1", harness.port))
        try:
            while True:
                reply = scan(sock.recv(65535))
                if reply.call_id == call_id and reply.status_code >= 200:
                    return reply
        except TimeoutError:
            continue
    return None


def totals(harness):
    return harness.api("GET", "/api/v1/stats")[1]["totals"]


def counted(harness, name: str, at_least: int = 1):
    return wait_for(lambda: totals(harness)[name] >= at_least or None, 15, f"counter {name} >= {at_least}")


def test_a_stranger_gets_403_and_reaches_nothing_while_trusted_calls_and_callee_byes_pass(harness):
    port = free_udp_port()
    harness.add_destination(port)
    harness.uas("uas_hangs_up.xml", port)
    harness.start_fastds(trusted_sources="127.0.0.1/32")
    stranger = client(STRANGER)
    invite = options(harness.port, user="+15550100").replace(b"OPTIONS", b"INVITE")
    reply = ask(harness, stranger, invite)
    assert (reply.status_code, reply.reason) == (403, b"Forbidden (untrusted source)")
    counted(harness, "untrusted_rejected")
    assert totals(harness)["forwarded_to_destination"] == 0
    calls = 10
    code, stats = harness.uac("uac_callee_hangs_up.xml", calls)  # the callee's BYE comes back through fastds
    assert code == 0 and (int(stats["SuccessfulCall(C)"]), int(stats["FailedCall(C)"])) == (calls, 0)
    assert totals(harness)["untrusted_rejected"] == 1 and totals(harness)["in_dialog_refused"] == 0


def test_an_address_row_takes_effect_after_a_reload_and_scanners_are_dropped(harness):
    harness.add_destination(free_udp_port())
    harness.start_fastds(trusted_sources="127.0.0.3/32", untrusted_action="drop")
    stranger = client(STRANGER)
    assert ask(harness, stranger, options(harness.port), attempts=2) is None  # dropped: no answer
    counted(harness, "untrusted_dropped")
    status, added, _ = harness.api("POST", "/api/v1/addresses", {"ip": STRANGER, "context_info": "carrier-b"})
    assert status == 201 and added["applied"], added
    dump = harness.mi("address_dump")["result"]["Partitions"][0]["Destinations"]
    assert [(row["ip"], row["mask"], row["context_info"]) for row in dump] == [(STRANGER, "32", "carrier-b")]
    assert ask(harness, stranger, options(harness.port)).status_code == 200
    assert harness.mi("address_reload")["result"] == "OK"
    # a scanner is dropped silently, even from a trusted source; a normal User-Agent is answered
    assert ask(harness, stranger, options(harness.port, user_agent="friendly-scanner"), attempts=2) is None
    counted(harness, "scanner_dropped")
    assert ask(harness, stranger, options(harness.port, user_agent="Linphone/5.2")).status_code == 200
    status, removed, _ = harness.api("DELETE", f"/api/v1/addresses/{added['id']}")
    assert status == 200 and removed["applied"]
    assert ask(harness, stranger, options(harness.port), attempts=2) is None


def flood(harness, sock: socket.socket, count: int) -> None:
    """A bounded burst of OPTIONS to fastds, nothing read back."""
    for i in range(count):
        sock.sendto(options(harness.port, call_id=f"flood-{i}-{time.monotonic_ns()}"), ("127.0.0.1", harness.port))


def blocked_ips(harness):
    return [entry["ip"] for entry in harness.api("GET", "/api/v1/blocked")[1]["blocked"]]


def test_a_flooding_source_is_blocked_while_another_source_completes_calls_then_released(harness):
    port = free_udp_port()
    harness.add_destination(port)
    harness.uas("uas.xml", port)
    # FASTDS_PIKE_TRUSTED=1: the caller (127.0.0.1, also the callee's address) is limited too
    harness.start_fastds(pike_reqs=60, pike_window_ms=2000, pike_block_s=3, pike_trusted=1, workers=2)
    flooder = client(STRANGER)
    flood(harness, flooder, 300)
    wait_for(lambda: STRANGER in blocked_ips(harness) or None, 15, "the flooder listed as blocked")
    assert harness.mi("pike_list")["result"] == {"IPs": [STRANGER]}
    calls = 10  # INVITE, ACK, BYE each: 15 requests a second at 5 calls/s, half the limit
    code, stats = harness.uac("uac.xml", calls, rate=5)
    assert code == 0 and (int(stats["SuccessfulCall(C)"]), int(stats["FailedCall(C)"])) == (calls, 0)
    wait_for(lambda: not blocked_ips(harness) or None, 30, "the block to end")
    wait_for(lambda: harness.log_lines(f"flood limit released {STRANGER} after 3 s") or None, 10, "the release logged")
    assert len(harness.log_lines(f"flood limit blocks {STRANGER}")) == 1
    assert ask(harness, flooder, options(harness.port)).status_code == 200
    assert totals(harness)["pike_dropped"] > 0 and totals(harness)["pike_blocks"] == 1
    # blocked again, then released at once by MI pike_rm
    flood(harness, flooder, 300)
    wait_for(lambda: STRANGER in blocked_ips(harness) or None, 15, "the flooder blocked again")
    assert harness.mi("pike_rm", {"ip": STRANGER})["result"] == "OK"
    wait_for(lambda: not blocked_ips(harness) or None, 10, "pike_rm to release it")
    metrics = harness.api("GET", "/metrics")[1].decode()
    assert 'fastds_worker_pike_blocks_total{worker="0"}' in metrics


def test_a_spray_of_sources_cannot_grow_the_flood_table_beyond_its_bound(harness):
    harness.add_destination(free_udp_port())
    harness.start_fastds(pike_reqs=1000, pike_table_size=64)
    sources = 0
    for x in range(1, 3):
        for y in range(1, 251):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((f"127.0.{x}.{y}", 0))
            sock.sendto(options(harness.port), ("127.0.0.1", harness.port))
            sock.close()
            sources += 1
    counted(harness, "packets_in", sources // 2)
    wait_for(lambda: totals(harness)["replies_2xx"] >= sources * 0.9 or None, 15, "the spray answered")
    assert 0 < totals(harness)["pike_tracked"] <= 64


def destination_state(harness) -> str:
    return harness.api("GET", "/api/v1/sets")[1]["sets"][0]["destinations"][0]["state"]


def ignored_request_with_traffic_around(harness, sock: socket.socket) -> None:
    """A MESSAGE the callee ignores, while OPTIONS routed to it keep being answered."""
    message = options(harness.port, user="bob").replace(b"OPTIONS", b"MESSAGE")
    sock.sendto(message, ("127.0.0.1", harness.port))
    for _ in range(6):  # over the 1 s FR wait
        assert ask(harness, sock, options(harness.port, user="bob")).status_code == 200
        time.sleep(0.25)


def test_an_ignored_request_does_not_take_an_answering_callee_out_unless_confirmation_is_off(harness):
    callee = OptionsCallee()
    harness.add_destination(callee.port)
    harness.start_fastds(fr_timeout_ms=1000, probing_threshold=1)
    sock = client()
    ignored_request_with_traffic_around(harness, sock)
    wait_for(lambda: harness.log_lines("stays active") or None, 15, "the failure dismissed by a probe")
    counted(harness, "timeouts")
    assert destination_state(harness) == "active"
    # the same with FASTDS_CONFIRM_FAILURES=0: OpenSIPS's behaviour
    harness.close()
    harness.start_fastds(fr_timeout_ms=1000, probing_threshold=1, confirm_failures=0)
    ignored_request_with_traffic_around(harness, sock)
    wait_for(lambda: harness.log_lines("active -> probing (timeout (no final reply))") or None, 15,
             "the destination marked probing at once")
    callee.stop()


def test_a_callee_that_dies_is_marked_within_the_fr_timer_plus_one_probe_timeout(harness):
    callee = OptionsCallee()
    harness.add_destination(callee.port)
    harness.start_fastds(fr_timeout_ms=1000, probing_threshold=1)
    sock = client()
    assert ask(harness, sock, options(harness.port, user="bob")).status_code == 200  # it answers
    callee.silent = True
    died = time.monotonic()
    sock.sendto(options(harness.port, user="bob", call_id="afterdeath-1@edge"), ("127.0.0.1", harness.port))
    wait_for(lambda: destination_state(harness) == "probing" or None, 15, "the dead callee marked")
    elapsed = time.monotonic() - died
    assert elapsed < 1.0 + 1.0 + 3.0, elapsed  # FR 1 s + one probe timeout (the FR timer) + room for a busy box
    callee.stop()
