"""SIP over TLS from callers on a running fastds (issue 12): a throwaway CA (trustme), Python's
ssl as the caller, SIPp on UDP as the callee; the certificate reloads on SIGHUP."""

import signal
import socket
import ssl

import pytest
import trustme

from tests.harness import free_tcp_port, free_udp_port, wait_for
from tests.system.test_tcp import read_responses


@pytest.fixture
def tls_files(tmp_path):
    ca = trustme.CA()
    cert, key = tmp_path / "fastds.pem", tmp_path / "fastds.key"

    def issue(name: str) -> None:
        leaf = ca.issue_cert("127.0.0.1", common_name=name)
        leaf.private_key_pem.write_to_path(str(key))
        with open(cert, "wb") as out:
            for blob in leaf.cert_chain_pems:
                out.write(blob.bytes())

    issue("fastds-1")
    return ca, cert, key, issue


def start_with_tls(harness, cert, key):
    tls_port = free_tcp_port()
    callee = free_udp_port()
    harness.add_destination(callee)
    harness.uas("uas.xml", callee)
    harness.start_fastds(workers=2, sip_listen=f"udp:127.0.0.1:{harness.port},tls:127.0.0.1:{tls_port}",
                         tls_cert_file=cert, tls_key_file=key)
    return tls_port


def connect(ca, port: int) -> ssl.SSLSocket:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="127.0.0.1")


def request(method: bytes, ruri: bytes, port: int, n: int, cseq: int, extra: bytes = b"") -> bytes:
    return (b"%s %s SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:%d;branch=z9hG4bK-tls-%d-%d\r\nMax-Forwards: 70\r\n"
            b"From: <sip:alice@127.0.0.1>;tag=a%d\r\nTo: <sip:cust-%d@127.0.0.1>%s\r\nCall-ID: tls-%d@127.0.0.1\r\n"
            b"CSeq: %d %s\r\nContact: <sip:alice@127.0.0.1:%d;transport=tls>\r\nContent-Length: 0\r\n\r\n"
            % (method, ruri, port, n, cseq, n, n, extra, n, cseq, method, port))


def test_a_call_over_tls_completes_and_is_record_routed_for_tls(harness, tls_files):
    ca, cert, key, _ = tls_files
    tls_port = start_with_tls(harness, cert, key)
    with connect(ca, tls_port) as sock:
        port = sock.getsockname()[1]
        sock.sendall(request(b"INVITE", b"sip:cust-1@127.0.0.1", port, 1, 1))
        responses = read_responses(sock, 3)
        ok = next(r for r in responses if r.status_code == 200)
        udp_side, tls_side = ok.record_routes
        assert b";transport=tls" in tls_side and b"transport" not in udp_side
        contact = ok.header("Contact").strip(b"<>")
        to_tag = b";tag=" + ok.to_tag
        routes = b"\r\nRoute: " + tls_side + b", " + udp_side  # the caller's route set: reversed
        sock.sendall(request(b"ACK", contact, port, 1, 1, to_tag + routes))
        sock.sendall(request(b"BYE", contact, port, 1, 2, to_tag + routes))
        (bye_ok,) = read_responses(sock, 1)
        assert (bye_ok.status_code, bye_ok.cseq_method) == (200, b"BYE")


def test_the_certificate_reloads_on_sighup(harness, tls_files):
    ca, cert, key, issue = tls_files
    tls_port = start_with_tls(harness, cert, key)

    def subject() -> str:
        with connect(ca, tls_port) as sock:
            return dict(entry[0] for entry in sock.getpeercert()["subject"])["commonName"]

    assert subject() == "fastds-1"
    issue("fastds-2")
    harness.processes[-1].send_signal(signal.SIGHUP)
    wait_for(lambda: len(harness.log_lines("TLS certificate reloaded")) == 2, 10, "both workers to reload")
    assert {subject() for _ in range(6)} == {"fastds-2"}  # whichever worker accepts


def test_a_failed_handshake_gets_no_connection_and_is_counted(harness, tls_files):
    _, cert, key, _ = tls_files
    tls_port = start_with_tls(harness, cert, key)
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(trustme.CA(), tls_port)  # a client that trusts another CA
    with socket.create_connection(("127.0.0.1", tls_port), timeout=10) as plain:
        plain.sendall(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n\r\n")  # cleartext on the TLS port
        plain.settimeout(10)
        try:
            while plain.recv(65536):  # until fastds closes it (a TLS alert may come first)
                pass
        except ConnectionResetError:
            pass

    def failures():
        rows = harness.api("GET", "/api/v1/stats")[1]["workers"]
        return sum(row["tls_handshake_failures"] for row in rows) >= 2 and rows

    rows = wait_for(failures, 10, "both failed handshakes counted")
    assert sum(row["tls_handshake_failures"] for row in rows) == 2
    assert sum(row["tls_connections"] + row["tcp_accepted"] for row in rows) == 0
