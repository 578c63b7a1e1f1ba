"""Rule: the REPL is for owners only. Exec of ./DevDetail/Ext/Repl runs only for a principal
that security.owners names, speaking for itself: never a configured server (a DMAcc account
gives nothing), never a gateway acting for an owner, never because an ACL says so. Through
App and Link, sealed sessions, on CPython and on the device runtime."""

from agent import frame

frame.reserve(3)

from agent import proto as P  # noqa: E402
from agent.app import App  # noqa: E402
from agent import mo  # noqa: E402
from tests.agent.spec_client import KEY_A, KEY_GW  # noqa: E402
from tests.agent.test_secure_session import Peer, _peers  # noqa: E402

KEY_OWNER = b"\x55" * 16
KEYS = {"ServerA": KEY_A, "GW1": KEY_GW, "Owner": KEY_OWNER}
SECURITY = {"owners": ["Owner"], "gateways": {"GW1": ["Owner", "ServerA"]}}
_ran = []


def _repl(tree, principal, data):
    _ran.append(principal)
    return P.S_OK, "the console goes back to the REPL"


def _app(security=SECURITY):
    while _peers:
        _peers.pop().close()
    del _ran[:]
    config = {"accounts": [{"server_id": "ServerA"}, {"server_id": "Owner"}], "security": security}
    app = App(config, None, False, lambda msg: None, KEYS)
    mo.add_repl(app.tree, _repl, app.guard.owners)  # as a board does
    return app


def _exec(app, principal, key, uri=mo.REPL, **fields):
    peer = Peer(app)
    assert peer.handshake(principal, key)[:2] == [P.HS4, P.S_OK]
    return peer.request(P.OP_EXEC, uri=uri, **fields)


def test_a_configured_server_with_an_account_cannot_exec_the_repl():
    app = _app()
    for uri in (mo.REPL, "DevDetail/Ext/Repl", "./DevDetail/Ext/%52epl", "./%44evDetail/Ext/Repl"):
        assert _exec(app, "ServerA", KEY_A, uri)[P.K_STATUS] == P.S_FORBIDDEN, uri
    assert _ran == []


def test_a_gateway_acting_for_an_owner_cannot_exec_the_repl():
    app = _app()
    resp = _exec(app, "GW1", KEY_GW, **{"for": "Owner"})
    assert resp[P.K_STATUS] == P.S_FORBIDDEN, resp
    assert _exec(app, "GW1", KEY_GW, **{"for": "ServerA"})[P.K_STATUS] == P.S_FORBIDDEN
    assert _exec(app, "GW1", KEY_GW, uri="./DevDetail/Ext/Echo", **{"for": "Owner"})[P.K_STATUS] == P.S_OK
    assert _ran == []


def test_a_gateway_cannot_take_the_repl_inside_a_sequence():
    """A Sequence's items carry no `for` of their own: they still speak for the gateway's server."""
    app = _app()
    peer = Peer(app)
    assert peer.handshake("GW1", KEY_GW)[:2] == [P.HS4, P.S_OK]
    resp = peer.request(P.OP_SEQUENCE, items=[{P.K_OP: P.OP_EXEC, P.K_URI: mo.REPL}], **{"for": "Owner"})
    assert resp[P.K_ITEMS][0][P.K_STATUS] == P.S_FORBIDDEN, resp
    assert _ran == []
    owner = Peer(app)
    assert owner.handshake("Owner", KEY_OWNER)[:2] == [P.HS4, P.S_OK]
    resp = owner.request(P.OP_SEQUENCE, items=[{P.K_OP: P.OP_EXEC, P.K_URI: mo.REPL}])
    assert resp[P.K_ITEMS][0][P.K_STATUS] == P.S_OK and _ran == ["Owner"], resp


def test_the_owner_speaking_for_itself_can_exec_the_repl():
    app = _app()
    resp = _exec(app, "Owner", KEY_OWNER)
    assert resp[P.K_STATUS] == P.S_OK, resp
    assert _ran == ["Owner"]


def test_an_acl_granting_exec_does_not_make_an_owner():
    app = _app()
    app.tree.set_acl(mo.REPL, "Exec=ServerA+Owner&Get=*")  # an old state, a config "acls"
    assert _exec(app, "ServerA", KEY_A)[P.K_STATUS] == P.S_FORBIDDEN
    assert _exec(app, "Owner", KEY_OWNER)[P.K_STATUS] == P.S_OK
    assert _ran == ["Owner"]


def test_nobody_is_an_owner_by_default():
    app = _app({"gateways": {}})
    assert app.tree.value(mo.REPL) == "" and _exec(app, "Owner", KEY_OWNER)[P.K_STATUS] == P.S_FORBIDDEN
    assert _ran == []


def test_check_answers_what_exec_does():
    app = _app()
    peer = Peer(app)
    assert peer.handshake("Owner", KEY_OWNER)[:2] == [P.HS4, P.S_OK]
    for server, allowed in (("Owner", True), ("ServerA", False)):
        resp = peer.request(P.OP_CHECK, uri=mo.REPL, server=server, cmd="Exec")
        assert resp[P.K_ALLOWED] is allowed, (server, resp)
    assert peer.request(P.OP_ACL, uri=mo.REPL)[P.K_ACL] == "Exec=Owner&Get=*"
