"""E_DISPATCHER_STATUS end to end: an MI event_subscribe'd UDP listener and a webhook that fails
twice both get a destination going down and coming back, once each and in order (issue 24 #3)."""

import http.server
import socket
import threading

import orjson

from tests.harness import free_udp_port, wait_for


class FlakyWebhook:
    """An HTTP receiver on loopback that answers 500 to its first `failures` POSTs, then 200,
    keeping the bodies it accepted."""

    def __init__(self, failures: int):
        self.accepted: list[dict] = []
        self.attempts = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.attempts += 1
                ok = receiver.attempts > failures
                if ok:
                    receiver.accepted.append(orjson.loads(body))
                self.send_response(200 if ok else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fastds-events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_destination_down_and_back_reaches_a_subscriber_and_a_flaky_webhook_once_each(harness):
    callee_port = free_udp_port()
    harness.add_destination(callee_port)
    uri = f"sip:127.0.0.1:{callee_port}"
    callee = harness.uas("uas.xml", callee_port)
    webhook = FlakyWebhook(failures=2)
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(30)
    try:
        harness.start_fastds(probing_mode=1, probing_threshold=1, ping_interval_s=1, fr_timeout_ms=1000,
                             event_webhooks=webhook.url)
        socket_text = f"udp:127.0.0.1:{listener.getsockname()[1]}"
        assert harness.mi("event_subscribe", ["E_DISPATCHER_STATUS", socket_text, 120])["result"] == "OK"
        assert harness.mi("subscribers_list")["result"] == {"Events": [{
            "name": "E_DISPATCHER_STATUS", "id": 0, "Subscribers": [{"socket": socket_text, "expire": 120}]}]}
        callee.stop()  # its probes time out: active -> probing
        down = orjson.loads(listener.recv(65535))
        callee = harness.uas("uas.xml", callee_port)  # back: probing -> active
        up = orjson.loads(listener.recv(65535))
        assert [down["params"]["status"], up["params"]["status"]] == ["inactive", "active"]
        assert down["method"] == "E_DISPATCHER_STATUS" and down["params"]["address"] == uri
        assert down["params"]["group"] == 1 and "id" not in down
        wait_for(lambda: len(webhook.accepted) == 2 or None, 30, "both events through the flaky webhook")
        assert webhook.accepted == [down, up] and webhook.attempts == 4  # each once, in order, after 2 failures
        stats = harness.mi("get_statistics", {"statistics": ["events:"]})["result"]
        assert stats == {"events:delivered": 4, "events:failed": 2, "events:dropped": 0}
        listener.settimeout(2)
        assert harness.mi("event_subscribe", ["E_DISPATCHER_STATUS", socket_text, 0])["result"] == "OK"
        assert harness.mi("subscribers_list")["result"] == {"Events": []}
    finally:
        listener.close()
        webhook.close()
