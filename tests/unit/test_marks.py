"""fastds's keyed marks in C (ext/marks.pyx): the tags are bit for bit hashlib's keyed BLAKE2b,
so tags made before it (and by nodes not yet upgraded) still verify; the checks of branches,
Record-Routes and loops accept ours and reject what they must."""

import hashlib
import random

import pytest

from bench.micro.messages import INVITE
from fastds._ext.marks import BranchFactory, KeyedTag, RecordRoute, counted, escape_param
from fastds.sip import scan


def reference(key: bytes, data: bytes) -> bytes:
    return hashlib.blake2b(data, key=key, digest_size=6).hexdigest().encode()


# around the block size (128): a last block that is full is compressed as the last one, not
# followed by an empty one
LENGTHS = [0, 1, 11, 125, 126, 127, 128, 129, 254, 255, 256, 1000]


@pytest.mark.parametrize("key_length", [1, 16, 32, 63, 64])
def test_tags_are_hashlibs_keyed_blake2b(key_length):
    rng = random.Random(key_length)
    key = rng.randbytes(key_length)
    tag = KeyedTag(key)
    for length in LENGTHS:  # the signed text is call_id '|' tag: length + 2 bytes
        call_id = rng.randbytes(length)
        assert tag.dialog(call_id, b"t") == reference(key, call_id + b"|t")


def test_dialog_tags_sign_call_id_tag_and_flow():
    rng = random.Random(7)
    key = rng.randbytes(32)
    tag = KeyedTag(key)
    for call_id_length in (0, 20, 126, 127, 300):
        call_id, from_tag = rng.randbytes(call_id_length), b"a%d" % call_id_length
        plain = tag.dialog(call_id, from_tag)
        assert plain == reference(key, call_id + b"|" + from_tag)
        assert tag.dialog(call_id, from_tag, b"1f") == reference(key, call_id + b"|" + from_tag + b"|1f")
        assert tag.signs_dialog(plain, call_id, from_tag)
        assert not tag.signs_dialog(plain, call_id, from_tag, b"1f")  # the flow is signed too
        assert not tag.signs_dialog(plain, call_id + b"x", from_tag)
        assert not tag.signs_dialog(plain[:-1], call_id, from_tag)  # wrong length: no read past it
        for position in range(12):  # any one digit changed
            forged = plain[:position] + (b"0" if plain[position:position + 1] != b"0" else b"1") + plain[position + 1:]
            assert not tag.signs_dialog(forged, call_id, from_tag)


def test_branches_carry_the_tag_of_prefix_and_counter():
    key = b"secret"
    tag = KeyedTag(key)
    for number in (0, 1, 15, 16, 0xABCDEF, 2**64 - 1):
        branch = tag.branch(b"z9hG4bKn1.0a0b", number)
        body = b"z9hG4bKn1.0a0b%x" % number
        assert branch == body + b"." + reference(key, body)
    factory = BranchFactory(key, "n1")
    branch = factory.new()
    assert factory.is_ours(branch) and BranchFactory(key, "n2").is_ours(branch)
    assert not BranchFactory(b"other", "n1").is_ours(branch)
    assert factory.is_ours(b"z9hG4bK." + reference(key, b"z9hG4bK"))  # any body under our tag
    for forged in (branch[:-1], branch + b".", branch.replace(b".", b"x"), branch[7:], b"z9hG4bK",
                   b"." + reference(key, b"")):
        assert not factory.is_ours(forged), forged


def test_the_secret_is_checked_and_never_shown():
    with pytest.raises(ValueError, match="1 to 64 bytes, not 0"):
        KeyedTag(b"")
    with pytest.raises(ValueError, match="1 to 64 bytes, not 65"):
        KeyedTag(b"k" * 65)
    assert "hunter2" not in repr(KeyedTag(b"hunter2"))


def request(route: bytes = b"", from_tag: bytes = b"3571SIPpTag001", to_tag: bytes | None = None, vias: bytes = b""):
    data = INVITE.replace(b";tag=3571SIPpTag001", b";tag=" + from_tag)
    if to_tag is not None:
        data = data.replace(b"To: <sip:+14155550123@127.0.0.1:5060>", b"To: <sip:+14155550123@127.0.0.1:5060>;tag=" + to_tag)
    return scan(data.replace(b"Max-Forwards:", route + vias + b"Max-Forwards:"))


