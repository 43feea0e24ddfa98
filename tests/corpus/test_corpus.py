"""Scanner verdicts on the RFC 4475 / RFC 5118 torture messages and fastds's own corpus.

Each corpus directory holds the messages byte-exact and a verdicts.json. The scanner's
part of a verdict: a message to accept scans; one to reject raises SipParseError with a
status hint the RFC allows (0 = dropped, for responses and requests without a readable
Via); 'may reject' messages may do either but never anything else. Semantic verdicts
(416, 420, 483 ...) belong to the proxy, so here those messages must simply scan.
"""

import json
from pathlib import Path

import pytest

from fastds.errors import SipParseError
from fastds.sip import scan

CORPUS = Path(__file__).parent
# RFC 5118 §4.6 prints Content-Length 268 for a 251-octet body (a known erratum): over
# UDP, RFC 3261 §18.3 makes that a 400. The corrected message must be accepted.
ERRATA_CONTENT_LENGTH = {"ipv6-in-sdp": 251}


def rfc_cases():
    for name in ("rfc4475", "rfc5118"):
        verdicts = json.loads((CORPUS / name / "verdicts.json").read_text())
        for case, verdict in sorted(verdicts.items()):
            yield pytest.param(CORPUS / name / f"{case}.dat", verdict, id=f"{name}/{case}")


@pytest.mark.parametrize("path, verdict", list(rfc_cases()))
def test_rfc_torture_verdict(path, verdict):
    data = path.read_bytes()
    kind = verdict["parser_verdict"]
    if path.stem in ERRATA_CONTENT_LENGTH:
        with pytest.raises(SipParseError) as info:
            scan(data)
        assert info.value.status_hint == 400 and "Content-Length" in info.value.reason
        fixed = data.replace(b"Content-Length: 268", b"Content-Length: %d" % ERRATA_CONTENT_LENGTH[path.stem])
        assert scan(fixed).body.startswith(b"v=0")
        return
    if kind in ("must_accept", "must_parse_semantic_handling"):
        scan(data)
        return
    allowed = set(verdict.get("acceptable_responses") or []) | {0}
    try:
        scan(data)
    except SipParseError as exc:
        assert exc.status_hint in allowed, (exc.status_hint, exc.reason)
        if exc.status_hint:
            assert exc.message is not None and exc.message.via_start >= 0
    else:
        assert kind == "may_reject_must_not_crash", f"{path.stem} must be rejected"


def test_baddn_variant_with_terminator_is_rejected_400():
    with pytest.raises(SipParseError) as info:
        scan((CORPUS / "rfc4475" / "variants" / "baddn.with-terminator.dat").read_bytes())
    assert info.value.status_hint == 400


OWN = json.loads((CORPUS / "fastds" / "verdicts.json").read_text())


@pytest.mark.parametrize("name", sorted(OWN))
def test_own_corpus_verdict(name):
    data = (CORPUS / "fastds" / f"{name}.sip").read_bytes()
    verdict = OWN[name]
    if verdict["valid"]:
        message = scan(data)
        assert message.via_start >= 0 and message.call_id
    else:
        with pytest.raises(SipParseError) as info:
            scan(data)
        assert info.value.status_hint == verdict["status_hint"], info.value.reason


# -- generated extremes ------------------------------------------------------------

HEAD = (b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-g\r\n"
        b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: g@127.0.0.1\r\nCSeq: 1 INVITE\r\n")


def test_ten_thousand_headers_are_refused_with_400():
    data = HEAD + b"X-H: v\r\n" * 10_000 + b"Content-Length: 0\r\n\r\n"
    with pytest.raises(SipParseError) as info:
        scan(data, max_bytes=1 << 20)
    assert info.value.status_hint == 400 and "FASTDS_SIP_MAX_HEADERS" in info.value.reason


def test_ten_thousand_headers_pass_when_the_cap_allows_them():
    data = HEAD + b"X-H: v\r\n" * 10_000 + b"Content-Length: 0\r\n\r\n"
    assert len(scan(data, max_bytes=1 << 20, max_headers=10_010).header_values("x-h")) == 10_000


def test_64_kib_header_line_exceeds_the_default_message_size_and_is_answered_513():
    data = HEAD + b"X-Big: " + b"a" * 65536 + b"\r\nContent-Length: 0\r\n\r\n"
    with pytest.raises(SipParseError) as info:
        scan(data)
    assert info.value.status_hint == 513 and "MAX_MESSAGE_BYTES" in info.value.reason
    assert info.value.message.call_id == b"g@127.0.0.1"  # the head was read: the 513 can be built


def test_64_kib_header_line_is_read_whole_when_allowed():
    data = HEAD + b"X-Big: " + b"a" * 65536 + b"\r\nContent-Length: 0\r\n\r\n"
    assert scan(data, max_bytes=1 << 20).header("X-Big") == b"a" * 65536


@pytest.mark.parametrize("seed", range(20))
def test_binary_garbage_is_dropped(seed):
    import random

    data = random.Random(seed).randbytes(1500)
    with pytest.raises(SipParseError) as info:
        scan(data)
    assert info.value.status_hint == 0
