"""Rules: a plain request never gets a sealed one's reply, even for the principal the
handshake proved; a hello naming nobody over a sealed session still speaks for the handshake's
principal (insecure mode and keys together). Plain asserts.
"""

from agent import frame

# As a board does (boards/unix/main.py): frame buffers first, while the heap is whole.
frame.reserve(3)

from agent import cbor  # noqa: E402
from agent import proto as P  # noqa: E402
from agent.frame import encode_frame  # noqa: E402
from tests.agent.sealed_peer import Peer, get_r as _get, keyed_app  # noqa: E402
from tests.agent.spec_client import KEY_A  # noqa: E402


def test_rule_a_plain_request_never_gets_a_sealed_ones_reply_for_the_same_principal():
    app = keyed_app(insecure=True)
    app.tree.put("./R", "one", "chr", acl="Get=*")
    peer = Peer(app)
    assert peer.handshake("ServerA", KEY_A)[:2] == [P.HS4, P.S_OK]
    assert _get(peer, 1, True) == "one"
    hello = {P.K_OP: P.OP_HELLO, P.K_SERVER: "ServerA"}  # the same principal, named (no id: not kept)
    peer.exchange(encode_frame(P.KIND_PLAIN, cbor.dumps(hello)))
    app.tree.put("./R", "two", "chr", acl="Get=*")
    assert _get(peer, 1, False) == "two"  # its own scope: run, not the sealed reply
    assert _get(peer, 1, True) == "one"


def test_rule_a_hello_naming_nobody_over_a_sealed_session_speaks_for_the_handshakes_principal():
    app = keyed_app(insecure=True)
    peer = Peer(app)
    plain = {P.K_ID: 1, P.K_OP: P.OP_HELLO, P.K_SERVER: "ServerB"}
    ((kind, body),) = peer.exchange(encode_frame(P.KIND_PLAIN, cbor.dumps(plain)))
    assert cbor.loads(body)[P.K_VALUE]["principal"] == "ServerB"  # named by an insecure hello
    assert peer.handshake("ServerA", KEY_A)[:2] == [P.HS4, P.S_OK]
    r = peer.request(P.OP_HELLO)
    assert r[P.K_STATUS] == P.S_OK and r[P.K_VALUE]["principal"] == "ServerA", r
