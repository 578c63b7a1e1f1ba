"""Rule: replaying the journal on the state it started from gives the same tree: every kind
of change a DM server can make (add, replace, ACL, title, rename, delete) survives a reboot,
with and without a compaction between; a bad snapshot is refused and changes nothing.
Through App (a real Store in a folder) and Link. Plain asserts.
"""

import binascii
import gc
import os

from agent import cbor
from agent import proto as P
from agent.app import App
from agent.errors import DMError
from agent import nodes as N
from agent.tree import Tree
from tests.agent.check import raises, tohex
from tests.agent.edge_helpers import ask as _ask
from tests.agent.edge_helpers import rmtree as _rmtree

_CONFIG = {"device": {"devid": "urn:t"}, "accounts": [{"server_id": "A"}]}


_rid = [10]


def _ok(link, op, uri, value=None, fmt=None):
    _rid[0] += 1
    m = {P.K_ID: _rid[0], P.K_OP: op, P.K_URI: uri}
    if value is not None:
        m[P.K_VALUE] = value
    if fmt is not None:
        m[P.K_FORMAT] = fmt
    r = _ask(link, m)
    assert r[P.K_STATUS] == P.S_OK, (uri, r)
    return r


def _digest(x, crc=0):
    """CRC-32 of the tree's content, walked in place (a copy would not fit a board's heap);
    maps by sorted keys, as dict order is not insertion order on MicroPython."""
    if type(x) is dict:
        for k in sorted(x):
            crc = _digest(x[k], binascii.crc32(("k%r" % k).encode(), crc))
        return binascii.crc32(b"}", crc)
    if type(x) is list:
        for v in x:
            crc = _digest(v, crc)
        return binascii.crc32(b"]", crc)
    return binascii.crc32(("v%r" % (x,)).encode(), crc)


def _state(app):
    return _digest(app.tree.dump())


def _changes(link):
    _ok(link, P.OP_ADD, "./X", fmt="node")
    _ok(link, P.OP_ADD, "./X/a", 1, "int")
    _ok(link, P.OP_ADD, "./X/b", "text", "chr")
    _ok(link, P.OP_ADD, "./X/c", True, "bool")
    _ok(link, P.OP_ADD, "./X/sub", fmt="node")
    _ok(link, P.OP_ADD, "./X/sub/d", 2, "int")
    _ok(link, P.OP_REPLACE, "./X/a", 7, "int")
    _ok(link, P.OP_REPLACE, "./X/b", "other", "chr")
    _ok(link, P.OP_REPLACE, "./X/sub?prop=ACL", "Add=A&Delete=A&Get=A&Replace=A")
    _ok(link, P.OP_REPLACE, "./X/b?prop=ACL", "Get=A+B")
    _ok(link, P.OP_REPLACE, "./X/c?prop=Title", "a flag")
    _ok(link, P.OP_REPLACE, "./X/a?prop=Title", "kept title")
    _ok(link, P.OP_REPLACE, "./X/sub/d?prop=Name", "e")
    _ok(link, P.OP_DELETE, "./X/c")
    _ok(link, P.OP_ADD, "./X/gone", fmt="node")
    _ok(link, P.OP_ADD, "./X/gone/leaf", 3, "int")
    _ok(link, P.OP_DELETE, "./X/gone")


def _hello(link):
    r = _ask(link, {P.K_ID: 1, P.K_OP: P.OP_HELLO, P.K_SERVER: "A"})
    assert r[P.K_STATUS] == P.S_OK, r


def test_rule_every_kind_of_change_is_replayed_to_the_same_tree():
    _replayed(compact_between=False)


def test_rule_changes_after_a_compaction_are_replayed_on_its_snapshot():
    _replayed(compact_between=True)


def _replayed(compact_between):
    base = "/tmp/dmagent-jr-%s" % tohex(os.urandom(4))
    d = base + "/state"
    try:
        app = App(_CONFIG, state_dir=d, insecure=True, log=lambda msg: None)
        link = app.new_link("t", False)
        _hello(link)
        if compact_between:
            _ok(link, P.OP_ADD, "./Y", fmt="node")
            app.store.compact(app.dump_state)
        _changes(link)
        want, count = _state(app), app.tree.node_count()
        link.close()
        app.store.close()
        app = link = None
        gc.collect()
        again = App(_CONFIG, state_dir=d, insecure=True, log=lambda msg: None)
        assert _state(again) == want, compact_between
        assert again.tree.node_count() == count
        assert again.tree.value("./X/a") == 7 and again.tree.value("./X/sub/e") == 2
        assert not again.tree.exists("./X/c") and not again.tree.exists("./X/gone")
        again.store.close()
        again = None
        gc.collect()
    finally:
        _rmtree(base)


