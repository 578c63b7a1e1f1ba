"""Rule: a request the agent has no heap for is answered 420 "device out of memory" (never
dropped, never 500) and counted (`info` field `starved`); the link lives on and the
client's retry is answered."""

from agent import cbor, frame
from agent import proto as P
from agent.app import App


def _ask(link, message):
    """Feed one plain request; the decoded replies."""
    out = []
    decoder = frame.FrameDecoder(512)
    for reply in link.receive(frame.encode_frame(P.KIND_PLAIN, cbor.dumps(message))):
        for kind, body in decoder.feed(bytes(reply)):
            out.append(cbor.loads(bytes(body)))
    decoder.close()
    return out


class _Starving:
    """The dispatcher, but the heap runs out the first time the session reads its tree (to
    decode the request: before anything ran)."""

    def __init__(self, real):
        self.real = real
        self.calls = 0

    @property
    def tree(self):
        self.calls += 1
        if self.calls == 1:
            raise MemoryError()
        return self.real.tree

    def handle(self, session, request):
        return self.real.handle(session, request)


def test_rule_a_request_without_heap_is_answered_420_counted_and_answered_on_retry():
    app = App({"device": {"devid": "urn:x"}, "open_reads": ["./DevInfo"]}, log=lambda msg: None)
    link = app.new_link("t", False)
    link.dispatcher = _Starving(link.dispatcher)  # the session's own step, not the dispatcher's
    get = {P.K_ID: 7, P.K_OP: P.OP_GET, P.K_URI: "./DevInfo/DevId"}
    (short,) = _ask(link, get)  # no heap: said so
    assert short[P.K_STATUS] == P.S_DEVICE_FULL and short[P.K_MSG] == "device out of memory"
    (answer,) = _ask(link, get)  # the retry
    assert answer[P.K_STATUS] == P.S_OK and answer[P.K_VALUE] == "urn:x"
    (info,) = _ask(link, {P.K_ID: 8, P.K_OP: P.OP_INFO})
    assert info[P.K_VALUE]["starved"] == 1
    link.close()


def test_rule_a_links_replies_are_built_in_its_own_receive_buffer():
    # docs/memory.md "A reply allocates nothing big": the buffer a link lends its session
    # is the one every reply is built in, never a new frame-sized one per reply.
    app = App({"device": {"devid": "urn:x"}}, log=lambda msg: None)
    link = app.new_link("w", False)
    lent = link.workspace
    assert lent is not None
    for rid in (1, 2):
        assert _ask(link, {P.K_ID: rid, P.K_OP: P.OP_INFO})[0][P.K_STATUS] == P.S_OK
        assert link.workspace is lent
    link.close()
