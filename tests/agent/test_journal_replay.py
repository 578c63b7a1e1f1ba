"""Rule: replaying the journal on the state it started from gives the same tree: every kind
of change a DM server can make (add, replace, ACL, title, rename, delete) survives a reboot,
with and without a compaction between; a bad snapshot is refused and changes nothing.
Through App (a real Store in a folder) and Link. Plain asserts.
"""

import binascii
import gc
import os

from agent import journal
from agent import proto as P
from agent.app import App
from agent.errors import DMError
from agent.tree import Tree
from tests.agent.check import raises, tohex
from tests.agent.edge_helpers import rmtree as _rmtree

_CONFIG = {"device": {"devid": "urn:t"}, "accounts": [{"server_id": "A"}]}


_rid = [10]


class _As:
    """What the dispatcher asks of a session: whom the request speaks for (no Link: at 110k
    the heap holds the agent, its store and a reboot, not a link's buffers besides)."""

    principal = "A"


def _ask(link, message):
    return link.handle(_As(), message)


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


def _state(app):
    """CRC-32 of the tree's streamed snapshot (names come in order: layout does not show)."""
    crc = [0]

    def write(chunk):
        crc[0] = binascii.crc32(chunk, crc[0])

    app.tree.dump(write)
    return crc[0]


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


def test_rule_every_kind_of_change_is_replayed_to_the_same_tree():
    _replayed(compact_between=False)


def test_rule_changes_after_a_compaction_are_replayed_on_its_snapshot():
    _replayed(compact_between=True)


def _replayed(compact_between):
    base = "/tmp/dmagent-jr-%s" % tohex(os.urandom(4))
    d = base + "/state"
    try:
        app = App(_CONFIG, state_dir=d, insecure=True, log=lambda msg: None)
        link = app.dispatcher
        if compact_between:
            _ok(link, P.OP_ADD, "./Y", fmt="node")
            app.store.compact(app.dump_state)
        _changes(link)
        want, count = _state(app), app.tree.node_count()
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


def _snapshot(tree):
    parts = []
    tree.dump(lambda chunk: parts.append(bytes(chunk)))
    return b"".join(parts)


def _reader(data):
    pos = [0]

    def read(n):
        chunk = data[pos[0] : pos[0] + n]
        pos[0] += len(chunk)
        return chunk

    return read


def _sample_tree():
    t = Tree()
    t.put("./K", 5, "int")
    t.put("./N", fmt="node", acl="Get=A")
    t.put("./N/t", "x", "chr", title="T", acl="Get=B")
    return t


def test_rule_a_snapshot_restores_every_node_and_property():
    t = _sample_tree()
    data = _snapshot(t)
    other = Tree()
    journal.restore(other, _reader(data))
    assert other.value("./K") == 5 and other.value("./N/t") == "x"
    assert other.node_count() == t.node_count()
    assert _snapshot(other) == data  # ACLs and titles included


def test_rule_a_torn_snapshot_is_refused_and_changes_nothing():
    data = _snapshot(_sample_tree())
    for cut in (1, len(data) // 2, len(data) - 1):
        t = Tree()
        t.put("./Keep", 1, "int")
        e = raises(DMError, journal.restore, t, _reader(data[:cut]))
        assert e.status == P.S_FAILED, cut
        assert t.value("./Keep") == 1 and not t.exists("./K"), cut


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
    fresh = Tree()
    fresh.put("./N", fmt="node", acl="Get=B", title="new")
    fresh.put("./N/leaf", 3, "int")
    assert _snapshot(t) == _snapshot(fresh)  # the new ACL and title, the old child
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


def test_rule_a_snapshot_of_another_version_is_refused_and_changes_nothing():
    data = bytearray(_snapshot(_sample_tree()))
    assert data[2] == 0x85 and data[3] == 2  # the head item: [version, acl, flags, title, type]
    data[3] = 3
    t = Tree()
    t.put("./Keep", 1, "int")
    assert raises(DMError, journal.restore, t, _reader(bytes(data))).status == P.S_FAILED
    assert t.value("./Keep") == 1 and not t.exists("./K")
