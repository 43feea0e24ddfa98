"""fastds's keyed tags in C (ext/keyedtag.pyx): bit for bit hashlib's keyed BLAKE2b, so tags
made before it (and by nodes not yet upgraded) still verify; checks that reject what they must."""

import hashlib
import random

import pytest

from fastds._ext.keyedtag import KeyedTag


def reference(key: bytes, data: bytes) -> bytes:
    return hashlib.blake2b(data, key=key, digest_size=6).hexdigest().encode()


# around the block size (128): the key block is last only for an empty message; a full last
# block is compressed as last, not followed by an empty one
LENGTHS = [0, 1, 11, 127, 128, 129, 255, 256, 257, 1000]


@pytest.mark.parametrize("key_length", [1, 16, 32, 63, 64])
def test_tags_are_hashlibs_keyed_blake2b(key_length):
    rng = random.Random(key_length)
    key = rng.randbytes(key_length)
    tag = KeyedTag(key)
    for length in LENGTHS:
        data = rng.randbytes(length)
        assert tag(data) == reference(key, data)


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
        assert tag.signs_branch(branch)
    assert not KeyedTag(b"other").signs_branch(branch)
    assert not tag.signs_branch(branch[:-1])
    assert not tag.signs_branch(branch + b".")
    assert not tag.signs_branch(branch.replace(b".", b"x"))
    assert not tag.signs_branch(b"." + reference(key, b""))  # an empty body is signed by no branch()


def test_the_secret_is_checked_and_never_shown():
    with pytest.raises(ValueError, match="1 to 64 bytes, not 0"):
        KeyedTag(b"")
    with pytest.raises(ValueError, match="1 to 64 bytes, not 65"):
        KeyedTag(b"k" * 65)
    assert "hunter2" not in repr(KeyedTag(b"hunter2"))