def test_record_routes_of_a_dialog_are_ours_from_either_side_and_name_their_connection():
    rr = RecordRoute(b"secret", b"127.0.0.1:5060", {"tcp": b"127.0.0.1:5061"})
    invite = request(from_tag=b"a%b`c")  # a tag with characters a URI parameter may not carry
    udp, tcp = rr.uri(invite), rr.uri(invite, "tcp", connection=0x2A)
    assert b";ftag=a%25b%60c;" in udp and b";transport=tcp;lr;" in tcp and b";fdsc=2a;" in tcp
    in_dialog = request(b"Route: <%s>, <%s>\r\nRoute: <sip:next;lr>\r\n" % (tcp, udp), from_tag=b"a%b`c")
    assert rr.ours(in_dialog) == 2 and rr.connection(in_dialog, 2) == 0 and rr.connection(in_dialog, 1) == 0x2A
    # the callee's requests: our ftag is their To tag
    backwards = request(b"Route: <%s>\r\n" % udp, from_tag=b"callee", to_tag=b"a%b`c")
    assert rr.ours(backwards) == 1 and rr.connection(backwards, 1) == 0
    assert RecordRoute(b"other", b"127.0.0.1:5060").ours(in_dialog) == 0
    another_dialog = request(b"Route: <%s>\r\n" % udp, from_tag=b"zzz")
    assert rr.ours(another_dialog) == 0
    forged_flow = request(b"Route: <%s>\r\n" % tcp.replace(b"fdsc=2a", b"fdsc=2b"), from_tag=b"a%b`c")
    assert rr.ours(forged_flow) == 0
    assert rr.ours(request(b"Route: <sip:127.0.0.1:5060;lr>\r\n")) == 0 and rr.ours(request()) == 0
    with pytest.raises(ValueError, match="no tls listener"):
        rr.uri(invite, "tls")


@pytest.mark.parametrize("from_tag", [b"a%b`c", b"x" * 300, None])
@pytest.mark.parametrize("connection", [0, 1, 0x2A, 2**63 - 1])
def test_a_record_route_uri_is_the_documented_text_with_hashlibs_tag(from_tag, connection):
    """sip:HOST:PORT;lr;ftag=TAG;[fdsc=HEX;]fds=MAC, MAC keyed BLAKE2b over Call-ID|ftag[|HEX]."""
    rr = RecordRoute(b"secret", b"127.0.0.1:5060")
    invite = request(from_tag=from_tag) if from_tag is not None else scan(INVITE.replace(b";tag=3571SIPpTag001", b""))
    ftag, call_id = invite.from_tag or b"", invite.call_id
    flow = b"%x" % connection if connection else None
    signed = call_id + b"|" + ftag + (b"|" + flow if flow else b"")
    expected = b"sip:127.0.0.1:5060;lr;ftag=" + escape_param(ftag) + (b";fdsc=" + flow if flow else b"")
    assert rr.uri(invite, "udp", connection) == expected + b";fds=" + reference(b"secret", signed)


def test_counted_appends_the_number_in_lower_case_hex():
    for number in (0, 1, 15, 16, 0xABCDEF, 2**64 - 1):
        assert counted(b"fds1a2b3c", number) == b"fds1a2b3c%x" % number


def test_escape_param_escapes_what_a_paramchar_is_not():
    assert escape_param(b"abc-_.!~*'()[]/:&+$") == b"abc-_.!~*'()[]/:&+$"
    assert escape_param(b"a%b`c d;e=") == b"a%25b%60c%20d%3Be%3D"


def test_a_request_with_one_of_our_branches_in_any_via_came_back():
    factory = BranchFactory(b"secret", "node1")
    ours = b"Via: SIP/2.0/UDP 127.0.0.1:5062;branch=%s;rport\r\n" % factory.new()
    assert factory.came_back(request(vias=ours))
    assert factory.came_back(request(vias=b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx, " + ours[5:]))
    assert not factory.came_back(request())
    assert not BranchFactory(b"other", "node1").came_back(request(vias=ours))
    assert not factory.came_back(request(vias=ours.replace(b";branch=", b";xbranch=")))
