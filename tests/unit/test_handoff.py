"""Call-ID ownership: the hand-off framing, who owns what, and real unix sockets between
two ends in one process: an owner that is down or full loses the datagram, counted,
and what arrives is never corrupted."""

import os
import struct
from collections import Counter

import pytest

from fastds._ext.frames import MAX_FRAME, MESSAGE, WRITE, FrameInbox, FrameOutbox
from fastds._ext.sipscan import call_id_of
from fastds.net.handoff import Handoff, owner_of


def unpacked(batch: bytes) -> tuple[list, list, int]:
    """(messages, writes, frames dropped) of a batch, as an owner reads it."""
    inbox, messages, writes = FrameInbox(-1, ()), [], []
    inbox.unpack(batch, messages, writes)
    assert inbox.received == len(messages) + len(writes)
    return messages, writes, inbox.dropped


def packed(*frames: tuple[int, bytes, tuple]) -> bytes:
    outbox = FrameOutbox()
    for kind, data, address in frames:
        assert outbox.add(kind, data, address)
    assert outbox.frames == len(frames)
    return outbox.take()


@pytest.mark.parametrize("source", [("127.0.0.1", 5060), ("2001:db8::1", 65535), ("::ffff:192.0.2.1", 1),
                                    ("127.0.0.1", 5060, 3 << 40 | 17)])
def test_a_frame_carries_the_message_and_its_source_untouched(source):
    datagram = bytes(range(256)) * 40
    assert unpacked(packed((MESSAGE, datagram, source))) == ([(datagram, source)], [], 0)


def test_a_repeated_source_and_then_another_each_come_out_as_sent():
    """The owner reuses the last source tuple while it repeats: a change must never be missed."""
    a, b, c = ("127.0.0.1", 5060), ("127.0.0.1", 5061), ("127.0.0.2", 5060, 7)
    sources = [a, a, b, a, c, c, ("127.0.0.1", 5060, 7), a]
    messages, _, dropped = unpacked(packed(*((MESSAGE, b"m%d" % n, s) for n, s in enumerate(sources))))
    assert messages == [(b"m%d" % n, s) for n, s in enumerate(sources)] and dropped == 0


def test_a_write_frame_names_the_connection_and_needs_one():
    peer = ("127.0.0.1", 40000, 1 << 40 | 5)
    assert unpacked(packed((WRITE, b"SIP/2.0 200 OK\r\n", peer))) == ([], [(b"SIP/2.0 200 OK\r\n", peer)], 0)
    assert unpacked(packed((WRITE, b"x", ("127.0.0.1", 40000)))) == ([], [], 1)  # a write with no connection


def test_what_cannot_be_a_frame_is_refused_when_packed():
    outbox = FrameOutbox()
    assert not outbox.add(MESSAGE, b"x" * MAX_FRAME, ("127.0.0.1", 5060))  # longer than a frame holds
    assert not outbox.add(MESSAGE, b"x", ("", 5060)) and not outbox.add(MESSAGE, b"x", ("1" * 256, 5060))
    assert outbox.frames == 0 and outbox.take() == b""


@pytest.mark.parametrize("frame", [b"", b"\x00\x09", b"\x00\x09\x13\xc4" + bytes(8) + b"127.0.0.",
                                   b"\x00\x00\x13\xc4" + bytes(8) + b"data", b"\x07\x01\x13\xc4" + bytes(8) + b"1x",
                                   b"\x00\x03\x00\x01" + bytes(8) + b"\xff\xfe\xfdx"])
def test_a_short_or_foreign_frame_is_not_a_message(frame):
    good = packed((MESSAGE, b"before", ("127.0.0.1", 5060)))
    batch = good + struct.pack("!I", len(frame)) + frame + good  # what follows a bad frame is not trusted
    assert unpacked(batch) == ([(b"before", ("127.0.0.1", 5060))], [], 1)


def test_ownership_is_stable_and_spreads_call_ids_over_the_workers():
    owners = Counter(owner_of(b"%d-4242@127.0.0.1" % n, 2) for n in range(10_000))
    assert set(owners) == {0, 1} and 4_700 < owners[0] < 5_300
    assert owner_of(b"abc@host", 3) == owner_of(b"abc@host", 3)


def test_the_call_id_is_found_without_a_full_scan():
    headers = b"INVITE sip:bob@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
    assert call_id_of(headers + b"Call-ID:  c1@h \r\nCSeq: 1 INVITE\r\n\r\n") == b"c1@h"
    assert call_id_of(headers + b"i: compact@h\r\n\r\n") == b"compact@h"
    assert call_id_of(headers + b"CALL-ID\t: upper@h\r\n\r\n") == b"upper@h"
    assert call_id_of(headers + b"\r\nCall-ID: in-the-body\r\n") is None
    assert call_id_of(b"garbage without lines") is None and call_id_of(b"") is None


def test_an_owner_that_is_down_or_full_loses_the_datagram_counted_never_corrupted():
    master = 10_000_000 + os.getpid()  # a name no running fastds uses
    sender, owner = Handoff(master, 0, 3), Handoff(master, 1, 3)
    try:
        sender.send(2, b"to a worker that is not up", ("127.0.0.1", 5060))
        sender.flush()
        assert (sender.handed_off, sender.dropped) == (0, 1)
        datagram = b"OPTIONS sip:x SIP/2.0\r\n" + b"x" * 1000
        for n in range(100_000):  # one frame per flush until the owner's queue is full: bounded
            sender.send(1, datagram + b"%d" % n, ("127.0.0.1", 5060 + n % 1000))
            sender.flush()
            if sender.dropped > 1:
                break
        assert sender.dropped == 2 and sender.handed_off > 0
        received, writes = owner.receive()
        assert len(received) == sender.handed_off == owner.received and writes == []
        assert all(data == datagram + b"%d" % n and source == ("127.0.0.1", 5060 + n % 1000)
                   for n, (data, source) in enumerate(received))
    finally:
        sender.close()
        owner.close()


