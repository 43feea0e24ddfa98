"""Call-ID ownership on a running fastds with 2 workers (issue: sustained capacity).

SO_REUSEPORT gives all of one sender address's datagrams to one worker; ownership makes
every worker carry calls anyway, and makes a transaction's retransmissions, CANCEL and
ACK meet it whichever source port (so whichever worker) they come from.
"""

import socket

from fastds.sip import build_response, scan
from tests.harness import LoopbackDestination, free_udp_port, wait_for


def worker_rows(harness):
    return harness.api("GET", "/api/v1/stats")[1]["workers"]


def start_with_two_callees(harness):
    for port in (free_udp_port(), free_udp_port()):
        harness.add_destination(port)
        harness.uas("uas.xml", port)
    harness.start_fastds(workers=2)


def test_one_upstream_socket_is_carried_by_both_workers(harness):
    start_with_two_callees(harness)
    calls = 300
    code, stats = harness.uac("uac.xml", calls, rate=100)  # one socket: SIPp's default -t u1
    assert code == 0 and (int(stats["SuccessfulCall(C)"]), int(stats["FailedCall(C)"])) == (calls, 0)

    def forwarded():  # workers publish their counters every second
        rows = worker_rows(harness)
        return rows if sum(row["forwarded_to_destination"] for row in rows) >= calls else None  # the INVITEs

    rows = wait_for(forwarded, 10, "both workers' counters")
    shares = [row["forwarded_to_destination"] / calls for row in rows]
    assert all(0.35 <= share <= 0.65 for share in shares), shares
    assert sum(row["handoffs_out"] for row in rows) > 0 and sum(row["handoffs_dropped"] for row in rows) == 0


def ringing_callee():
    """A callee that answers every INVITE 180 and a CANCEL 200, then 487 to its INVITE."""
    invites = {}

    def answer(data, addr, sock):
        message = scan(data)
        if message.method == b"INVITE":
            invites[message.branch] = message
            sock.sendto(build_response(message, 180, to_tag=b"callee"), addr)
        elif message.method == b"CANCEL":
            sock.sendto(build_response(message, 200, to_tag=b"callee"), addr)
            sock.sendto(build_response(invites[message.branch], 487, to_tag=b"callee"), addr)

    return answer


def methods(destination):
    return [scan(data).method for _, data in destination.received]


def caller_request(method: bytes, fastds_port: int, via_port: int) -> bytes:
    return (b"%s sip:bob@127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-own-1;rport\r\n"
            b"Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=alice1\r\nTo: <sip:bob@127.0.0.1>\r\n"
            b"Call-ID: ownership-test@127.0.0.1\r\nCSeq: 1 %s\r\nContent-Length: 0\r\n\r\n"
            % (method, fastds_port, via_port, method))


