"""The worker's message pump on a real uvloop over loopback: start-up order and failing handlers."""

import asyncio
import ipaddress
import logging
import socket

import uvloop

from fastds.dispatch.proxy import Proxy, ProxyConfig
from fastds.dispatch.routes import Router
from fastds.dispatch.rules import SelectionRule
from fastds.dispatch.selector import Selector
from fastds.dispatch.sets import build_sets
from fastds.net.bind import bind_udp
from fastds.net.egress import EgressPolicy
from fastds.net.pump import MessagePump, sent_by
from fastds.sip import BranchFactory, RecordRoute, scan

SECRET = b"unit-test-secret"
LOOPBACK = EgressPolicy([ipaddress.ip_network("127.0.0.0/8")])


def invite(caller_port: int) -> bytes:
    return (b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-early;rport\r\n"
            b"Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\n"
            b"Call-ID: early@test\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n" % caller_port)


def receive(sock: socket.socket, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    return sock.recv(65535)


def test_a_datagram_waiting_before_start_is_handled_once_both_sockets_are_attached():
    """The public socket may deliver at once (a respawned worker's, under load): what the
    datagram causes goes out on the private socket too, never a 'NoneType' traceback."""
    callee = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    callee.bind(("127.0.0.1", 0))
    caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    caller.bind(("127.0.0.1", 0))
    public = bind_udp("127.0.0.1", 0, reuse_port=True)
    private = bind_udp("127.0.0.1", 0, reuse_port=False)
    sets, _ = build_sets([{"id": 1, "setid": 1, "destination": f"sip:127.0.0.1:{callee.getsockname()[1]}"}])
    proxy = Proxy(ProxyConfig(private_sent_by=sent_by(private, "127.0.0.1")), Selector(sets),
                  Router([], SelectionRule.parse(1, 0, "f")), BranchFactory(SECRET, "unit"),
                  RecordRoute(SECRET, sent_by(public, "127.0.0.1")))
    caller.sendto(invite(caller.getsockname()[1]), public.getsockname())

    async def main():
        endpoint = MessagePump(asyncio.get_running_loop(), proxy, LOOPBACK, lambda report: None)
        await endpoint.start(public, private)
        loop = asyncio.get_running_loop()
        trying = await loop.run_in_executor(None, receive, caller)
        forwarded = await loop.run_in_executor(None, receive, callee)
        endpoint.close()
        return endpoint, trying, forwarded

    endpoint, trying, forwarded = uvloop.run(main())
    assert scan(trying).status_code == 100 and scan(forwarded).method == b"INVITE"
    assert (endpoint.handler_errors, endpoint.send_errors) == (0, 0)
    for sock in (callee, caller):
        sock.close()


class ExplodingSelector:
    """A proxy core whose handling of an initial request fails (a bug, not a bad message)."""

    def select(self, message, rule, source_ip):
        raise RuntimeError("boom")


def test_a_failing_handler_is_counted_and_logged_in_one_line_without_a_traceback(caplog):
    public = bind_udp("127.0.0.1", 0, reuse_port=True)
    private = bind_udp("127.0.0.1", 0, reuse_port=False)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    sets, _ = build_sets([{"id": 1, "setid": 1, "destination": "sip:127.0.0.1:5099"}])
    proxy = Proxy(ProxyConfig(private_sent_by=sent_by(private, "127.0.0.1")), ExplodingSelector(),
                  Router([], SelectionRule.parse(1, 0, "f")), BranchFactory(SECRET, "unit"),
                  RecordRoute(SECRET, sent_by(public, "127.0.0.1")))

    async def main():
        endpoint = MessagePump(asyncio.get_running_loop(), proxy, LOOPBACK, lambda report: None)
        await endpoint.start(public, private)
        for _ in range(2):
            sender.sendto(invite(5070), public.getsockname())
        for _ in range(200):
            if endpoint.handler_errors == 2:
                break
            await asyncio.sleep(0.05)
        endpoint.close()
        return endpoint

    with caplog.at_level(logging.ERROR, logger="fastds.udp"):
        endpoint = uvloop.run(main())
    sender.close()
    assert endpoint.handler_errors == 2
    records = [r for r in caplog.records if r.name == "fastds.udp"]
    assert len(records) == 2 and all(r.exc_info is None and "\n" not in r.getMessage() for r in records)
    assert "handling failed: RuntimeError: boom" in records[0].getMessage()
