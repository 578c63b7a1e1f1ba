"""Security rules end to end inside the agent: frames in, frames out, through App and Link
(docs/protocol.md section 7). Every refused frame leaves the tree as it was. Runs on
CPython and on the MicroPython device runtime; the client is the spec client of
tests/agent/test_secure.py."""

from agent import frame

# As a board does (boards/unix/main.py): frame buffers first, while the heap is whole.
frame.reserve(3)

from agent import cbor  # noqa: E402
from agent import proto as P  # noqa: E402
from agent.app import App  # noqa: E402
from agent.frame import FrameDecoder, encode_frame  # noqa: E402
from tests.agent.sealed_peer import Peer, _peers  # noqa: E402
from tests.agent.spec_client import KEY_A, KEY_GW, Client  # noqa: E402

CONFIG = {
    "device": {"devid": "urn:dmagent:sec"},
    "accounts": [{"server_id": "ServerA"}, {"server_id": "ServerB"}],
    "nodes": [{"uri": "./OnlyB", "format": "node", "acl": "Add=ServerB&Get=ServerB"}],
    "security": {
        "gateways": {"GW1": ["ServerB"]},
        "integrity_only": ["GW1"],
        "confidential": ["./DMAcc"],
    },
}
KEYS = {"ServerA": KEY_A, "GW1": KEY_GW}


def _app():
    while _peers:
        _peers.pop().close()
    return App(CONFIG, None, False, lambda msg: None, KEYS)


def _snapshot(app):
    """A digest of the whole tree, streamed: no tree-sized buffer in a board-sized heap."""
    from hashlib import sha256

    h = sha256()
    app.tree.dump(lambda chunk: h.update(bytes(chunk)))
    return h.digest()


def _connected(app, principal="ServerA", key=KEY_A, **kw):
    peer = Peer(app)
    assert peer.handshake(principal, key, **kw)[:2] == [P.HS4, P.S_OK]
    return peer


def test_sealed_session_acts_as_the_handshake_principal():
    app = _app()
    peer = _connected(app)
    resp = peer.request(P.OP_ADD, uri="./Sec", format="node")
    assert resp[P.K_STATUS] == P.S_OK, resp
    info = peer.request(P.OP_INFO)[P.K_VALUE]
    assert info["principal"] == "ServerA" and info["suite"] == P.SUITE_CCM
    # the creator's ACL names ServerA: the handshake's principal made the node
    check = peer.request(P.OP_CHECK, uri="./Sec", server="ServerA", cmd="Delete")
    assert check[P.K_ALLOWED] is True and check[P.K_FROM] == "./Sec", check


def test_status_413_a_sealed_add_of_a_value_over_the_bound_is_answered_413_and_creates_nothing():
    # protocol.md 6: the request is opened in the receive buffer (agent.ccm.decrypt_in_place),
    # so the heap holds the value once (decoded) and the 413 is answered, never dropped. (Here
    # the heap has room either way; at 128k with the conformance config the copies did not:
    # tests/host/test_conformance.py's device-runtime run fails without the in-place open.)
    app = _app()
    peer = _connected(app)
    resp = peer.request(P.OP_ADD, uri="./Big", value="v" * 1200, format="chr")
    assert resp is not None and resp[P.K_STATUS] == P.S_TOO_LARGE, resp
    assert peer.request(P.OP_GET, uri="./Big")[P.K_STATUS] == P.S_NOT_FOUND


def test_wrong_key_gets_401_and_sealed_frames_after_it_are_dropped():
    app = _app()
    before = _snapshot(app)
    peer = Peer(app)
    assert peer.handshake("ServerA", b"\x99" * 16)[:2] == [P.HS_ERR, P.S_UNAUTHORIZED]
    assert peer.request(P.OP_ADD, uri="./Evil", format="node") is None
    assert _snapshot(app) == before
    assert app.guard.rejected == 1


def test_principal_naming_another_id_with_its_own_key_fails():
    # GW1's key does not make anyone ServerA; and naming in hello needs --insecure
    app = _app()
    before = _snapshot(app)
    peer = Peer(app)
    assert peer.handshake("ServerA", KEY_GW)[:2] == [P.HS_ERR, P.S_UNAUTHORIZED]
    plain = Peer(app)
    hello = {P.K_ID: 1, P.K_OP: P.OP_HELLO, P.K_SERVER: "ServerA"}
    (kind, body), = plain.exchange(encode_frame(P.KIND_PLAIN, cbor.dumps(hello)))
    assert cbor.loads(body)[P.K_STATUS] == P.S_UNAUTHORIZED
    assert _snapshot(app) == before


