"""Property tests for agent.frame against the host's own tools: the `cobs` package and zlib.

The agent's COBS must agree with the `cobs` package byte for byte, and the streaming
FrameDecoder, fed any bytes in any chunks, must yield exactly the frames that a plain
split-at-0x00 reference decoder (cobs + zlib) finds, with a buffer that never grows.
"""

import zlib

from cobs import cobs
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz import examples

from dmagent.agent import proto
from dmagent.agent.cobs import cobs_decode, cobs_encode
from dmagent.agent.frame import FrameDecoder, encode_frame

SETTINGS = settings(max_examples=examples(200), deadline=None)

bodies = st.binary(max_size=700) | st.lists(st.sampled_from([0, 1, 0xFF]), max_size=600).map(bytes)
kinds = st.integers(min_value=0, max_value=255)


def chunked(data, cuts):
    """data split at the given cut points (any order, any values)."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, start = [], 0
    for p in points + [len(data)]:
        out.append(data[start:p])
        start = p
    return out


def feed_all(decoder, chunks):
    got = []
    for chunk in chunks:
        for kind, body in decoder.feed(chunk):
            got.append((kind, bytes(body)))
        assert decoder.buffered <= decoder.max_frame
        assert len(decoder._buf) == decoder.max_frame
    return got


def reference_frames(wire, max_frame):
    """What a receiver must accept: split at 0x00, COBS-decode, bound, CRC (zlib)."""
    frames = []
    for piece in wire.split(b"\x00")[:-1]:  # the part after the last 0x00 is unfinished
        if not piece:
            continue
        try:
            content = cobs.decode(piece)
        except cobs.DecodeError:
            continue
        if len(content) < 5 or len(content) > max_frame:
            continue
        if zlib.crc32(content[:-4]) != int.from_bytes(content[-4:], "little"):
            continue
        frames.append((content[0], content[1:-4]))
    return frames


@SETTINGS
@given(st.binary(max_size=1200))
def test_cobs_matches_cobs_package(data):
    enc = cobs_encode(data)
    assert enc == cobs.encode(data)
    assert cobs_decode(enc) == data


@SETTINGS
@given(st.binary(max_size=300))
def test_cobs_decode_agrees_with_cobs_package_on_any_input(data):
    try:
        want = cobs.decode(data)
    except cobs.DecodeError:
        want = None
    try:
        got = cobs_decode(data)
    except ValueError:
        got = None
    if data == b"":
        assert got is None  # ours is strict: nothing encodes to zero bytes
    else:
        assert got == want


@SETTINGS
@given(st.lists(st.tuples(kinds, bodies), max_size=6), st.lists(st.integers(0, 10**6), max_size=12))
def test_frames_round_trip_any_chunking(frames, cuts):
    wire = b"".join(encode_frame(k, b) for k, b in frames)
    dec = FrameDecoder()
    assert feed_all(dec, chunked(wire, cuts)) == frames
    assert dec.frames == len(frames)
    assert dec.bad_crc == dec.bad_cobs == dec.oversized == 0


@SETTINGS
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("frame"), kinds, bodies),
            st.tuples(st.just("garbage"), st.binary(min_size=1, max_size=300), st.booleans()),
        ),
        max_size=8,
    ),
    st.lists(st.integers(0, 10**6), max_size=12),
)
def test_garbage_never_loses_a_separated_frame_nor_invents_one(parts, cuts):
    wire = b""
    sent, must_arrive = [], []
    separated = True  # start of stream, or right after a 0x00
    for part in parts:
        if part[0] == "frame":
            _, kind, body = part
            wire += encode_frame(kind, body)
            sent.append((kind, body))
            if separated:
                must_arrive.append((kind, body))
            separated = True
        else:
            _, junk, then_flush = part
            wire += junk + (b"\x00" if then_flush else b"")
            separated = then_flush or junk.endswith(b"\x00")
    got = feed_all(FrameDecoder(), chunked(wire, cuts))
    # nothing yielded that was not sent, in order
    it = iter(sent)
    assert all(any(g == s for s in it) for g in got), "a frame was yielded that was never sent"
    # every frame with a 0x00 between it and any garbage before it arrives
    it = iter(got)
    assert all(any(g == m for g in it) for m in must_arrive), "a separated frame was lost"


@SETTINGS
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=200),
            st.tuples(kinds, bodies).map(lambda kb: encode_frame(kb[0], kb[1], max_frame=10**6)),
        ),
        max_size=10,
    ),
    st.integers(min_value=5, max_value=700),
    st.lists(st.integers(0, 10**6), max_size=16),
)
def test_decoder_equals_split_reference_on_any_bytes(pieces, max_frame, cuts):
    wire = b"".join(pieces) + b"\x00"  # end the last frame too, so every drop is counted
    dec = FrameDecoder(max_frame=max_frame)
    got = feed_all(dec, chunked(wire, cuts))
    assert got == reference_frames(wire, max_frame)
    dropped = sum(1 for p in wire.split(b"\x00")[:-1] if p) - len(got)
    assert dec.bad_crc + dec.bad_cobs + dec.oversized == dropped


@SETTINGS
@given(st.binary(min_size=1, max_size=4000), st.integers(min_value=5, max_value=300))
def test_buffer_never_exceeds_bound_byte_by_byte(data, max_frame):
    dec = FrameDecoder(max_frame=max_frame)
    for j in range(len(data)):
        for _ in dec.feed(data[j : j + 1]):
            pass
        assert dec.buffered <= max_frame
    assert len(dec._buf) == max_frame


def test_default_decoder_uses_proto_bound():
    assert FrameDecoder().max_frame == proto.MAX_FRAME
