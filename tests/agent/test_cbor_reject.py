"""agent.cbor rejects what is not well-formed (RFC 8949) or breaks a bound: one test a rule.

Every rejection is CBORDecodeError, a ValueError: the session answers it with status 400.
"""

from agent.cbor import CBORDecodeError, loads
from tests.agent.check import raises, unhex


def _rejects(message, *texts, **kw):
    for text in texts:
        exc = raises(CBORDecodeError, loads, unhex(text), **kw)
        assert isinstance(exc, ValueError)
        assert message in str(exc), "%s: %s" % (text, exc)


def test_rejects_reserved_additional_info():
    for major in range(8):
        for ai in (28, 29, 30):
            _rejects("reserved", "%02x 0000000000000000" % (major << 5 | ai))


def test_rejects_two_byte_simple_values_below_32():
    for v in range(32):
        _rejects("simple", "f8 %02x" % v)


def test_rejects_lone_break():
    _rejects("break", "ff", "81 ff", "a1 ff 00", "a1 01 ff", "bf 01 ff", "c0 ff", "82 01 ff")


def test_rejects_bad_chunks_in_indefinite_strings():
    _rejects(
        "chunk",
        "5f 61 61 ff",  # text chunk in a byte string
        "7f 41 61 ff",  # byte chunk in a text string
        "5f 5f ff ff",  # nested indefinite
        "7f 7f ff ff",
        "5f 01 ff",  # not a string at all
        "7f 80 ff",
        "5f c2 41 01 ff",  # a tagged chunk
    )


def test_rejects_truncated_items():
    _rejects(
        "truncated",
        "", "18", "19 01", "1a 010203", "1b 01020304050607", "38", "41", "62 61", "5a 00000002 00",
        "81", "82 01", "a1", "a1 01", "9f", "9f 01", "bf", "bf 01", "bf 01 02", "5f", "5f 41",
        "7f 61 61", "c0", "d8", "c2", "f9 00", "fa 000000", "fb 00000000000000", "f8",
    )


def test_rejects_trailing_bytes():
    _rejects("trailing", "00 00", "80 00", "9f ff ff", "a0 a0", "61 61 61", "f6 00")


def test_rejects_invalid_utf8():
    _rejects(
        "UTF-8",
        "61 80",  # lone continuation byte
        "61 ff",
        "62 c3 28",  # lead byte without its continuation
        "62 e2 82",  # sequence cut short by the string's end
        "62 c0 80",  # overlong NUL
        "62 c1 bf",  # overlong
        "63 e0 9f bf",  # overlong three-byte form
        "64 f0 8f bf bf",  # overlong four-byte form
        "63 ed a0 80",  # UTF-16 surrogate
        "63 ed bf bf",
        "64 f4 90 80 80",  # past U+10FFFF
        "64 f5 80 80 80",
        "65 f8 88 80 80 80",  # five-byte form
        "7f 61 c3 61 bc ff",  # one code point split across chunks
        "7f 61 61 61 80 ff",  # a bad second chunk
    )


def test_rejects_nesting_deeper_than_max_depth():
    assert loads(b"\x81" * 16 + b"\x00") == loads(b"\x81" * 16 + b"\x00", 16)
    _rejects("deep", "81" * 17 + "00", "9f" * 17 + "ff" * 17, "a1 00" * 17 + "00", "c1" * 17 + "00")
    _rejects("deep", "81 a1 00 c1 00", max_depth=2)  # arrays, maps and tags count alike
    assert loads(unhex("81 a1 00 c1 00"), 3) == [{0: loads(unhex("c1 00"))}]
    assert loads(unhex("05"), max_depth=0) == 5
    _rejects("deep", "80", "a0", max_depth=0)
    assert loads(b"\x81" * 64 + b"\x00", 64) is not None  # the depth the agent's store uses
    # Nesting costs heap (about 100 bytes a level), not C stack: a recursive decoder dies
    # near 60 levels on the MicroPython device runtime.
    assert loads(b"\x9f" * 200 + b"\xff" * 200, 200) is not None


def test_rejects_indefinite_length_for_ints_and_tags():
    _rejects("indefinite", "1f", "3f", "df 00")


def test_rejects_declared_lengths_beyond_input_before_allocating():
    # Under the 110k heap, allocating any of these would end in MemoryError, not this.
    _rejects(
        "truncated",
        "9b ffffffffffffffff",
        "9a ffffffff 00000000",
        "5a ffffffff 00",
        "5b ffffffffffffffff 00",
        "7b ffffffffffffffff 00",
        "bb ffffffffffffffff 00 00",
        "a2 00 00 00",  # two pairs need four bytes
        "83 01 02",
        "5f 5a ffffffff 00 ff",
    )


def test_rejects_unhashable_map_keys():
    _rejects("map key", "a1 80 00", "a1 a0 00", "a1 c1 80 00", "bf 81 01 00 ff")


def test_rejects_duplicate_map_keys():
    _rejects(
        "duplicate",
        "a2 01 00 01 00",
        "a2 61 61 00 61 61 00",
        "bf 01 00 01 00 ff",
        "a2 01 00 f9 3c00 00",  # 1 and 1.0 are one Python key
        "a2 01 00 f5 00",  # so are 1 and true
    )


def test_rejects_bignum_tags_without_a_byte_string():
    _rejects("bignum", "c2 01", "c3 61 61", "c2 80")
