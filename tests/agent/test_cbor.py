"""agent.cbor against RFC 8949 Appendix A, and what it encodes. Rejections: test_cbor_reject.py."""

import gc
import json
import math
from collections import OrderedDict

from agent.cbor import CBORDecodeError, CBOREncodeError, dumps, loads
from agent.cbor_extra import CBORSimpleValue, CBORTag, undefined
from tests.agent.check import raises, tohex, unhex

VECTORS = "tests/vectors/cbor-appendix-a.json"  # the repo root is the CWD under both runners

# Appendix A items given only in diagnostic notation (JSON cannot hold them), decoded.
# Infinity, -Infinity and NaN are checked apart: NaN equals nothing.
DIAGNOSTIC = {
    "undefined": undefined,
    "simple(16)": CBORSimpleValue(16),
    "simple(255)": CBORSimpleValue(255),
    '0("2013-03-21T20:04:00Z")': CBORTag(0, "2013-03-21T20:04:00Z"),
    "1(1363896240)": CBORTag(1, 1363896240),
    "1(1363896240.5)": CBORTag(1, 1363896240.5),
    "23(h'01020304')": CBORTag(23, b"\x01\x02\x03\x04"),
    "24(h'6449455446')": CBORTag(24, b"dIETF"),
    '32("http://www.example.com")': CBORTag(32, "http://www.example.com"),
    "h''": b"",
    "h'01020304'": b"\x01\x02\x03\x04",
    "{1: 2, 3: 4}": {1: 2, 3: 4},
    "(_ h'0102', h'030405')": b"\x01\x02\x03\x04\x05",
}
NOT_WELL_FORMED = ("f818",)  # simple(24): RFC 7049 listed it, RFC 8949 s.3.3 forbids it


def _vectors():
    with open(VECTORS) as f:
        vectors = json.load(f)
    gc.collect()
    return vectors


def _same(got, want):
    # MicroPython's JSON float parsing is not correctly rounded (6.103515625e-05 comes out
    # one ulp low), so floats from the file match within an ulp; the byte-exact re-encoding
    # in test_appendix_a_roundtrip is what proves them.
    if isinstance(want, float):
        return isinstance(got, float) and abs(got - want) <= abs(want) * 4e-16
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want))
    if isinstance(want, dict):
        return isinstance(got, dict) and len(got) == len(want) and all(
            k in got and _same(got[k], want[k]) for k in want)
    return type(got) is type(want) and got == want


def test_appendix_a_decodes():
    checked = 0
    for v in _vectors():
        if v["hex"] in NOT_WELL_FORMED:
            continue
        got = loads(unhex(v["hex"]))
        if "decoded" in v:
            assert _same(got, v["decoded"]), v["hex"]
        elif v["diagnostic"] in ("Infinity", "-Infinity"):
            assert got == (math.inf if v["diagnostic"] == "Infinity" else -math.inf), v["hex"]
        elif v["diagnostic"] == "NaN":
            assert isinstance(got, float) and math.isnan(got), v["hex"]
        else:
            assert v["diagnostic"] in DIAGNOSTIC, "no expected value for " + v["diagnostic"]
            assert _same(got, DIAGNOSTIC[v["diagnostic"]]), v["hex"]
        checked += 1
    assert checked == 81


def _dicts_keep_order():
    return list(dict((k, 0) for k in range(9, 0, -1))) == list(range(9, 0, -1))


def test_appendix_a_roundtrip():
    ordered = _dicts_keep_order()
    for v in _vectors():
        if v["roundtrip"] and v["hex"] not in NOT_WELL_FORMED:
            data = unhex(v["hex"])
            again = dumps(loads(data))
            if again != data:
                # A MicroPython dict iterates in hash order: a map of two or more keys may
                # come back in another order there, the same value in as many bytes.
                assert not ordered and len(again) == len(data) and loads(again) == loads(data), v["hex"]


def test_appendix_a_simple_24_rejected():
    for text in NOT_WELL_FORMED:
        raises(CBORDecodeError, loads, unhex(text))


def test_appendix_a_every_proper_prefix_is_truncated():
    # A CBOR item delimits itself: no proper prefix of one is a whole item.
    for v in _vectors():
        data = unhex(v["hex"])
        for n in range(len(data)):
            exc = raises(CBORDecodeError, loads, data[:n])
            assert str(exc) == "truncated" or v["hex"] in NOT_WELL_FORMED, v["hex"]


def test_encode_ints_take_the_shortest_head():
    for n, text in (
        (0, "00"), (23, "17"), (24, "1818"), (255, "18ff"), (256, "190100"), (65535, "19ffff"),
        (65536, "1a00010000"), (2**31, "1a80000000"), (2**32 - 1, "1affffffff"),
        (2**32, "1b0000000100000000"), (2**64 - 1, "1bffffffffffffffff"),
        (-1, "20"), (-24, "37"), (-25, "3818"), (-257, "390100"), (-(2**64), "3bffffffffffffffff"),
    ):
        assert tohex(dumps(n)) == text, n
        assert loads(unhex(text)) == n


