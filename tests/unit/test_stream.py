"""Framing SIP on a stream (fastds/sip/stream.py): whole messages whatever the segmentation,
Content-Length required, bounded sizes, the slow sender's deadline, keep-alives, a peer that
closes mid-message."""

import pytest

from fastds.sip import scan
from fastds.sip.stream import FramingError, StreamFramer


def message(n: int, body: bytes = b"", compact: bool = False) -> bytes:
    length = b"l: %d" % len(body) if compact else b"Content-Length: %d" % len(body)
    return (b"INVITE sip:%d@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK-%d\r\n"
            b"From: <sip:a@127.0.0.1>;tag=f%d\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: c%d\r\nCSeq: 1 INVITE\r\n"
            b"Max-Forwards: 70\r\n%s\r\n\r\n%s") % (n, n, n, n, length, body)


def framer(**limits) -> StreamFramer:
    return StreamFramer(limits.get("max_message_bytes", 65535), limits.get("max_header_bytes", 8192),
                        limits.get("message_deadline_s", 5.0))


def test_a_message_split_into_single_bytes_comes_out_whole_once():
    data = message(1, b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n")
    stream = framer()
    found = []
    for i in range(len(data)):
        found += stream.feed(data[i:i + 1], now=0.0).messages
    assert found == [data] and stream.pending == 0
    assert scan(found[0]).body == b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"


def test_several_messages_in_one_segment_and_one_cut_across_two():
    first, second, third = message(1, b"abc"), message(2, compact=True), message(3, b"x" * 500)
    stream = framer()
    joined = first + second + third
    cut = len(first) + len(second) + 100
    assert stream.feed(joined[:cut], now=0.0).messages == [first, second]
    assert stream.pending == 100
    assert stream.feed(joined[cut:], now=0.1).messages == [third]


def test_keep_alives_double_crlf_is_a_ping_a_single_crlf_is_skipped():
    stream = framer()
    frames = stream.feed(b"\r\n\r\n" + b"\r\n" + message(1) + b"\r\n\r\n\r\n\r\n", now=0.0)
    assert frames.messages == [message(1)] and frames.pings == 3
    assert stream.feed(b"\r\n", now=0.0).pings == 0  # half a ping waits for the rest
    assert stream.feed(b"\r\n", now=0.0).pings == 1 and stream.pending == 0


def test_a_missing_content_length_is_answered_400_with_the_header_block():
    data = message(1).replace(b"Content-Length: 0\r\n", b"")
    with pytest.raises(FramingError) as failed:
        framer().feed(data, now=0.0)
    assert failed.value.status == 400 and "Content-Length" in failed.value.reason
    assert failed.value.head.startswith(b"INVITE ") and failed.value.head.endswith(b"\r\n\r\n")


@pytest.mark.parametrize("value", [b"12x", b"-1", b"", b"99999999999"])
def test_a_content_length_that_is_not_a_number_of_digits_is_refused(value):
    with pytest.raises(FramingError) as failed:
        framer().feed(message(1).replace(b"Content-Length: 0", b"Content-Length: " + value), now=0.0)
    assert failed.value.status == 400


def test_conflicting_content_lengths_are_refused_and_agreeing_ones_are_not():
    agreeing = message(1, b"ab").replace(b"Max-Forwards: 70", b"l: 2")
    assert framer().feed(agreeing, now=0.0).messages == [agreeing]
    with pytest.raises(FramingError) as failed:
        framer().feed(message(1, b"ab").replace(b"Max-Forwards: 70", b"l: 3"), now=0.0)
    assert failed.value.reason == "conflicting Content-Length"


def test_an_oversize_message_is_513_as_soon_as_its_content_length_says_so():
    stream = framer(max_message_bytes=2000, max_header_bytes=1000)
    head = message(1, b"x" * 5000)[:-5000]
    with pytest.raises(FramingError) as failed:
        stream.feed(head, now=0.0)  # not one body byte has to come first
    assert failed.value.status == 513 and failed.value.reason == "message too large"


def test_a_header_block_without_end_is_513_once_over_its_bound():
    stream = framer(max_header_bytes=1024)
    stream.feed(b"INVITE sip:x@127.0.0.1 SIP/2.0\r\n", now=0.0)
    with pytest.raises(FramingError) as failed:
        for _ in range(100):
            stream.feed(b"X-Filler: " + b"y" * 40 + b"\r\n", now=0.0)
    assert failed.value.status == 513 and len(failed.value.head) == 1024


def test_a_slow_trickle_is_cut_off_at_the_deadline_even_while_bytes_keep_coming():
    data = message(1)
    stream = framer(message_deadline_s=5.0)
    for i in range(10):  # a byte every half second: 5 s after the first one the message is overdue
        assert not stream.overdue(i * 0.5)
        stream.feed(data[i:i + 1], now=i * 0.5)
    with pytest.raises(FramingError) as failed:
        stream.feed(data[10:11], now=5.0)
    assert failed.value.status == 408
    assert stream.overdue(5.0)


def test_the_deadline_runs_per_message_not_per_connection():
    stream = framer(message_deadline_s=5.0)
    for second in range(20):  # a whole message every second for 20 s is fine
        assert stream.feed(message(second), now=float(second)).messages == [message(second)]
    assert not stream.overdue(100.0)  # nothing pending


def test_a_peer_closing_mid_message_leaves_it_unfinished_and_between_messages_not():
    stream = framer()
    stream.feed(message(1) + message(2)[:30], now=0.0)
    assert stream.closed() is True and stream.pending == 0
    stream.feed(message(3) + b"\r\n", now=0.0)
    assert stream.closed() is False


def test_limits_are_checked():
    with pytest.raises(ValueError, match="max_header_bytes"):
        StreamFramer(1000, 2000, 5.0)