def test_messages_and_writes_for_one_worker_travel_together_and_come_out_apart():
    master = 40_000_000 + os.getpid()
    sender, holder = Handoff(master, 0, 2), Handoff(master, 1, 2)
    peer = ("127.0.0.1", 40000, 1 << 40 | 3)
    try:
        sender.send(1, b"INVITE from a stream", peer)
        sender.write(1, b"SIP/2.0 100 Trying\r\n", peer)
        sender.send(1, b"INVITE from a datagram", ("127.0.0.1", 5070))
        sender.flush()
        assert holder.receive() == ([(b"INVITE from a stream", peer), (b"INVITE from a datagram", ("127.0.0.1", 5070))],
                                    [(b"SIP/2.0 100 Trying\r\n", peer)])
    finally:
        sender.close()
        holder.close()


def test_a_busy_owners_full_queue_makes_frames_wait_in_order_not_lost():
    master = 50_000_000 + os.getpid()
    sender, owner = Handoff(master, 0, 2), Handoff(master, 1, 2)
    try:
        for n in range(100):  # a flush each: far more datagrams than the owner's queue holds (10 by default)
            sender.send(1, b"INVITE %d" % n, ("127.0.0.1", 5070))
            sender.flush()
        assert sender.dropped == 0 and sender.waiting() == [(1, sender._senders[1].fileno())]
        received = []
        for _ in range(100):  # the owner reads, the sender retries when told there is room: bounded
            received += [data for data, _ in owner.receive()[0]]
            if sender.retry(1):
                break
        received += [data for data, _ in owner.receive()[0]]
        assert received == [b"INVITE %d" % n for n in range(100)] and sender.waiting() == []
        assert sender.handed_off == owner.received == 100
    finally:
        sender.close()
        owner.close()


def test_one_turns_frames_for_an_owner_go_in_as_few_datagrams_as_fit():
    master = 30_000_000 + os.getpid()
    sender, owner = Handoff(master, 0, 2), Handoff(master, 1, 2)
    try:
        big = b"x" * 60_000  # two of these pass the batch size: two datagrams
        for n, data in enumerate([b"a", b"bb", big, big, b"c"]):
            sender.send(1, data, ("127.0.0.1", 7000 + n))
        sender.flush()
        assert sender.handed_off == 5
        datagrams = []
        while True:
            try:
                datagrams.append(owner.socket.recv(1 << 20))
            except BlockingIOError:
                break
        assert len(datagrams) == 2
        to_owner = sender._senders[1]  # the sibling's own socket, connected to the owner
        for datagram in datagrams:  # as the owner would read them: put them back, in order
            to_owner.send(datagram)
        assert [data for data, _ in owner.receive()[0]] == [b"a", b"bb", big, big, b"c"]
        to_owner.send(datagrams[0][:100])  # a batch cut short: what can be read is kept, the rest counted once
        assert [data for data, _ in owner.receive()[0]] == [b"a", b"bb"] and owner.dropped == 1
    finally:
        sender.close()
        owner.close()


def test_a_frame_from_anything_but_a_sibling_worker_is_dropped():
    """Another local process could forge the source address of what the owner handles."""
    import socket

    from fastds.net.handoff import handoff_address

    master = 20_000_000 + os.getpid()
    owner = Handoff(master, 0, 2)
    stranger = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        stranger.sendto(packed((MESSAGE, b"INVITE sip:x SIP/2.0\r\n\r\n", ("192.0.2.1", 5060))),
                        handoff_address(master, 0))
        assert owner.receive() == ([], []) and owner.dropped == 1
    finally:
        stranger.close()
        owner.close()


def test_an_owner_reading_one_batch_per_readable_event_gets_every_batch_on_uvloop():
    """The pump takes one batch per readable event (receive(1)): what else is queued must
    wake it again (uvloop's readers are level-triggered), not wait for the next datagram."""
    import asyncio

    import uvloop

    master = 60_000_000 + os.getpid()
    sender, owner = Handoff(master, 0, 2), Handoff(master, 1, 2)

    async def read_all() -> list[bytes]:
        loop, received, events = asyncio.get_running_loop(), [], 0
        done = loop.create_future()

        def readable() -> None:
            nonlocal events
            events += 1
            received.extend(data for data, _ in owner.receive(1)[0])
            if len(received) == 5 and not done.done():
                done.set_result(None)

        for n in range(5):  # five batches queued before the owner looks
            sender.send(1, b"INVITE %d" % n, ("127.0.0.1", 5070))
            sender.flush()
        loop.add_reader(owner.socket.fileno(), readable)
        try:
            await asyncio.wait_for(done, 10)  # a generous bound: each batch is one loop turn away
        finally:
            loop.remove_reader(owner.socket.fileno())
        assert events == 5
        return received

    try:
        assert uvloop.run(read_all()) == [b"INVITE %d" % n for n in range(5)]
    finally:
        sender.close()
        owner.close()