def test_bignums_use_tags_2_and_3():
    assert tohex(dumps(2**64)) == "c249010000000000000000"
    assert tohex(dumps(-(2**64) - 1)) == "c349010000000000000000"
    for n in (2**200 + 12345, -(2**200), 2**71 - 1):
        assert loads(dumps(n)) == n
    assert loads(unhex("c240")) == 0  # an empty magnitude is zero
    assert loads(unhex("c24101")) == 1  # a short bignum decodes; it re-encodes as 01
    assert loads(unhex("c35f4101ff")) == -2  # indefinite byte string inside


def test_encode_floats_take_the_shortest_exact_width():
    # Values as exact arithmetic: MicroPython's parsing of decimal literals may miss by an ulp.
    for x, text in (
        (0.0, "f90000"), (-0.0, "f98000"), (1.5, "f93e00"), (-4.0, "f9c400"),
        (65504.0, "f97bff"), (2.0**-24, "f90001"), (1023 * 2.0**-24, "f903ff"), (2.0**-14, "f90400"),
        (65520.0, "fa477ff000"), (100000.0, "fa47c35000"), (2.0**-149, "fa00000001"),
        ((2 - 2.0**-23) * 2.0**127, "fa7f7fffff"), (2.0**-24 + 2.0**-34, "fa33802000"),
        (1 + 2.0**-11, "fa3f801000"),
        (1.1, "fb3ff199999999999a"), (2.0**1000, "fb7e70000000000000"), (2.0**-1074, "fb0000000000000001"),
        (math.inf, "f97c00"), (-math.inf, "f9fc00"), (math.nan, "f97e00"), (-math.nan, "f97e00"),
    ):
        assert tohex(dumps(x)) == text, text
        if x == x:
            assert loads(unhex(text)) == x, text
    assert math.copysign(1.0, loads(unhex("f98000"))) < 0


def test_encode_containers_and_strings():
    assert dumps((1, [2, 3])) == dumps([1, [2, 3]]) == unhex("82 01 82 02 03")
    ordered = OrderedDict()
    ordered[2] = "a"
    ordered[1] = b"b"
    assert dumps(ordered) == dumps({2: "a", 1: b"b"}) == unhex("a2 01 41 62 02 61 61")
    assert dumps(bytearray(b"\x01")) == dumps(memoryview(b"\x01")) == unhex("41 01")
    assert dumps("\u00fc\u6c34") == unhex("65 c3 bc e6 b0 b4")
    assert dumps([None, True, False, undefined]) == unhex("84 f6 f5 f4 f7")
    text = "x" * 300
    assert dumps(text) == unhex("79 012c") + text.encode()
    assert loads(dumps({"k": [{}, [], b"", ""]})) == {"k": [{}, [], b"", ""]}


def test_tags_and_simple_values():
    assert dumps(CBORTag(32, "u")) == unhex("d8 20 61 75")
    assert dumps(CBORTag(2**64 - 1, None)) == unhex("db ffffffffffffffff f6")
    assert loads(unhex("db ffffffffffffffff f6")) == CBORTag(2**64 - 1, None)
    assert CBORTag(1, [1]) == CBORTag(1, [1]) and CBORTag(1, 2) != CBORTag(2, 2)
    assert hash(CBORTag(1, "a")) == hash(CBORTag(1, "a"))
    assert loads(unhex("a1 c1 01 02")) == {CBORTag(1, 1): 2}  # a hashable tag is a fine key
    assert dumps(CBORSimpleValue(0)) == unhex("e0") and dumps(CBORSimpleValue(19)) == unhex("f3")
    assert dumps(CBORSimpleValue(32)) == unhex("f8 20") and loads(unhex("f8 20")) == CBORSimpleValue(32)
    assert CBORSimpleValue(5) == CBORSimpleValue(5) and CBORSimpleValue(5) != 5
    for bad in (-1, 20, 23, 24, 31, 256):
        raises(ValueError, CBORSimpleValue, bad)
    assert loads(unhex("f7")) is undefined and not undefined and repr(undefined) == "undefined"


def test_decode_indefinite_items():
    assert loads(unhex("7f 62 c3 bc 61 78 ff")) == "\u00fcx"
    assert loads(unhex("5f ff")) == b"" and loads(unhex("7f ff")) == ""
    assert loads(unhex("9f 9f ff bf ff ff")) == [[], {}]
    assert loads(unhex("bf 61 61 9f 01 ff ff")) == {"a": [1]}


def test_decode_accepts_any_buffer_and_copies_out():
    data = bytearray(unhex("82 43 010203 63 616263"))
    for buf in (bytes(data), data, memoryview(data), memoryview(b"\x00" + data)[1:]):
        got = loads(buf)
        assert got == [b"\x01\x02\x03", "abc"] and type(got[0]) is bytes
    got = loads(data)
    data[2] = 0xFF  # the caller's buffer may be reused: results must not share it
    assert got[0] == b"\x01\x02\x03"


