"""Frames and messages (docs/protocol.md sections 2-4): what the agent answers to bytes,
good and bad, and that it keeps serving after each."""

import cbor2

from dmagent.agent import proto as P
from dmagent.host_tools.client import wire
from dmagent.host_tools.conformance.registry import Failed, check

W = "wire"


def _info_answers(t):
    """The link still serves: an info request is answered 200."""
    t.ok(P.OP_INFO, who=None)


def _bad(t, body, what):
    replies = t.raw_plain(body)
    t.true(replies, "%s: no answer (a 400 is due)" % what)
    t.true(isinstance(replies[0], dict) and replies[0].get(P.K_STATUS) == 400,
           "%s: expected a 400 answer, got %r" % (what, replies[0]))
    _info_answers(t)
    return replies[0]


@check("protocol.md 4 info: answers 200 with proto 1 and the info map's keys", W)
def info_map(t):
    info = t.ok(P.OP_INFO, who=None)[P.K_VALUE]
    missing = [k for k in ("proto", "agent", "runtime", "devid", "max_frame", "principal", "link",
                           "rejected", "starved") if k not in info]
    t.true(not missing, "info lacks %s" % ", ".join(missing))
    t.equal(info["proto"], P.PROTOCOL_VERSION, "proto")


@check("protocol.md 2 frames: max_frame in info is an integer of at least 256 bytes", W)
def max_frame(t):
    value = t.ok(P.OP_INFO, who=None)[P.K_VALUE]["max_frame"]
    t.true(type(value) is int and value >= 256, "max_frame %r" % (value,))


@check("protocol.md 3 request ids: a response carries its request's id", W)
def echo_id(t):
    msg = t.message(P.OP_INFO)
    t.equal(t.send(msg).get(P.K_ID), msg[P.K_ID], "id")


@check("protocol.md 2 frames: a frame with a bad CRC is dropped, not answered", W)
def bad_crc(t):
    frame = bytearray(wire.encode_message(t.message(P.OP_INFO)))
    frame[-2] ^= 0x01  # the CRC's last byte (before the delimiter)
    t.true(not t.raw(bytes(frame)), "a frame with a bad CRC was answered")
    _info_answers(t)


@check("protocol.md 2 frames: bytes that are not COBS are dropped, not answered", W)
def bad_cobs(t):
    t.true(not t.raw(b"\x05\x01\x02\x00"), "a bad COBS frame was answered")
    _info_answers(t)


@check("protocol.md 2 frames: a frame of a kind the agent does not serve is answered 400", W)
def unknown_kind(t):
    got = t.raw(wire.encode_frame(0x07, cbor2.dumps({0: 1, 1: 2})), frames=1)
    t.true(got, "a frame of kind 0x07 got no answer")
    body = cbor2.loads(got[0][1])
    t.equal(body.get(P.K_STATUS), 400, "status")


@check("protocol.md 2 frames: empty frames (extra 0x00) are skipped, the next is answered", W)
def empty_frames(t):
    msg = t.message(P.OP_INFO)
    got = t.raw(b"\x00\x00\x00" + wire.encode_message(msg), frames=1)
    t.true(got and cbor2.loads(got[0][1]).get(P.K_ID) == msg[P.K_ID], "no answer after empty frames")


@check("protocol.md 2 frames: after line garbage and a 0x00 the receiver resynchronises", W)
def resync(t):
    msg = t.message(P.OP_INFO)
    got = t.raw(b"\x13\x37garbage\xff\xfe" + b"\x00" + wire.encode_message(msg), frames=1)
    t.true(got and cbor2.loads(got[0][1]).get(P.K_ID) == msg[P.K_ID], "no answer after garbage")


@check("protocol.md 2 frames: a frame longer than max_frame is dropped, and the link serves on", W)
def oversize(t):
    limit = t.ok(P.OP_INFO, who=None)[P.K_VALUE]["max_frame"]
    body = cbor2.dumps({0: 1, 1: P.OP_INFO, 99: b"x" * (limit + 64)})
    t.true(not t.raw(wire.encode_frame(P.KIND_PLAIN, body)), "an oversized frame was answered")
    _info_answers(t)


@check("protocol.md 2 frames: two frames in one write are both answered, in order", W)
def two_in_one(t):
    a, b = t.message(P.OP_INFO), t.message(P.OP_INFO)
    got = t.raw(wire.encode_message(a) + wire.encode_message(b), frames=2)
    ids = [cbor2.loads(body).get(P.K_ID) for _, body in got]
    t.equal(ids, [a[P.K_ID], b[P.K_ID]], "answered ids")


@check("protocol.md 2 frames: a frame arriving a byte at a time is answered", W)
def byte_by_byte(t):
    msg = t.message(P.OP_INFO)
    data = wire.encode_message(msg)
    for i in range(len(data) - 1):
        t.target.transport.write(data[i:i + 1])
    got = t.raw(data[-1:], frames=1)
    t.true(got and cbor2.loads(got[0][1]).get(P.K_ID) == msg[P.K_ID], "no answer")


