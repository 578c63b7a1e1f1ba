"""Rule: a reply past the frame bound is never sent: it is 413 with how to get it (?list=
paging), and a reply one byte short of the bound goes out whole. A board's Exec handler gives
the long result. Its own module: 2 KB in one piece want a fresh board-sized heap. Plain asserts.
"""

from agent import frame

# As a board does (boards/unix/main.py): frame buffers first, while the heap is whole.
frame.reserve(3)

from agent import cbor  # noqa: E402
from agent import proto as P  # noqa: E402
from agent.app import App  # noqa: E402
from tests.agent.edge_helpers import ask as _ask  # noqa: E402

_CONFIG = {"device": {"devid": "urn:t"}, "accounts": [{"server_id": "A"}]}


def test_rule_a_reply_past_the_frame_bound_is_413_and_says_how_to_get_it():
    app = App(_CONFIG, insecure=True, log=lambda msg: None)
    link = app.new_link("one", False)
    assert _ask(link, {P.K_ID: 1, P.K_OP: P.OP_HELLO, P.K_SERVER: "A"})[P.K_STATUS] == P.S_OK
    limit = P.MAX_FRAME - 1 - (4 + P.SEQ_LEN + P.TAG_LEN)  # the body a reply frame leaves room for
    app.tree.put("./Run", 0, "int", acl="Exec=A")
    result = ["x"]
    app.tree.on_exec("./Run", lambda tree, who, data: (200, result[0]))  # a board's handler
    for rid, extra, fits in ((60, 0, True), (61, 1, False)):
        head = len(cbor.dumps({P.K_ID: rid, P.K_STATUS: 200, P.K_VALUE: ""})) + 2  # + the text's length
        result[0] = "r" * (limit - head + extra)
        wire = frame.encode_frame(P.KIND_PLAIN, cbor.dumps({P.K_ID: rid, P.K_OP: P.OP_EXEC, P.K_URI: "./Run"}))
        decoder = frame.FrameDecoder(P.MAX_FRAME)  # replies this long
        ((kind, body),) = [f for reply in link.receive(wire) for f in decoder.feed(bytes(reply))]
        r = cbor.loads(bytes(body))
        decoder.close()
        if fits:
            assert r[P.K_STATUS] == P.S_OK and r[P.K_VALUE] == result[0], r[P.K_STATUS]
        else:
            assert r == {P.K_ID: rid, P.K_STATUS: P.S_TOO_LARGE,
                         P.K_MSG: "response exceeds the frame bound; use ?list= paging"}, r
    link.close()
