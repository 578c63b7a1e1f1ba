"""agent.frame: COBS against the Cheshire & Baker (Wikipedia) table, CRC, the streaming decoder."""

import binascii

from agent import proto
from agent.cobs import cobs_decode, cobs_encode
from agent.frame import FrameDecoder, encode_frame, encoded_bound
from tests.agent.check import raises, tohex, unhex


def _seq(first, last):
    return bytes(range(first, last + 1))


# (decoded, encoded) pairs: the standard examples, exact bytes.
def _cobs_vectors():
    return [
        (b"", unhex("01")),
        (unhex("00"), unhex("01 01")),
        (unhex("00 00"), unhex("01 01 01")),
        (unhex("00 11 00"), unhex("01 02 11 01")),
        (unhex("11 22 00 33"), unhex("03 11 22 02 33")),
        (unhex("11 22 33 44"), unhex("05 11 22 33 44")),
        (unhex("11 00 00 00"), unhex("02 11 01 01 01")),
        (_seq(0x01, 0xFE), b"\xff" + _seq(0x01, 0xFE)),
        (_seq(0x00, 0xFE), b"\x01\xff" + _seq(0x01, 0xFE)),
        (_seq(0x01, 0xFF), b"\xff" + _seq(0x01, 0xFE) + b"\x02\xff"),
        (_seq(0x02, 0xFF) + b"\x00", b"\xff" + _seq(0x02, 0xFF) + b"\x01\x01"),
        (_seq(0x03, 0xFF) + b"\x00\x01", b"\xfe" + _seq(0x03, 0xFF) + b"\x02\x01"),
    ]


def _frames(decoder, data):
    # bodies are views into the decoder's buffer: copy each before asking for the next
    return [(kind, bytes(body)) for kind, body in decoder.feed(data)]


def test_cobs_encode_standard_examples():
    for decoded, encoded in _cobs_vectors():
        assert tohex(cobs_encode(decoded)) == tohex(encoded), tohex(decoded)


def test_cobs_decode_standard_examples():
    for decoded, encoded in _cobs_vectors():
        assert cobs_decode(encoded) == decoded, tohex(encoded)
        assert cobs_decode(memoryview(encoded)) == decoded
        assert cobs_decode(bytearray(encoded)) == decoded


def test_cobs_encode_accepts_any_buffer():
    data = unhex("11 22 00 33")
    assert cobs_encode(bytearray(data)) == unhex("03 11 22 02 33")
    assert cobs_encode(memoryview(data)) == unhex("03 11 22 02 33")


def test_cobs_round_trip_around_block_edges():
    for n in (1, 2, 253, 254, 255, 256, 507, 508, 509, 600):
        for fill in (0x00, 0x5A):
            data = bytes([fill]) * n
            assert cobs_decode(cobs_encode(data)) == data
        data = bytes([(j * 7 + 1) % 256 for j in range(n)])  # a zero every 256 bytes
        enc = cobs_encode(data)
        assert b"\x00" not in enc
        assert len(enc) <= encoded_bound(n)
        assert cobs_decode(enc) == data


def test_cobs_decode_rejects_malformed():
    raises(ValueError, cobs_decode, b"")
    raises(ValueError, cobs_decode, unhex("03 11 00 33"))  # a zero inside
    raises(ValueError, cobs_decode, unhex("05 11 22 33"))  # code runs past the end
    raises(ValueError, cobs_decode, unhex("02 11 03 22"))
    raises(ValueError, cobs_decode, b"\xff" + _seq(1, 200))


def test_cobs_decode_accepts_trailing_01_after_full_block():
    # Not what cobs_encode produces, but the same data: decoders agree on it.
    assert cobs_decode(b"\xff" + _seq(1, 254) + b"\x01") == _seq(1, 254)


def test_crc32_known_value():
    assert binascii.crc32(b"123456789") == 0xCBF43926
    assert binascii.crc32(b"") == 0


def test_encode_frame_layout():
    frame = encode_frame(proto.KIND_PLAIN, b"\xa0")
    # content 01 a0 + CRC-32(01 a0) LE, COBS-encoded, then 00
    crc = binascii.crc32(b"\x01\xa0")
    content = b"\x01\xa0" + bytes([(crc >> (8 * j)) & 0xFF for j in range(4)])
    assert frame == cobs_encode(content) + b"\x00"
    assert frame[-1] == 0 and b"\x00" not in frame[:-1]