@check("protocol.md 3 messages: a body that is not well-formed CBOR is 400, without an id", W)
def bad_cbor(t):
    reply = _bad(t, b"\xa2\x00", "truncated CBOR")
    t.true(P.K_ID not in reply, "the answer to unreadable CBOR carries an id")


@check("protocol.md 3 messages: trailing bytes after the one CBOR item are 400", W)
def trailing(t):
    _bad(t, cbor2.dumps({0: 1, 1: P.OP_INFO}) + b"\x00", "trailing byte")


@check("protocol.md 3 messages: nesting deeper than 16 is 400", W)
def deep(t):
    _bad(t, b"\xa2\x00\x01\x01" + b"\x81" * 40 + b"\x02", "40 nested arrays")


@check("protocol.md 3 messages: a declared length longer than the bytes left is 400, nothing allocated", W)
def huge_length(t):
    _bad(t, b"\xa1\x04\x5a\x7f\xff\xff\xff", "a 2 GiB byte string in 7 bytes")


@check("protocol.md 3 messages: a request that is not a map is 400", W)
def not_a_map(t):
    _bad(t, cbor2.dumps([1, 2, 3]), "an array")


@check("protocol.md 3 messages: unknown field keys are ignored", W)
def unknown_keys(t):
    msg = t.message(P.OP_INFO)
    msg[99] = "later versions"
    t.expect(t.send(msg), 200)


@check("protocol.md 4 ops: a request without an op is 400", W)
def no_op(t):
    msg = t.message(P.OP_INFO)
    del msg[P.K_OP]
    t.expect(t.send(msg), 400)


@check("protocol.md 4 ops: an op that is not an integer (text, bool) is 400", W)
def op_not_int(t):
    for bad in ("get", True):
        msg = t.message(P.OP_INFO)
        msg[P.K_OP] = bad
        t.expect(t.send(msg), 400, what="op %r" % (bad,))


@check("protocol.md 6 status 406: an unknown op is 406", W)
def unknown_op(t):
    t.expect(t.req(99), 406, what="op 99")
    t.expect(t.req(0), 406, what="op 0")


@check("protocol.md 4 get: a get without a uri, or a uri that is not text, is 400", W)
def uri_missing(t):
    t.expect(t.req(P.OP_GET), 400, what="no uri")
    t.expect(t.req(P.OP_GET, uri=5), 400, what="uri 5")
    t.expect(t.req(P.OP_GET, uri=""), 400, what="empty uri")


@check("protocol.md 3 request ids: a resent request id is answered from the cache, not run again", W)
def replay_id(t):
    d = t.dir()
    first = t.message(P.OP_ADD, uri=d + "/Once", value=1, format="int")
    t.expect(t.send(first), 200)
    again = dict(first)
    again[P.K_URI] = d + "/Twice"  # the same id: the agent must not look at the rest
    answer = t.send(again)
    t.expect(answer, 200, what="the resent id")
    t.expect(t.get(d + "/Twice"), 404, what="the resent request must not run")


@check("protocol.md 3 request ids: the cached answer is the first answer, status and all", W)
def replay_same_answer(t):
    d = t.dir()
    first = t.message(P.OP_ADD, uri=d + "/X", value=1, format="int")
    t.expect(t.send(first), 200)
    t.expect(t.send(first), 200, what="a resend gets the first answer, not 418")


@check("RFC 8949 4.2.1 deterministic encoding: every response map's keys in bytewise order", W)
def deterministic(t):
    d = t.dir()
    t.leaf(d + "/L", "v", "chr")
    replies = []
    for msg in (t.message(P.OP_GET, uri=d + "/L"), t.message(P.OP_ACL, uri=d + "/L"),
                t.message(P.OP_INFO), t.message(P.OP_GET, uri=d + "/Missing")):
        got = t.raw(wire.encode_message(msg), frames=1)
        t.true(got, "no answer to %r" % msg)
        replies.append(got[0][1])
    for body in replies:
        _check_sorted(body)


def _check_sorted(body):
    """Walk one CBOR item; Failed at the first map whose encoded keys are not ascending."""
    pos = _walk(body, 0)
    if pos != len(body):
        raise Failed("trailing bytes in a response")


def _walk(data, pos):
    head = data[pos]
    major, info = head >> 5, head & 0x1F
    pos += 1
    if info < 24:
        arg = info
    elif info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        arg = int.from_bytes(data[pos:pos + size], "big")
        pos += size
    else:
        raise Failed("indefinite or reserved length in a response (not deterministic)")
    if major in (2, 3):
        return pos + arg
    if major == 4:
        for _ in range(arg):
            pos = _walk(data, pos)
        return pos
    if major == 5:
        last = None
        for _ in range(arg):
            start = pos
            pos = _walk(data, pos)
            key = bytes(data[start:pos])
            if last is not None and key <= last:
                raise Failed("map keys out of order: %s after %s" % (key.hex(), last.hex()))
            last = key
            pos = _walk(data, pos)
        return pos
    if major == 6:
        return _walk(data, pos)
    return pos
