"""Exactly once, through the agent's public entry (App, Link.receive): a write retried under
its id is answered from the cache and not run again; another principal's request under the
same id runs; a bad id or frame gets a clear status and runs nothing. Plain asserts.
"""

from agent import cbor
from agent import proto as P
from agent.app import App
from tests.agent.edge_helpers import ask as _ask
from tests.agent.edge_helpers import frames as _frames

_CONFIG = {"device": {"devid": "urn:t"}, "accounts": [{"server_id": "A"}, {"server_id": "B"}]}


def _link():
    app = App(_CONFIG, insecure=True, log=lambda msg: None)
    return app, app.new_link("t", False)


_hello_ids = [1000]


def _hello(link, who):
    # a fresh id each time: a hello retried under a cached id is answered from the cache
    _hello_ids[0] += 1
    r = _ask(link, {P.K_ID: _hello_ids[0], P.K_OP: P.OP_HELLO, P.K_SERVER: who})
    assert r[P.K_STATUS] == P.S_OK, r


def _value(app, uri):
    return app.tree.value(uri) if app.tree.exists(uri) else None


def test_rule_retried_add_is_answered_from_cache_not_run_again():
    app, link = _link()
    _hello(link, "A")
    add = {P.K_ID: 5, P.K_OP: P.OP_ADD, P.K_URI: "./X", P.K_FORMAT: "node"}
    first = _ask(link, add)
    assert first[P.K_STATUS] == P.S_OK, first
    again = _ask(link, add)
    assert again == first  # not 418: the Add did not run twice
    link.close()


def test_rule_retried_replace_is_applied_once():
    app, link = _link()
    _hello(link, "A")
    assert _ask(link, {P.K_ID: 1, P.K_OP: P.OP_ADD, P.K_URI: "./X", P.K_FORMAT: "node"})[P.K_STATUS] == 200
    assert _ask(link, {P.K_ID: 2, P.K_OP: P.OP_ADD, P.K_URI: "./X/n", P.K_VALUE: 1,
                       P.K_FORMAT: "int"})[P.K_STATUS] == 200
    rep = {P.K_ID: 3, P.K_OP: P.OP_REPLACE, P.K_URI: "./X/n", P.K_VALUE: 2, P.K_FORMAT: "int"}
    assert _ask(link, rep)[P.K_STATUS] == 200
    # someone else's later write; then the first client's retry must not undo it
    assert _ask(link, {P.K_ID: 4, P.K_OP: P.OP_REPLACE, P.K_URI: "./X/n", P.K_VALUE: 9,
                       P.K_FORMAT: "int"})[P.K_STATUS] == 200
    assert _ask(link, rep)[P.K_STATUS] == 200
    assert _value(app, "./X/n") == 9
    link.close()


def test_rule_retried_delete_answers_its_first_status():
    app, link = _link()
    _hello(link, "A")
    assert _ask(link, {P.K_ID: 1, P.K_OP: P.OP_ADD, P.K_URI: "./X", P.K_FORMAT: "node"})[P.K_STATUS] == 200
    delete = {P.K_ID: 2, P.K_OP: P.OP_DELETE, P.K_URI: "./X"}
    assert _ask(link, delete)[P.K_STATUS] == 200
    assert _ask(link, delete)[P.K_STATUS] == 200  # not 404
    assert not app.tree.exists("./X")
    link.close()


def test_rule_same_id_from_another_principal_is_run_for_that_principal():
    app, link = _link()
    _hello(link, "A")
    assert _ask(link, {P.K_ID: 5, P.K_OP: P.OP_ADD, P.K_URI: "./a", P.K_FORMAT: "node"})[P.K_STATUS] == 200
    _hello(link, "B")
    r = _ask(link, {P.K_ID: 5, P.K_OP: P.OP_ADD, P.K_URI: "./b", P.K_FORMAT: "node"})
    assert r[P.K_STATUS] == 200 and app.tree.exists("./b"), r
    link.close()