def test_encode_frame_matches_protocol_doc_example():
    # docs/protocol.md s.2: the Get request {0: 7, 1: 3, 3: "./DevDetail/FwV"}
    body = unhex("a3 00 07 01 03 03 6f 2e 2f 44 65 76 44 65 74 61 69 6c 2f 46 77 56")
    wire = unhex(
        "03 01 a3 19 07 01 03 03 6f 2e 2f 44 65 76 44 65 74 61 69 6c 2f 46 77 56 22 42 ab 93 00"
    )
    assert tohex(encode_frame(proto.KIND_PLAIN, body)) == tohex(wire)
    assert _frames(FrameDecoder(), wire) == [(proto.KIND_PLAIN, body)]


def test_encode_frame_refuses_content_over_max_frame():
    encode_frame(1, bytes(proto.MAX_FRAME - 5))
    raises(ValueError, encode_frame, 1, bytes(proto.MAX_FRAME - 4))
    raises(ValueError, encode_frame, 1, b"123456", max_frame=10)
    raises(ValueError, encode_frame, 256, b"")
    raises(ValueError, encode_frame, -1, b"")


def test_frame_round_trip():
    bodies = [b"", b"\x00", b"hello", bytes(300), _seq(0, 255) + _seq(0, 255)]
    wire = b"".join(encode_frame(k % 4 + 1, b) for k, b in enumerate(bodies))
    dec = FrameDecoder()
    assert _frames(dec, wire) == [(k % 4 + 1, b) for k, b in enumerate(bodies)]
    assert dec.frames == len(bodies)
    assert dec.bad_crc == dec.bad_cobs == dec.oversized == 0


def test_frame_of_max_size_round_trips():
    # no zeros: the most COBS overhead there is
    body = bytes([(j % 255) + 1 for j in range(proto.MAX_FRAME - 5)])
    wire = encode_frame(2, body)
    assert len(wire) - 1 <= encoded_bound(proto.MAX_FRAME)
    assert _frames(FrameDecoder(), wire) == [(2, body)]


def test_body_is_a_view_valid_until_next_frame():
    dec = FrameDecoder()
    seen = []
    for kind, body in dec.feed(encode_frame(1, b"first") + encode_frame(1, b"other")):
        assert isinstance(body, memoryview)
        seen.append(bytes(body))
    assert seen == [b"first", b"other"]


def test_feed_accepts_bytes_bytearray_memoryview():
    wire = encode_frame(1, b"abc") + encode_frame(1, b"\x00\x00")
    want = [(1, b"abc"), (1, b"\x00\x00")]
    assert _frames(FrameDecoder(), wire) == want
    assert _frames(FrameDecoder(), bytearray(wire)) == want
    assert _frames(FrameDecoder(), memoryview(wire)) == want


def test_one_byte_at_a_time_equals_all_at_once():
    wire = (
        b"\x00garbage\x00"
        + encode_frame(1, b"one")
        + b"\x00"
        + encode_frame(3, bytes(600))
        + b"\x13\x37\x00"
        + encode_frame(1, _seq(1, 255) * 2)
    )
    whole = _frames(FrameDecoder(), wire)
    assert len(whole) == 3
    dec = FrameDecoder()
    single = []
    for j in range(len(wire)):
        single.extend(_frames(dec, wire[j : j + 1]))
    assert single == whole
    # and in uneven chunks
    dec = FrameDecoder()
    chunked = []
    j = 0
    step = 1
    while j < len(wire):
        chunked.extend(_frames(dec, wire[j : j + step]))
        j += step
        step = step * 3 % 97 + 1
    assert chunked == whole


def test_resync_after_garbage_before_and_between_frames():
    good1 = encode_frame(1, b"first")
    good2 = encode_frame(1, b"second")
    wire = b"\x17\x42\xff\x01" + b"\x00" + good1 + b"\x99" * 40 + b"\x00" + good2
    dec = FrameDecoder()
    assert _frames(dec, wire) == [(1, b"first"), (1, b"second")]
    assert dec.frames == 2
    assert dec.bad_crc + dec.bad_cobs == 2  # each garbage run is one dropped frame


