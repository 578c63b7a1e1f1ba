"""Replies in pieces (docs/protocol.md 3): a reply asked for in pieces is the same reply, run
once, fetched piece by piece from the reply cache; bad chunk requests get 400.
Runs on CPython and on the device runtime (a real App and Link, frames in and out)."""

from agent import cbor
from agent import frame
from agent import proto as P
from agent.app import App

CONFIG = {"device": {"devid": "urn:test:pieces"}, "acls": {".": "Add=*&Get=*&Replace=*&Delete=*"}}


def _link():
    app = App(CONFIG, None, True, log=lambda msg: None)
    link = app.new_link("test")
    _ask(link, {P.K_ID: 1, P.K_OP: P.OP_HELLO, P.K_SERVER: "S"})
    return app, link


def _ask(link, message):
    replies = []
    for reply in link.receive(frame.encode_frame(P.KIND_PLAIN, cbor.dumps(message))):
        dec = frame.FrameDecoder(P.MAX_FRAME)
        for _, body in dec.feed(bytes(reply)):
            replies.append(cbor.loads(bytes(body), P.MAX_DEPTH))
    assert len(replies) == 1, replies
    return replies[0]


def _whole(link, rid, chunk, first):
    """Every piece after the first, by id and offset only; the joined body, decoded."""
    body = first[P.K_PART]
    while len(body) < first[P.K_TOTAL]:
        piece = _ask(link, {P.K_ID: rid, P.K_CHUNK: chunk, P.K_OFFSET: len(body)})
        assert piece[P.K_STATUS] == P.S_PARTIAL and piece[P.K_OFFSET] == len(body), piece
        assert len(piece[P.K_PART]) <= chunk
        body += piece[P.K_PART]
    return cbor.loads(body, P.MAX_DEPTH)


def test_a_reply_in_pieces_is_the_reply():
    app, link = _link()
    whole = _ask(link, {P.K_ID: 2, P.K_OP: P.OP_GET, P.K_URI: "./DevInfo?list=StructData"})
    first = _ask(link, {P.K_ID: 3, P.K_OP: P.OP_GET, P.K_URI: "./DevInfo?list=StructData",
                        P.K_CHUNK: 16, P.K_OFFSET: 0})
    assert first[P.K_STATUS] == P.S_PARTIAL and len(first[P.K_PART]) == 16
    got = _whole(link, 3, 16, first)
    assert got[P.K_VALUE] == whole[P.K_VALUE] and got[P.K_ID] == 3 and got[P.K_STATUS] == 200


def test_a_write_in_pieces_runs_once():
    app, link = _link()
    first = _ask(link, {P.K_ID: 4, P.K_OP: P.OP_ADD, P.K_URI: "./P", P.K_FORMAT: "node",
                        P.K_CHUNK: 8, P.K_OFFSET: 0})
    assert _whole(link, 4, 8, first)[P.K_STATUS] == 200
    executed = link.executed
    again = _ask(link, {P.K_ID: 4, P.K_OP: P.OP_ADD, P.K_URI: "./P", P.K_FORMAT: "node",
                        P.K_CHUNK: 8, P.K_OFFSET: 0})  # a retry of the first piece
    assert again == first and link.executed == executed


def test_bad_piece_requests_get_400_and_a_huge_chunk_still_fits_a_frame():
    app, link = _link()
    for chunk, offset in ((4, 0), (-1, 0), (16, -1), (True, 0), ("16", 0)):
        reply = _ask(link, {P.K_ID: 5, P.K_OP: P.OP_INFO, P.K_CHUNK: chunk, P.K_OFFSET: offset})
        assert reply[P.K_STATUS] == 400, (chunk, offset, reply)
    first = _ask(link, {P.K_ID: 6, P.K_OP: P.OP_INFO, P.K_CHUNK: 16, P.K_OFFSET: 0})
    past = _ask(link, {P.K_ID: 6, P.K_CHUNK: 16, P.K_OFFSET: first[P.K_TOTAL] + 1})
    assert past[P.K_STATUS] == 400
    big = _ask(link, {P.K_ID: 7, P.K_OP: P.OP_GET, P.K_URI: ".?list=StructData", P.K_LIMIT: 1000,
                      P.K_CHUNK: 1 << 20, P.K_OFFSET: 0})
    assert big[P.K_STATUS] == P.S_PARTIAL and len(big[P.K_PART]) <= P.MAX_FRAME - 64