def test_rule_request_id_must_be_an_unsigned_integer_and_a_bad_one_runs_nothing():
    app, link = _link()
    _hello(link, "A")
    for i, rid in enumerate((-1, True, "5", 1.5, [1])):
        uri = "./bad%d" % i
        r = _ask(link, {P.K_ID: rid, P.K_OP: P.OP_ADD, P.K_URI: uri, P.K_FORMAT: "node"})
        assert r[P.K_STATUS] == P.S_BAD_REQUEST, (rid, r)
        assert not app.tree.exists(uri), rid
    # 0 is an id like any other
    add0 = {P.K_ID: 0, P.K_OP: P.OP_ADD, P.K_URI: "./zero", P.K_FORMAT: "node"}
    assert _ask(link, add0)[P.K_STATUS] == 200
    assert _ask(link, add0)[P.K_STATUS] == 200
    link.close()


def test_rule_request_without_id_is_run_each_time():
    app, link = _link()
    _hello(link, "A")
    add = {P.K_OP: P.OP_ADD, P.K_URI: "./X", P.K_FORMAT: "node"}
    assert _ask(link, add)[P.K_STATUS] == 200
    assert _ask(link, add)[P.K_STATUS] == 418  # no id, no cache: it ran again
    link.close()


def test_rule_bad_cbor_and_unknown_frame_kind_get_400():
    app, link = _link()
    (reply,) = _frames(link, P.KIND_PLAIN, b"\xff\xff")
    assert cbor.loads(reply[1])[P.K_STATUS] == P.S_BAD_REQUEST
    (reply,) = _frames(link, 0x09, cbor.dumps({P.K_ID: 1, P.K_OP: P.OP_INFO}))
    assert reply[0] == P.KIND_PLAIN and cbor.loads(reply[1])[P.K_STATUS] == P.S_BAD_REQUEST
    link.close()


def test_rule_protected_frame_on_a_keyless_device_is_dropped_and_counted():
    app, link = _link()
    assert _frames(link, P.KIND_SEALED, b"\x00" * 20) == []
    assert _frames(link, P.KIND_SIGNED, b"\x00" * 20) == []
    info = _ask(link, {P.K_ID: 2, P.K_OP: P.OP_INFO})
    assert info[P.K_VALUE]["rejected"] == 2, info
    (reply,) = _frames(link, P.KIND_HANDSHAKE, cbor.dumps([1, b"x"]))
    assert reply[0] == P.KIND_HANDSHAKE
    answer = cbor.loads(reply[1])
    assert answer[0] == P.HS_ERR and answer[1] == P.S_NOT_SUPPORTED, answer
    link.close()


def test_rule_hello_names_a_principal_only_in_insecure_mode():
    app = App(_CONFIG, log=lambda msg: None)
    link = app.new_link("t", False)
    r = _ask(link, {P.K_ID: 1, P.K_OP: P.OP_HELLO, P.K_SERVER: "A"})
    assert r[P.K_STATUS] == P.S_UNAUTHORIZED
    assert _ask(link, {P.K_ID: 2, P.K_OP: P.OP_ADD, P.K_URI: "./X", P.K_FORMAT: "node"})[P.K_STATUS] != 200
    assert not app.tree.exists("./X")
    link.close()
    app, link = _link()
    for bad in ("", 5):
        assert _ask(link, {P.K_ID: 3, P.K_OP: P.OP_HELLO, P.K_SERVER: bad})[P.K_STATUS] == P.S_BAD_REQUEST
    _hello(link, "A")
    assert _ask(link, {P.K_ID: 4, P.K_OP: P.OP_ADD, P.K_URI: "./X", P.K_FORMAT: "node"})[P.K_STATUS] == 200
    # a hello naming nobody drops the principal: the link speaks for no one again
    assert _ask(link, {P.K_ID: 5, P.K_OP: P.OP_HELLO})[P.K_STATUS] == P.S_OK
    assert _ask(link, {P.K_ID: 6, P.K_OP: P.OP_ADD, P.K_URI: "./Y", P.K_FORMAT: "node"})[P.K_STATUS] != 200
    assert not app.tree.exists("./Y")
    link.close()


def test_rule_an_insecure_hello_is_logged_with_the_principal_it_names():
    lines = []
    app = App(_CONFIG, insecure=True, log=lines.append)
    link = app.new_link("link7", False)
    _hello(link, "A")
    assert [l for l in lines if "link7" in l and "principal A" in l], lines
    link.close()
