"""Rules of a link's own replies beside a sealed session: the link keeps those of its 2 most
recent scopes (frame kind, principal, `for`), and a new session starts them afresh (a failed
handshake does not); a hello naming nobody over a sealed session still speaks for the
handshake's principal; a `for` the link may not use is 403, naming who asked. Plain asserts.
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
from tests.agent.spec_client import KEY_A, KEY_GW  # noqa: E402

CONFIG = {
    "device": {"devid": "urn:dmagent:sec"},
    "accounts": [{"server_id": "ServerA"}, {"server_id": "ServerB"}],
    "security": {"gateways": {"GW1": ["ServerB"]}},
}
KEYS = {"ServerA": KEY_A, "GW1": KEY_GW}
_OPEN_CONFIG = dict(CONFIG, open_reads=["./R"])


def _app(log=None, insecure=False, config=CONFIG):
    while _peers:
        _peers.pop().close()
    gc.collect()  # the last test's App: a board-sized heap holds one at a time
    return App(config, None, insecure, log or (lambda msg: None), KEYS)


def _get(peer, rid, sealed, **fields):
    message = {P.K_ID: rid, P.K_OP: P.OP_GET, P.K_URI: "./R"}
    if not sealed:
        replies = peer.exchange(encode_frame(P.KIND_PLAIN, cbor.dumps(message)))
        return cbor.loads(replies[0][1])[P.K_VALUE]
    wire, piv, rid = peer.sealed(P.OP_GET, rid=rid, uri="./R", **fields)
    return peer.answer(wire, piv, rid)[P.K_VALUE]


def test_rule_a_hello_naming_nobody_over_a_sealed_session_speaks_for_the_handshakes_principal():
    app = _app(insecure=True)
    peer = Peer(app)
    plain = {P.K_ID: 1, P.K_OP: P.OP_HELLO, P.K_SERVER: "ServerB"}
    ((kind, body),) = peer.exchange(encode_frame(P.KIND_PLAIN, cbor.dumps(plain)))
    assert cbor.loads(body)[P.K_VALUE]["principal"] == "ServerB"  # named by an insecure hello
    assert peer.handshake("ServerA", KEY_A)[:2] == [P.HS4, P.S_OK]
    r = peer.request(P.OP_HELLO)
    assert r[P.K_STATUS] == P.S_OK and r[P.K_VALUE]["principal"] == "ServerA", r


def test_rule_a_link_keeps_the_replies_of_its_2_most_recent_scopes():
    # plain (nobody), sealed as GW1, sealed as GW1 for ServerB: three scopes on one link
    app = _app(config=_OPEN_CONFIG)
    app.tree.put("./R", "one", "chr", acl="Get=*")
    peer = Peer(app)
    assert peer.handshake("GW1", KEY_GW)[:2] == [P.HS4, P.S_OK]
    assert _get(peer, 1, False) == "one"
    assert _get(peer, 1, True) == "one"
    app.tree.put("./R", "two", "chr", acl="Get=*")
    assert _get(peer, 1, False) == "one"  # two scopes: both kept
    assert _get(peer, 1, True) == "one"
    assert _get(peer, 1, True, **{"for": "ServerB"}) == "two"  # a third scope: the oldest goes
    assert _get(peer, 1, True) == "one"
    assert _get(peer, 1, False) == "two"  # plain was the least recently used: run again


def test_rule_a_new_session_starts_the_links_replies_afresh_and_a_failed_handshake_does_not():
    seen = []
    app = _app(seen.append, config=_OPEN_CONFIG)
    app.tree.put("./R", "one", "chr", acl="Get=*")
    peer = Peer(app)
    assert peer.handshake("ServerA", KEY_A)[:2] == [P.HS4, P.S_OK]
    assert "test: session for ServerA" in seen
    assert _get(peer, 1, True) == "one"
    app.tree.put("./R", "two", "chr", acl="Get=*")
    client = peer.client
    assert peer.handshake("ServerA", b"\x99" * 16)[:2] == [P.HS_ERR, P.S_UNAUTHORIZED]  # a wrong key
    peer.client = client  # the session stands: its reply too
    assert _get(peer, 1, True) == "one"
    assert peer.handshake("ServerA", KEY_A)[:2] == [P.HS4, P.S_OK]
    assert _get(peer, 1, True) == "two"  # a new session: run again


def test_rule_a_for_the_link_may_not_use_is_403_naming_who_asked():
    app = _app(config=_OPEN_CONFIG)
    peer = Peer(app)
    plain = {P.K_ID: 1, P.K_OP: P.OP_GET, P.K_URI: "./R", P.K_FOR: "ServerB"}
    ((kind, body),) = peer.exchange(encode_frame(P.KIND_PLAIN, cbor.dumps(plain)))
    r = cbor.loads(body)
    assert r[P.K_STATUS] == P.S_FORBIDDEN and r[P.K_MSG] == "this link may not act for 'ServerB'", r
    assert peer.handshake("ServerA", KEY_A)[:2] == [P.HS4, P.S_OK]
    r = peer.request(P.OP_GET, uri="./R", **{"for": "ServerB"})
    assert r[P.K_STATUS] == P.S_FORBIDDEN and r[P.K_MSG] == "ServerA may not act for 'ServerB'", r


def test_rule_a_plain_request_never_gets_a_sealed_ones_reply_for_the_same_principal():
    app = _app(insecure=True, config=_OPEN_CONFIG)
    app.tree.put("./R", "one", "chr", acl="Get=*")
    peer = Peer(app)
    assert peer.handshake("ServerA", KEY_A)[:2] == [P.HS4, P.S_OK]
    assert _get(peer, 1, True) == "one"
    hello = {P.K_OP: P.OP_HELLO, P.K_SERVER: "ServerA"}  # the same principal, named (no id: not kept)
    peer.exchange(encode_frame(P.KIND_PLAIN, cbor.dumps(hello)))
    app.tree.put("./R", "two", "chr", acl="Get=*")
    assert _get(peer, 1, False) == "two"  # its own scope: run, not the sealed reply
    assert _get(peer, 1, True) == "one"
