"""Rules of a link's own replies beside a sealed session: the link keeps those of its 2 most
recent scopes (frame kind, principal, `for`); a `for` the link may not use is 403, naming who
asked. Plain asserts.
"""

from agent import frame

# As a board does (boards/unix/main.py): frame buffers first, while the heap is whole.
frame.reserve(3)

from agent import cbor  # noqa: E402
from agent import proto as P  # noqa: E402
from agent.frame import encode_frame  # noqa: E402
from tests.agent.sealed_peer import Peer, get_r as _get, keyed_app  # noqa: E402
from tests.agent.spec_client import KEY_A, KEY_GW  # noqa: E402


def test_rule_a_link_keeps_the_replies_of_its_2_most_recent_scopes():
    # plain (nobody), sealed as GW1, sealed as GW1 for ServerB: three scopes on one link
    app = keyed_app()
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


def test_rule_a_for_the_link_may_not_use_is_403_naming_who_asked():
    app = keyed_app()
    peer = Peer(app)
    plain = {P.K_ID: 1, P.K_OP: P.OP_GET, P.K_URI: "./R", P.K_FOR: "ServerB"}
    ((kind, body),) = peer.exchange(encode_frame(P.KIND_PLAIN, cbor.dumps(plain)))
    r = cbor.loads(body)
    assert r[P.K_STATUS] == P.S_FORBIDDEN and r[P.K_MSG] == "this link may not act for 'ServerB'", r
    assert peer.handshake("ServerA", KEY_A)[:2] == [P.HS4, P.S_OK]
    r = peer.request(P.OP_GET, uri="./R", **{"for": "ServerB"})
    assert r[P.K_STATUS] == P.S_FORBIDDEN and r[P.K_MSG] == "ServerA may not act for 'ServerB'", r