def test_valid_utf8_at_the_edges_decodes():
    for text in ("62 c2 80", "63 e0 a0 80", "63 ed 9f bf", "63 ee 80 80", "63 ef bf bf",
                 "64 f0 90 80 80", "64 f4 8f bf bf", "62 df bf", "61 7f"):
        data = unhex(text)
        assert loads(data).encode() == data[1:], text


def test_unencodable_objects():
    for obj in (object(), {1, 2}, [1, object()], {"k": object()}, CBORTag(-1, 0), CBORTag(2**64, 0)):
        exc = raises(CBOREncodeError, dumps, obj)
        assert isinstance(exc, ValueError)


def test_encode_into_gives_the_dumps_bytes():
    from agent.cbor import encode_into

    value = {0: 7, 2: 200, 4: ["./DevInfo", b"\x00" * 300, 1.5, -(2**40)], 7: "\u00fcber"}
    want = dumps(value)
    buf = bytearray(len(want) + 3)
    assert encode_into(value, buf, 3) == len(want) + 3
    assert bytes(buf[3:]) == want
    assert raises(CBOREncodeError, encode_into, value, bytearray(len(want) - 1))


def test_rfc8949_4_2_1_deterministic_maps_sort_keys_bytewise_on_every_runtime():
    # RFC 8949 Appendix A's {1: 2, 3: 4}, built in the order MicroPython's hash order gave.
    backwards = OrderedDict()
    backwards[3] = 4
    backwards[1] = 2
    assert dumps(backwards) == dumps({1: 2, 3: 4}) == unhex("a2 01 02 03 04")
    # Bytewise order of the encoded keys, not length-first (RFC 7049) and not by value:
    # 10 (0a) < 100 (18 64) < 256 (19 0100) < -1 (20) < "z" (61 7a) < "aa" (62 61 61).
    mixed = {"aa": 5, -1: 3, "z": 4, 100: 2, 10: 1, 256: 6}
    assert dumps(mixed) == unhex("a6 0a 01 18 64 02 19 0100 06 20 03 61 7a 04 62 61 61 05")
    # Nested maps are sorted too.
    assert dumps([{"b": 1, "a": {2: 0, 1: 0}}]) == unhex("81 a2 61 61 a2 01 00 02 00 61 62 01")


def test_a_string_over_max_len_is_never_made_and_says_how_far_the_map_was_read():
    data = dumps({0: 7, 4: "v" * 40})
    exc = raises(CBORDecodeError, loads, data, 16, 32)
    assert exc.args[1] == {0: 7}  # the id came first: the 413 can carry it
    assert loads(data, 16, 40) == {0: 7, 4: "v" * 40}  # at the bound: made
    assert len(raises(CBORDecodeError, loads, dumps([b"x" * 33]), 16, 32).args) == 2  # bytes too
    # a claim past the bytes left is "truncated" (400), not too long
    exc = raises(CBORDecodeError, loads, b"\xa1\x04\x78\x40abc", 16, 32)
    assert exc.args == ("truncated",)


class _NoRoomToLoad:
    """Stands for agent.cbor_extra on a heap with no room to load it: any use is MemoryError."""

    def __getattr__(self, name):
        raise MemoryError("no room to load agent.cbor_extra")


def test_rule_common_items_never_load_the_rare_half_and_a_failed_load_is_a_memory_error():
    # The rare half (agent.cbor_extra) is imported on first use: the items of the wire and
    # the tree (ints to 64 bits, ASCII text, bytes, bools, null, arrays, maps) never touch
    # it. When it cannot be loaded, the rare item is a MemoryError, which the session
    # answers 420 "device out of memory": never a wrong value, never 400.
    import sys

    import agent
    from agent import cbor_extra

    common = {0: 7, 1: "./DevInfo/DevId", 2: [True, False, None, -5, 2**32, -(2**64)], 3: b"\x00\x01",
              "k": {"a": [], -1: {}}}
    data = dumps(common)
    try:
        sys.modules["agent.cbor_extra"] = agent.cbor_extra = _NoRoomToLoad()
        assert loads(data) == common and dumps(loads(data)) == data
        for rare in (1.5, 2**64, -(2**64) - 1, undefined, CBORTag(1, 0), CBORSimpleValue(0), object()):
            raises(MemoryError, dumps, rare)
        for rare in ("f9 3c00", "fb 3ff8000000000000", "c1 00", "f7", "e0", "5f 41 00 ff", "62 c3 bc"):
            raises(MemoryError, loads, unhex(rare))
    finally:
        sys.modules["agent.cbor_extra"] = agent.cbor_extra = cbor_extra
    assert loads(unhex("f9 3c00")) == 1.0 and loads(unhex("62 c3 bc")) == "\u00fc"  # loaded: as before