def test_one_flipped_bit_anywhere_in_a_sealed_write_is_refused():
    app = _app()
    peer = _connected(app)
    before = _snapshot(app)
    wire, piv, rid = peer.sealed(P.OP_ADD, uri="./Flip", format="node")
    body = peer.client.seal({P.K_ID: 1, P.K_OP: P.OP_ADD, P.K_URI: "./Flip", P.K_FORMAT: "node"}, 50)[0]
    for bit in range(len(body) * 8):
        bad = bytearray(body)
        bad[bit // 8] ^= 1 << (bit % 8)
        assert peer.exchange(encode_frame(P.KIND_SEALED, bad)) == []  # tag fails: no answer
    for bit in range(0, len(wire) * 8, 3):  # on the wire: CRC or COBS catch it first
        bad = bytearray(wire)
        bad[bit // 8] ^= 1 << (bit % 8)
        peer.exchange(bytes(bad) + b"\x00")
    assert _snapshot(app) == before
    assert app.guard.rejected == len(body) * 8


def test_replayed_frame_is_dropped_and_runs_once():
    app = _app()
    peer = _connected(app)
    wire, piv, rid = peer.sealed(P.OP_ADD, uri="./Once", format="node")
    assert peer.answer(wire, piv, rid)[P.K_STATUS] == P.S_OK
    after = _snapshot(app)
    assert peer.exchange(wire) == []
    assert _snapshot(app) == after and peer.link.executed == 1


def test_reordered_frames_over_tcp_are_dropped():
    app = _app()
    peer = _connected(app)
    first, piv1, rid1 = peer.sealed(P.OP_ADD, uri="./R1", format="node")
    second, piv2, rid2 = peer.sealed(P.OP_ADD, uri="./R2", format="node")
    assert peer.answer(second, piv2, rid2)[P.K_STATUS] == P.S_OK
    before = _snapshot(app)
    assert peer.exchange(first) == []
    assert _snapshot(app) == before


def test_serial_window_lets_a_reordered_frame_through_once():
    app = _app()
    peer = Peer(app, stream=False)
    assert peer.handshake("ServerA", KEY_A)[:2] == [P.HS4, P.S_OK]
    first, piv1, rid1 = peer.sealed(P.OP_ADD, uri="./S1", format="node")
    second, piv2, rid2 = peer.sealed(P.OP_ADD, uri="./S2", format="node")
    assert peer.answer(second, piv2, rid2)[P.K_STATUS] == P.S_OK
    assert peer.answer(first, piv1, rid1)[P.K_STATUS] == P.S_OK
    assert peer.exchange(first) == []


def test_truncated_tag_is_dropped():
    app = _app()
    peer = _connected(app)
    before = _snapshot(app)
    body = peer.client.seal({P.K_ID: 1, P.K_OP: P.OP_ADD, P.K_URI: "./T", P.K_FORMAT: "node"})[0]
    for cut in (1, 4, 8):
        assert peer.exchange(encode_frame(P.KIND_SEALED, body[:-cut])) == []
    assert _snapshot(app) == before


def test_retry_under_a_new_seq_gets_the_cached_answer_without_running_again():
    app = _app()
    peer = _connected(app)
    wire, piv, rid = peer.sealed(P.OP_ADD, uri="./Retry", format="node")
    assert peer.answer(wire, piv, rid)[P.K_STATUS] == P.S_OK
    again, piv2, _ = peer.sealed(P.OP_ADD, rid=rid, uri="./Retry", format="node")
    assert peer.answer(again, piv2, rid)[P.K_STATUS] == P.S_OK  # not 418: not run again
    assert peer.link.executed == 1


def test_integrity_only_session_gets_403_on_a_confidential_subtree():
    app = _app()
    peer = _connected(app, "GW1", KEY_GW, suites=(P.SUITE_HMAC,))
    assert peer.client.suite == P.SUITE_HMAC
    before = _snapshot(app)
    resp = peer.request(P.OP_GET, uri="./DMAcc/ServerB/ServerID", **{"for": "ServerB"})
    assert resp[P.K_STATUS] == P.S_FORBIDDEN, resp
    resp = peer.request(P.OP_GET, uri="./DevInfo/DevId", **{"for": "ServerB"})
    assert resp[P.K_STATUS] == P.S_OK, resp
    assert _snapshot(app) == before


def test_gateway_acts_only_for_listed_servers_and_with_their_rights():
    app = _app()
    peer = _connected(app, "GW1", KEY_GW, suites=(P.SUITE_HMAC,))
    before = _snapshot(app)
    resp = peer.request(P.OP_ADD, uri="./OnlyB/ByA", format="node", **{"for": "ServerA"})
    assert resp[P.K_STATUS] == P.S_FORBIDDEN, resp  # GW1 may act for ServerB only
    resp = peer.request(P.OP_ADD, uri="./OnlyB/ByGW", format="node")
    assert resp[P.K_STATUS] == P.S_PERMISSION_DENIED, resp  # GW1 itself has no rights there
    assert _snapshot(app) == before
    resp = peer.request(P.OP_ADD, uri="./OnlyB/ByB", format="node", **{"for": "ServerB"})
    assert resp[P.K_STATUS] == P.S_OK, resp
    assert peer.request(P.OP_INFO, **{"for": "ServerB"})[P.K_VALUE]["principal"] == "ServerB"


def test_write_on_an_unauthenticated_link_gets_407():
    app = _app()
    before = _snapshot(app)
    peer = Peer(app)
    add = {P.K_ID: 1, P.K_OP: P.OP_ADD, P.K_URI: "./Anon", P.K_FORMAT: "node"}
    (kind, body), = peer.exchange(encode_frame(P.KIND_PLAIN, cbor.dumps(add)))
    assert cbor.loads(body)[P.K_STATUS] == P.S_AUTH_REQUIRED
    assert _snapshot(app) == before


def test_a_burst_of_failed_handshakes_meets_the_backoff():
    app = _app()
    peer = Peer(app)
    refused = 0
    for _ in range(6):
        reply = peer.handshake("ServerA", b"\x98" * 16)
        assert reply[0] == P.HS_ERR and reply[1] in (P.S_UNAUTHORIZED, P.S_FORBIDDEN)
        if reply[1] == P.S_FORBIDDEN:
            assert reply[2] == "busy: try again later"
            refused += 1
    assert refused >= 4  # the second failure starts it
    # the right key is refused too while the principal backs off: no guessing at speed
    assert Peer(app).handshake("ServerA", KEY_A)[1] == P.S_FORBIDDEN


def test_device_without_keys_says_so_to_a_handshake():
    _app()  # closes the last test's links
    app = App({}, None, False, lambda msg: None)
    peer = Peer(app)
    reply = peer.handshake("ServerA", KEY_A)
    assert reply[:2] == [P.HS_ERR, P.S_NOT_SUPPORTED]