def test_garbage_glued_to_a_frame_loses_only_that_frame():
    # No 0x00 between garbage and frame: they read as one frame, which fails its CRC.
    dec = FrameDecoder()
    wire = b"\x05abc" + encode_frame(1, b"lost") + encode_frame(1, b"kept")
    assert _frames(dec, wire) == [(1, b"kept")]
    assert dec.bad_crc + dec.bad_cobs == 1


def test_bad_crc_dropped_counted_next_frame_arrives():
    bad = bytearray(encode_frame(1, b"payload"))
    bad[3] ^= 0x01  # a data byte, still non-zero
    assert bad[3] != 0
    dec = FrameDecoder()
    assert _frames(dec, bytes(bad) + encode_frame(1, b"next")) == [(1, b"next")]
    assert dec.bad_crc == 1 and dec.frames == 1 and dec.bad_cobs == 0


def test_malformed_cobs_and_short_frames_counted():
    dec = FrameDecoder()
    # code 05 promises 4 bytes, the frame ends after 2; then content of 3 bytes (< kind + CRC)
    wire = b"\x05ab\x00" + cobs_encode(b"\x01\x02\x03") + b"\x00" + encode_frame(1, b"ok")
    assert _frames(dec, wire) == [(1, b"ok")]
    assert dec.bad_cobs == 2 and dec.bad_crc == 0


def test_empty_frames_silently_skipped():
    dec = FrameDecoder()
    wire = b"\x00\x00\x00" + encode_frame(1, b"x") + b"\x00\x00" + encode_frame(1, b"y")
    assert _frames(dec, wire) == [(1, b"x"), (1, b"y")]
    assert dec.bad_cobs == dec.bad_crc == dec.oversized == 0


def test_oversized_frame_dropped_without_growth():
    dec = FrameDecoder(max_frame=64)
    buf = dec._buf
    big = encode_frame(1, bytes(range(1, 200)), max_frame=1000)
    wire = big + encode_frame(1, b"after")
    got = []
    for j in range(0, len(wire), 7):
        got.extend(_frames(dec, wire[j : j + 7]))
        assert dec.buffered <= 64
    assert got == [(1, b"after")]
    assert dec.oversized == 1 and dec.frames == 1
    assert dec._buf is buf and len(buf) == 64


def test_oversized_by_zeros_dropped():
    # All-zero content costs one COBS byte per byte: caught on the decoded size.
    dec = FrameDecoder(max_frame=64)
    wire = encode_frame(1, bytes(80), max_frame=1000) + encode_frame(1, bytes(10))
    assert _frames(dec, wire) == [(1, bytes(10))]
    assert dec.oversized == 1


def test_exactly_max_frame_accepted():
    dec = FrameDecoder(max_frame=64)
    for body in (bytes(59), bytes(range(1, 60))):
        assert _frames(dec, encode_frame(1, body, max_frame=64)) == [(1, body)]
    assert _frames(dec, encode_frame(1, bytes(60), max_frame=65)) == []
    assert dec.oversized == 1


def test_endless_garbage_keeps_buffer_bounded():
    dec = FrameDecoder(max_frame=32)
    junk = bytes(range(1, 256))
    for _ in range(20):
        assert _frames(dec, junk) == []
        assert dec.buffered <= 32
    assert _frames(dec, b"\x00" + encode_frame(1, b"hi")) == [(1, b"hi")]
    assert dec.oversized == 1


def test_default_max_frame_from_proto():
    assert FrameDecoder().max_frame == proto.MAX_FRAME
    assert encoded_bound(proto.MAX_FRAME) == proto.MAX_FRAME + proto.MAX_FRAME // 254 + 1


def test_frame_into_builds_the_encode_frame_bytes_in_given_buffers():
    from agent.frame import frame_into, out_buffer

    content, out = bytearray(proto.MAX_FRAME), out_buffer()
    for body in (b"", b"\x00", bytes(range(256)) * 3):
        content[0] = proto.KIND_PLAIN
        content[1 : 1 + len(body)] = body
        wire = frame_into(content, 1 + len(body), out)
        assert bytes(wire) == encode_frame(proto.KIND_PLAIN, body)
