"""Rule: out of heap, a handshake gets HS_ERR 420 and a sealed request a sealed 420 (one not
yet opened: nothing, as it cannot be answered sealed), logged and counted, and the retry is
taken. The heap's edge cannot be reached on demand here: the one call that needs heap raises
MemoryError once, as test_session_heap does. Plain asserts.
"""

from agent import frame

# As a board does (boards/unix/main.py): frame buffers first, while the heap is whole.
frame.reserve(3)

import gc  # noqa: E402

from agent import cbor  # noqa: E402
from agent import proto as P  # noqa: E402
from agent.app import App  # noqa: E402
from agent.frame import encode_frame  # noqa: E402
from tests.agent.sealed_peer import Peer, _peers  # noqa: E402
from tests.agent.spec_client import KEY_A, KEY_GW, Client  # noqa: E402

CONFIG = {
    "device": {"devid": "urn:dmagent:sec"},
    "accounts": [{"server_id": "ServerA"}, {"server_id": "ServerB"}],
    "security": {"gateways": {"GW1": ["ServerB"]}},
}
KEYS = {"ServerA": KEY_A, "GW1": KEY_GW}


def _app(log=None, insecure=False, config=CONFIG):
    while _peers:
        _peers.pop().close()
    gc.collect()  # the last test's App: a board-sized heap holds one at a time
    return App(config, None, insecure, log or (lambda msg: None), KEYS)


def _once(obj, name):
    """obj.name raises MemoryError on its next call, then is itself again."""
    real = getattr(obj, name)
    calls = [0]

    def starving(*args):
        calls[0] += 1
        if calls[0] == 1:
            raise MemoryError()
        return real(*args)

    setattr(obj, name, starving)


def _collecting(fn, *args, **kw):
    """(fn's result, whether a garbage collection ran meanwhile: None where that cannot be
    seen, as on MicroPython; CPython tells through gc.callbacks)."""
    track = getattr(gc, "callbacks", None)
    phases = []
    if track is not None:
        track.append(lambda phase, info: phases.append(phase))
        gc.disable()  # only a collection the agent asks for
    try:
        result = fn(*args, **kw)
    finally:
        if track is not None:
            gc.enable()
            track.pop()
    return result, ("start" in phases) if track is not None else None


def test_rule_a_handshake_without_heap_gets_hs_err_420_logged_and_counted():
    seen = []
    app = _app(seen.append)
    peer = Peer(app)
    _once(peer.link.channel, "handshake")
    peer.client = Client("ServerA", KEY_A)
    ((kind, body),) = peer.exchange(encode_frame(P.KIND_HANDSHAKE, peer.client.hs1()))
    assert kind == P.KIND_HANDSHAKE and cbor.loads(body) == [P.HS_ERR, P.S_DEVICE_FULL, "device out of memory"]
    assert peer.link.starved == 1 and "test: out of memory" in seen
    assert peer.handshake("ServerA", KEY_A)[:2] == [P.HS4, P.S_OK]  # the retry is taken


def test_rule_a_sealed_request_without_heap_gets_a_sealed_420_once_opened():
    app = _app()
    peer = Peer(app)
    assert peer.handshake("ServerA", KEY_A)[:2] == [P.HS4, P.S_OK]
    _once(app.dispatcher, "handle")
    r, collected = _collecting(peer.request, P.OP_GET, uri="./DevInfo/DevId")
    assert r[P.K_STATUS] == P.S_DEVICE_FULL and r[P.K_MSG] == "device out of memory", r
    assert collected is not False  # the heap is collected first
    assert peer.link.starved == 1
    assert peer.request(P.OP_GET, uri="./DevInfo/DevId")[P.K_STATUS] == P.S_OK


def test_rule_a_sealed_request_without_heap_to_open_it_is_dropped_unanswered():
    app = _app()
    peer = Peer(app)
    assert peer.handshake("ServerA", KEY_A)[:2] == [P.HS4, P.S_OK]
    _once(peer.link.channel, "open")
    wire, piv, rid = peer.sealed(P.OP_GET, uri="./DevInfo/DevId")
    assert peer.exchange(wire) == []
    assert peer.link.starved == 1
    assert peer.request(P.OP_GET, uri="./DevInfo/DevId")[P.K_STATUS] == P.S_OK


def test_rule_a_reply_that_cannot_be_kept_for_want_of_heap_is_sent_all_the_same():
    app = _app()
    peer = Peer(app)
    assert peer.handshake("ServerA", KEY_A)[:2] == [P.HS4, P.S_OK]
    _once(peer.link.replies, "put")
    r, collected = _collecting(peer.request, P.OP_GET, uri="./DevInfo/DevId")
    assert r[P.K_STATUS] == P.S_OK and r[P.K_VALUE] == "urn:dmagent:sec", r
    assert collected is not False
    assert peer.link.replies.records == [] and peer.link.starved == 0
