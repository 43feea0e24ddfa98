"""TLS towards destinations on a running fastds (issue 12): a callee made of Python's ssl with a
certificate from a throwaway CA (trustme; Debian's SIPp has no TLS), SIPp callers on UDP. A
destination whose certificate fastds cannot accept -- another CA, another name -- gets nothing,
and its calls fail over at once; one whose certificate shows its tls_name= attribute is used."""

import socket
import ssl
import threading

import trustme

from fastds.sip import build_response, scan
from fastds.sip.stream import StreamFramer
from tests.harness import free_tcp_port, free_udp_port, wait_for
from tests.system.test_cluster import states
from tests.system.test_tcp_destinations import assert_calls, counted


class TlsCallee:
    """Accepts TLS connections and answers every request but ACK 200 (with a To tag, a Contact
    and the Record-Route); keeps what it read."""

    def __init__(self, ca: trustme.CA, name: str, tmp_path):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(name).configure_cert(context)
        self.port = free_tcp_port()
        self.received: list = []
        self.handshakes_failed = 0
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._context = context
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                plain, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(plain,), daemon=True).start()

    def _serve(self, plain: socket.socket) -> None:
        try:
            conn = self._context.wrap_socket(plain, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshakes_failed += 1
            return
        framer = StreamFramer(65535, 16384, 30)
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                for message in framer.feed(data, 0.0).messages:
                    request = scan(message)
                    self.received.append(request)
                    if request.method != b"ACK":
                        conn.sendall(build_response(request, 200, to_tag=b"tls-callee", extra_headers=self._dialog(request)))

    def _dialog(self, request) -> bytes:
        """A 200's Contact and Record-Route: in-dialog requests come back here over TLS."""
        contact = b"Contact: <sip:callee@127.0.0.1:%d;transport=tls>\r\n" % self.port
        return contact + b"".join(b"Record-Route: %s\r\n" % value for value in request.record_routes)

    def requests(self, method: bytes) -> list:
        return [request for request in self.received if request.method == method]

    def close(self) -> None:
        self._closing = True
        self._listener.close()


def start(harness, tmp_path, ca: trustme.CA, callee: TlsCallee, attrs: str = "", probing_mode: int = 0) -> None:
    """The TLS callee first (priority), a SIPp callee on UDP to fail over to; fastds with a TLS
    listener (a TLS destination's dialog is record-routed there) trusting `ca`; probing_mode 1:
    active destinations are probed too (every second)."""
    harness.add_destination(callee.port, priority=10, uri=f"sips:127.0.0.1:{callee.port}", attrs=attrs)
    udp_callee = free_udp_port()
    harness.add_destination(udp_callee)
    harness.uas("uas.xml", udp_callee)
    cert, key, ca_file = tmp_path / "fastds.pem", tmp_path / "fastds.key", tmp_path / "ca.pem"
    leaf = ca.issue_cert("127.0.0.1")
    leaf.private_key_pem.write_to_path(str(key))
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    ca.cert_pem.write_to_path(str(ca_file))
    harness.start_fastds(workers=2, sip_listen=f"udp:127.0.0.1:{harness.port},tls:127.0.0.1:{free_tcp_port()}",
                         tls_cert_file=cert, tls_key_file=key, tls_ca_file=ca_file, default_alg=8,
                         probing_threshold=1, probing_mode=probing_mode, ping_interval_s=1, fr_timeout_ms=60000)


def test_calls_go_over_tls_to_a_destination_whose_certificate_shows_its_tls_name(harness, tmp_path):
    ca = trustme.CA()
    callee = TlsCallee(ca, "callee.example", tmp_path)
    start(harness, tmp_path, ca, callee, attrs="tls_name=callee.example", probing_mode=1)
    calls = 10
    try:
        assert_calls(*harness.uac("uac.xml", calls, 10, 30), calls)
        invites = callee.requests(b"INVITE")
        assert len(invites) == calls and all(invite.vias[0].startswith(b"SIP/2.0/TLS ") for invite in invites)
        assert len(callee.requests(b"BYE")) == calls  # in-dialog requests over TLS too
        wait_for(lambda: callee.requests(b"OPTIONS"), 20, "a probe over TLS")
        assert states(harness)[f"sips:127.0.0.1:{callee.port}"] == "active"
        assert sum(row["tcp_connect_failures"] for row in counted(harness, "forwarded_to_destination", calls)) == 0
    finally:
        callee.close()


def test_a_destination_whose_certificate_is_not_accepted_gets_nothing_and_is_reported(harness, tmp_path):
    ca = trustme.CA()
    wrong_name = TlsCallee(ca, "other.example", tmp_path)  # fastds checks for 127.0.0.1: the URI's host
    start(harness, tmp_path, ca, wrong_name)
    calls = 10
    try:
        assert_calls(*harness.uac("uac.xml", calls, 10, 30), calls)  # over UDP, failed over at once
        assert wrong_name.received == [] and wrong_name.handshakes_failed >= 1
        assert sum(row["connection_failovers"] for row in counted(harness, "tls_handshake_failures", 1)) >= 1
        wait_for(lambda: states(harness)[f"sips:127.0.0.1:{wrong_name.port}"] == "probing", 10,
                 "the destination with a refused certificate marked probing")
        assert any("certificate not accepted" in line for line in harness.log_lines("tls connect to"))
    finally:
        wrong_name.close()


def test_a_destination_with_a_certificate_from_another_ca_gets_nothing(harness, tmp_path):
    other_ca = TlsCallee(trustme.CA(), "127.0.0.1", tmp_path)
    start(harness, tmp_path, trustme.CA(), other_ca)
    calls = 5
    try:
        assert_calls(*harness.uac("uac.xml", calls, 10, 30), calls)
        assert other_ca.received == []
        counted(harness, "tls_handshake_failures", 1)
    finally:
        other_ca.close()
