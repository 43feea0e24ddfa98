"""SIP over TCP on a running fastds (issue 12, first part): callers on TCP connections, callees
on UDP, 2 workers. A connection is held by the worker that accepted it; its messages are
handled by their Call-ID's owner and the answers written back on the connection by its holder."""

import socket
import time

from fastds.sip import scan
from tests.harness import free_tcp_port, free_udp_port, wait_for


def start_with_tcp(harness, **settings):
    tcp_port = free_tcp_port()
    for port in (free_udp_port(), free_udp_port()):
        harness.add_destination(port)
        harness.uas("uas.xml", port)
    harness.start_fastds(workers=2, sip_listen=f"udp:127.0.0.1:{harness.port},tcp:127.0.0.1:{tcp_port}", **settings)
    return tcp_port


def worker_rows(harness):
    return harness.api("GET", "/api/v1/stats")[1]["workers"]


def test_calls_from_one_tcp_connection_complete_through_both_workers_to_udp_callees(harness):
    tcp_port = start_with_tcp(harness)
    calls = 200
    code, stats = harness.uac("uac.xml", calls, 50, 60, "-t", "t1", to_port=tcp_port)  # one connection
    assert code == 0 and (int(stats["SuccessfulCall(C)"]), int(stats["FailedCall(C)"])) == (calls, 0)

    def counted():  # workers publish their counters every second
        rows = worker_rows(harness)
        return rows if sum(row["forwarded_to_destination"] for row in rows) >= calls else None  # the INVITEs

    rows = wait_for(counted, 10, "both workers' counters")
    assert all(row["forwarded_to_destination"] > 0.25 * calls for row in rows), rows  # Call-ID owners, both
    assert sum(row["tcp_accepted"] for row in rows) == 1 and sum(row["handoffs_out"] for row in rows) > 0
    assert sum(row["tcp_writes_lost"] + row["tcp_framing_errors"] + row["handoffs_dropped"] for row in rows) == 0


def test_calls_each_on_its_own_tcp_connection_complete(harness):
    tcp_port = start_with_tcp(harness)
    calls = 100
    code, stats = harness.uac("uac.xml", calls, 25, 60, "-t", "tn", "-max_socket", "1000",
                              to_port=tcp_port)  # a connection per call
    assert code == 0 and (int(stats["SuccessfulCall(C)"]), int(stats["FailedCall(C)"])) == (calls, 0)

    def accepted():
        rows = worker_rows(harness)
        return rows if sum(row["tcp_accepted"] for row in rows) >= calls else None

    rows = wait_for(accepted, 10, "every connection counted")
    assert all(row["tcp_accepted"] > 0 for row in rows)  # the kernel spreads new connections over the workers
    assert sum(row["tcp_writes_lost"] + row["tcp_framing_errors"] for row in rows) == 0


def invite(n: int, contact_port: int) -> bytes:
    return (b"INVITE sip:cust-%d@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:%d;branch=z9hG4bK-tcp-%d\r\n"
            b"Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a%d\r\nTo: <sip:cust-%d@127.0.0.1>\r\n"
            b"Call-ID: tcp-%d@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.1:%d;transport=tcp>\r\n"
            b"Content-Length: 0\r\n\r\n" % (n, contact_port, n, n, n, n, contact_port))


def read_responses(sock: socket.socket, wanted: int, timeout: float = 10) -> list:
    """Whole responses from a TCP socket (they carry Content-Length: 0 here)."""
    data, found, deadline = b"", [], time.monotonic() + timeout
    while len(found) < wanted and time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        while b"\r\n\r\n" in data:
            head, data = data.split(b"\r\n\r\n", 1)
            found.append(scan(head + b"\r\n\r\n"))
    return found


def test_framing_a_split_message_pings_and_a_missing_content_length(harness):
    tcp_port = start_with_tcp(harness)
    with socket.create_connection(("127.0.0.1", tcp_port), timeout=10) as sock:
        port = sock.getsockname()[1]
        data = b"\r\n\r\n" + invite(1, port)  # a ping, then an INVITE in three segments
        for part in (data[:7], data[7:120], data[120:]):
            sock.sendall(part)
            time.sleep(0.05)
        assert sock.recv(2) == b"\r\n"  # the pong
        codes = [r.status_code for r in read_responses(sock, 3)]
        assert codes[:1] == [100] and 200 in codes, codes
        sock.sendall(invite(2, port).replace(b"Content-Length: 0\r\n", b""))
        (refused,) = read_responses(sock, 1)
        assert refused.status_code == 400 and b"Content-Length" in refused.reason
        sock.settimeout(10)
        assert sock.recv(1) == b""  # and the connection is closed
    rows = wait_for(lambda: (rows := worker_rows(harness)) and sum(r["tcp_framing_errors"] for r in rows) and rows,
                    10, "the framing error counted")
    assert sum(r["tcp_framing_errors"] for r in rows) == 1


def test_a_peer_that_does_not_read_is_closed_not_buffered_for(harness):
    tcp_port = start_with_tcp(harness, tcp_max_unsent_bytes=65536)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # little room before fastds must hold answers
        sock.connect(("127.0.0.1", tcp_port))
        options = (b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:%d;branch=z9hG4bK-o%%d\r\n"
                   b"Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:127.0.0.1>\r\n"
                   b"Call-ID: slow-%%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n" % sock.getsockname()[1])
        sock.settimeout(30)
        try:
            for n in range(0, 200_000, 100):  # answered 200 by fastds itself; never read: bounded
                sock.sendall(b"".join(options % (i, i) for i in range(n, n + 100)))
        except (ConnectionResetError, BrokenPipeError):
            pass  # fastds closed it

    def counted():
        rows = worker_rows(harness)
        return sum(row["tcp_slow_readers"] for row in rows) and rows

    rows = wait_for(counted, 20, "the slow reader closed")
    assert sum(row["tcp_slow_readers"] for row in rows) == 1 and sum(row["tcp_connections"] for row in rows) == 0


def test_a_slow_trickle_is_cut_off(harness):
    tcp_port = start_with_tcp(harness, tcp_message_timeout_s=1)
    with socket.create_connection(("127.0.0.1", tcp_port), timeout=10) as sock:
        sock.sendall(invite(3, sock.getsockname()[1])[:40])  # and never the rest
        sock.settimeout(15)
        started = time.monotonic()
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except ConnectionResetError:  # fastds aborts a connection it gives up on
            pass
        assert time.monotonic() - started < 12  # the 1 s deadline, found by the once-a-second sweep
        assert reply == b""  # nothing whole enough to answer: just closed