def test_retransmissions_cancel_and_ack_from_other_ports_meet_their_transaction(harness):
    destination = LoopbackDestination(ringing_callee())
    harness.add_destination(destination.port)
    harness.start_fastds(workers=2, fr_inv_timeout_ms=60000)
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(19)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(10)
        first, *others = sockets
        target = ("127.0.0.1", harness.port)
        first.sendto(caller_request(b"INVITE", harness.port, first.getsockname()[1]), target)
        wait_for(lambda: b"INVITE" in methods(destination), 10, "the INVITE downstream")
        # 16 retransmissions, each from another source port: the kernel spreads them over
        # both workers; without ownership about half would open a second transaction
        for sock in others[:16]:
            sock.sendto(caller_request(b"INVITE", harness.port, first.getsockname()[1]), target)
        cancel_from = others[16]
        cancel_from.sendto(caller_request(b"CANCEL", harness.port, first.getsockname()[1]), target)
        assert scan(cancel_from.recv(65535)).status_code == 200  # to the CANCEL, where it came from
        final = None
        while final is None:  # the INVITE's responses go to where the INVITE came from
            response = scan(first.recv(65535))
            final = response if response.status_code >= 200 else None
        assert final.status_code == 487
        ack = caller_request(b"ACK", harness.port, first.getsockname()[1]).replace(
            b"To: <sip:bob@127.0.0.1>", b"To: <sip:bob@127.0.0.1>;tag=callee")
        others[17].sendto(ack, target)
        # every retransmission met the transaction (absorbed there, whichever worker read it)
        wait_for(lambda: sum(row["retransmissions_absorbed"] for row in worker_rows(harness)) >= 16, 10,
                 "the 16 retransmissions absorbed")
        wait_for(lambda: b"ACK" in methods(destination), 10, "fastds's ACK for the 487")
        branches = {scan(data).branch for _, data in destination.received if scan(data).method == b"INVITE"}
        assert len(branches) == 1, methods(destination)  # one transaction downstream
        assert methods(destination).count(b"CANCEL") == 1
        assert methods(destination).count(b"ACK") == 1  # fastds's own for the 487; the caller's was absorbed
        assert sum(row["handoffs_dropped"] + row["ack_dropped"] for row in worker_rows(harness)) == 0
    finally:
        for sock in sockets:
            sock.close()
        destination.stop()


def test_killing_a_worker_under_one_peers_load_loses_almost_no_call(harness):
    """kill -9 of a worker while one upstream socket sends: what comes for its Call-IDs waits in
    its sockets (the master holds them) until it is back, on the same private port; SIP
    retransmits the rest; the respawned worker starts clean."""
    import os
    import re
    import signal
    import time

    start_with_two_callees(harness)
    calls, recv_timeout_s = 1500, 15  # the harness's SIPp gives up on an answer after 15 s
    uac = harness.start_uac("uac.xml", calls, 150, 90, 50)  # one socket, 10 s of calls
    wait_for(lambda: sum(row["forwarded_to_destination"] for row in worker_rows(harness)) > 300, 30,
             "calls under way")
    pid = int(re.search(r"\[(\d+)\] INFO worker 0 listening", harness.log.read_text()).group(1))
    os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    wait_for(lambda: harness.log_lines("worker 0 respawned as pid"), 10, "worker 0 to be respawned")
    respawn_s = time.time() - killed_at  # an upper bound: when this test saw the line
    assert uac.wait(120) in (0, 1)
    stats = uac.stats()
    ok, failed = int(stats["SuccessfulCall(C)"]), int(stats["FailedCall(C)"])
    periods = uac.periods()
    at_kill = min(periods, key=lambda row: abs(float(row["at"]) - killed_at))
    in_progress = int(at_kill["CurrentCall"])
    failures = [(round(float(row["at"]) - killed_at, 1), int(row["FailedCall(P)"]),
                 {name[6:-3]: row[name] for name in row if name.startswith("Failed") and name.endswith("(P)")
                  and name != "FailedCall(P)" and row[name] != "0"})
                for row in periods if row["FailedCall(P)"] != "0"]
    figures = (f"{ok} ok and {failed} failed of {calls}; worker 0 respawned within {respawn_s:.1f} s of the kill; "
               f"{in_progress} calls in progress at the kill; failures as (s after the kill, calls, why): {failures}")
    assert ok + failed == calls, figures
    # what fastds controls: only calls in progress when the worker died may be lost, and nothing after it is back
    # (SIPp notices a lost answer up to recv_timeout_s later); how many were in progress is the machine's speed
    assert failed <= max(in_progress, int(0.005 * calls)), figures
    assert all(after <= respawn_s + recv_timeout_s + 5 for after, _, _ in failures), figures
    assert "Traceback" not in harness.log.read_text()
    ports = re.findall(r"worker 0 listening on \S+ \(private port (\d+)\)", harness.log.read_text())
    assert len(ports) == 2 and ports[0] == ports[1]  # the Vias of its forwarded requests still lead to it
