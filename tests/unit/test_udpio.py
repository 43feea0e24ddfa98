"""Batched datagram IO (ext/udpio.pyx): batches, short reads, refused sends, full buffers."""

import socket

import pytest

from fastds._ext.udpio import DatagramIO


def udp(family=socket.AF_INET, rcvbuf=None):
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def drain(io: DatagramIO) -> list:
    found = []
    while batch := io.receive():
        found += batch
    return found


def test_a_batch_larger_than_one_system_call_arrives_whole_and_in_order():
    sender, receiver = udp(), udp()
    out, into = DatagramIO(sender.fileno(), sender.family, 8), DatagramIO(receiver.fileno(), receiver.family, 8)
    assert into.receive() == []
    datagrams = [(b"datagram %d" % n, receiver.getsockname()) for n in range(30)]
    assert out.send(datagrams) == 30
    first = into.receive()
    assert len(first) == 8  # one recvmmsg reads at most `batch`
    found = first + drain(into)
    assert [data for data, _ in found] == [data for data, _ in datagrams]
    assert {source for _, source in found} == {sender.getsockname()}
    assert found[0][1] is found[-1][1]  # one peer: one address tuple, reused


def test_a_datagram_longer_than_the_buffer_is_dropped_and_counted_never_cut_short():
    sender, receiver = udp(), udp()
    into = DatagramIO(receiver.fileno(), receiver.family, 4, 100)
    for data in (b"a" * 100, b"b" * 101, b"c" * 5000, b"d"):
        sender.sendto(data, receiver.getsockname())
    assert [data for data, _ in drain(into)] == [b"a" * 100, b"d"]
    assert into.truncated == 2


def test_a_send_the_kernel_refuses_is_counted_and_the_rest_still_go():
    sender, receiver = udp(), udp()
    out, into = DatagramIO(sender.fileno(), sender.family, 4), DatagramIO(receiver.fileno(), receiver.family, 4)
    to = receiver.getsockname()
    sent = out.send([(b"one", to), (b"x" * 70_000, to), (b"two", ("not an address", 5060)), (b"three", ("127.0.0.1", 70000)),
                     (b"four", to)])
    assert sent == 2 and out.send_errors == 3
    assert [data for data, _ in drain(into)] == [b"one", b"four"]


def test_a_full_receive_buffer_loses_whole_datagrams_counted_by_the_sender_or_the_kernel_never_corrupted():
    sender, receiver = udp(), udp(rcvbuf=4096)
    out, into = DatagramIO(sender.fileno(), sender.family, 64), DatagramIO(receiver.fileno(), receiver.family, 64)
    datagrams = [(b"%05d" % n + b"." * 600, receiver.getsockname()) for n in range(500)]
    sent = out.send(datagrams)
    found = drain(into)
    assert 0 < len(found) < 500 and sent + out.send_errors == 500
    numbers = [int(data[:5]) for data, _ in found]
    assert numbers == sorted(numbers)
    assert all(data == b"%05d" % n + b"." * 600 for n, (data, _) in zip(numbers, found))


def test_one_socket_receiving_and_sending_in_turns_keeps_both_right():
    """A worker's socket does both, round after round: sending never disturbs what the next
    receive reads into, or where it says a datagram came from (the headers are set once)."""
    peers, proxy = [udp(), udp(), udp()], udp()
    io = DatagramIO(proxy.fileno(), proxy.family, 4)
    peer_ios = [DatagramIO(peer.fileno(), peer.family, 4) for peer in peers]
    for turn in range(5):
        for n, peer in enumerate(peers[:1 + turn % 3]):
            peer.sendto(b"to proxy %d.%d" % (turn, n), proxy.getsockname())
        got = drain(io)
        assert [(data, source) for data, source in got] == [
            (b"to proxy %d.%d" % (turn, n), peer.getsockname()) for n, peer in enumerate(peers[:1 + turn % 3])]
        assert io.send([(b"reply " + data, source) for data, source in got]) == len(got)
        for n, peer_io in enumerate(peer_ios[:1 + turn % 3]):
            assert drain(peer_io) == [(b"reply to proxy %d.%d" % (turn, n), proxy.getsockname())]


def test_ipv6_and_ipv4_destinations_from_an_ipv6_socket():
    v6, v4 = udp(socket.AF_INET6), udp()
    sender = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sender.bind(("::", 0))
    out = DatagramIO(sender.fileno(), sender.family)
    assert out.send([(b"six", ("::1", v6.getsockname()[1])), (b"four", v4.getsockname())]) == 2
    into6, into4 = DatagramIO(v6.fileno(), v6.family), DatagramIO(v4.fileno(), v4.family)
    assert drain(into6) == [(b"six", ("::1", sender.getsockname()[1]))]  # loopback delivers within the send
    assert [data for data, _ in drain(into4)] == [b"four"]

def test_bad_arguments_name_what_was_expected():
    with pytest.raises(ValueError, match="family must be AF_INET or AF_INET6"):
        DatagramIO(0, socket.AF_UNIX)
    with pytest.raises(ValueError, match="batch must be 1..1024"):
        DatagramIO(0, socket.AF_INET, 0)