def test_rule_a_bad_snapshot_is_refused_and_changes_nothing():
    t = Tree()
    t.put("./K", 5, "int")
    good = t.dump()
    before = cbor.dumps(good)
    version, root = good[0], good[1]
    for bad in ([version + 1, root], [version], [version, [1, 2]], "snapshot", None,
                [version, [root[0], "int", "", 0, None, None, None]]):
        e = raises(DMError, t.restore, bad)
        assert e.status == P.S_FAILED, bad
        assert cbor.dumps(t.dump()) == before and t.value("./K") == 5
    other = Tree()
    other.restore(cbor.loads(before))
    assert other.value("./K") == 5 and other.node_count() == t.node_count()


def _snapshot_with(change):
    """A decoded snapshot of a small tree, changed by change(root) first."""
    t = Tree()
    t.put("./K", 5, "int")
    t.put("./N", fmt="node", acl="Get=A")
    t.put("./N/t", "x", "chr", title="T", acl="Get=B")
    snap = cbor.loads(cbor.dumps(t.dump()))
    change(snap[1])
    return snap


def _set(slot, value, name="t"):
    def change(root):
        root[N.VALUE]["N"][N.VALUE][name][slot] = value
    return change


def test_rule_a_snapshot_with_a_bad_node_anywhere_is_refused_whole():
    def root_add_not_star(root):
        root[N.ACL] = "Get=*"

    def bad_name(root):
        root[N.VALUE]["N"][N.VALUE][""] = 1

    def children_not_a_map(root):
        root[N.VALUE]["N"][N.VALUE] = 5

    def short_node(root):
        root[N.VALUE]["N"][N.VALUE]["t"] = ["x", "chr", ""]

    def bare_value_of_no_format(root):
        root[N.VALUE]["K"] = {"a": 1}

    for change in (root_add_not_star, bad_name, children_not_a_map, short_node, bare_value_of_no_format,
                   _set(N.FLAGS, "1"), _set(N.TITLE, 5), _set(N.TYPE, 5), _set(N.ACL, "Get=B&Add=A"),
                   _set(N.ACL, "Get="), _set(N.FMT, "int")):
        t = Tree()
        t.put("./Keep", 1, "int")
        e = raises(DMError, t.restore, _snapshot_with(change))
        assert e.status == P.S_FAILED, change
        assert t.value("./Keep") == 1 and not t.exists("./K"), change


def test_rule_a_good_snapshot_restores_every_property():
    t = Tree()
    t.restore(_snapshot_with(lambda root: None))
    assert t.value("./K") == 5 and t.value("./N/t") == "x"
    assert t.node_count() == 4
    again = cbor.loads(cbor.dumps(t.dump()))
    leaf = again[1][N.VALUE]["N"][N.VALUE]["t"]
    assert leaf[N.TITLE] == "T" and leaf[N.ACL] == "Get=B" and again[1][N.VALUE]["N"][N.ACL] == "Get=A"


def test_rule_the_root_stays_interior_with_add_star():
    t = Tree()
    t.put(".", fmt="node", acl="Add=*&Get=*&Replace=A")
    assert t.exists(".")
    for value, fmt, acl in ((1, "int", "Add=*"), (None, "node", "Get=*"), (None, "node", "Add=A")):
        assert raises(DMError, t.put, ".", value, fmt, acl).status == P.S_NOT_ALLOWED, (fmt, acl)
    assert raises(DMError, t.set_acl, ".", "Get=*").status == P.S_NOT_ALLOWED


def test_rule_putting_an_existing_interior_node_keeps_its_children_and_takes_the_new_properties():
    t = Tree()
    t.put("./N", fmt="node", acl="Get=A")
    t.put("./N/leaf", 3, "int")
    t.put("./N", fmt="node", acl="Get=B", title="new")
    assert t.value("./N/leaf") == 3
    node = cbor.loads(cbor.dumps(t.dump()))[1][N.VALUE]["N"]
    assert node[N.ACL] == "Get=B" and node[N.TITLE] == "new"
    assert raises(DMError, t.put, "./N", 1, "int").status == P.S_NOT_ALLOWED  # no turning leaf
    assert raises(DMError, t.put, "./N/leaf/x", 1, "int").status == P.S_NOT_ALLOWED  # under a leaf


def test_rule_server_id_is_an_identifier_unique_among_accounts():
    t = Tree()
    t.put("./DMAcc", fmt="node")
    for name, sid in (("a", "SrvA"), ("b", "SrvB")):
        t.put("./DMAcc/" + name, fmt="node")
        t.put("./DMAcc/%s/ServerID" % name, sid, "chr")
    t.put("./DMAcc/a/ServerID", "SrvA", "chr")  # its own id again: not taken by itself
    assert raises(DMError, t.put, "./DMAcc/a/ServerID", "SrvB", "chr").status == P.S_EXISTS
    assert raises(DMError, t.put, "./DMAcc/a/ServerID", "Srv A", "chr").status == P.S_BAD_REQUEST
    t.put("./DMAcc/a/ServerID", "SrvC", "chr")
    assert t.value("./DMAcc/a/ServerID") == "SrvC"
    t.put("./Other", fmt="node")
    t.put("./Other/ServerID", "SrvB", "chr")  # only ./DMAcc/<x>/ServerID names an account
