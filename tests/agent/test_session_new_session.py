"""Rule: a new session on a link starts the link's own replies afresh; a failed handshake
leaves the session and its replies standing. Its own module: a board-sized heap per case. Plain
asserts.
"""

from agent import frame

# As a board does (boards/unix/main.py): frame buffers first, while the heap is whole.
frame.reserve(3)

from agent import proto as P  # noqa: E402
from tests.agent.sealed_peer import Peer, get_r as _get, keyed_app  # noqa: E402
from tests.agent.spec_client import KEY_A  # noqa: E402


def test_rule_a_new_session_starts_the_links_replies_afresh_and_a_failed_handshake_does_not():
    seen = []
    app = keyed_app(seen.append)
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
