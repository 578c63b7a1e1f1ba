"""Rule: a snapshot is taken item by item and each item is checked as it is read: a bad one
(a depth that skips a level, an empty or non-text name, a node of the wrong shape, a value its
format does not allow, nesting past the item depth) refuses the whole snapshot and changes
nothing. Uses agent.journal's own reader() and snapshot_bytes(). And a journal record replayed
is logged as itself. Plain asserts.
"""

from agent import cbor
from agent import journal as J
from agent import proto as P
from agent.errors import DMError
from agent.tree import Tree
from tests.agent.check import raises


def _sample():
    t = Tree()
    t.put("./N", fmt="node", acl="Get=A")
    t.put("./N/t", "x", "chr", title="T")
    t.put("./N/u", 5, "int")
    return t


def _items(data):
    """The decoded items of a snapshot."""
    out, at = [], 0
    while at < len(data):
        n = data[at] | data[at + 1] << 8
        out.append(cbor.loads(data[at + 2 : at + 2 + n]))
        at += 2 + n
    return out


def _encoded(items):
    out = b""
    for item in items:
        body = cbor.dumps(item)
        out += bytes((len(body) & 0xFF, len(body) >> 8)) + body
    return out


def _refused(data):
    """data is refused as a snapshot, and the tree it was offered to is as it was."""
    t = Tree()
    t.put("./Keep", 1, "int")
    e = raises(DMError, J.restore, t, J.reader(data))
    assert e.status == P.S_FAILED and "bad snapshot" in e.msg, e.msg
    assert t.value("./Keep") == 1 and not t.exists("./N")
    return e.msg


def test_rule_reader_hands_n_bytes_at_a_time_and_nothing_at_the_end():
    read = J.reader(b"abcdef")
    assert read(2) == b"ab" and read(4) == b"cdef"
    assert read(2) == b"" and read(1) == b""
    read = J.reader(b"abc")
    assert read(1) == b"a"
    assert raises(DMError, read, 5).status == P.S_FAILED  # fewer left than asked: a torn item


def test_rule_snapshot_bytes_restores_to_the_same_tree():
    data = J.snapshot_bytes(_sample())
    assert len(data) > 20 and _items(data)[0][0] == 2
    t = Tree()
    J.restore(t, J.reader(data))
    assert t.value("./N/t") == "x" and t.value("./N/u") == 5
    assert J.snapshot_bytes(t) == data


def test_rule_an_item_of_256_bytes_or_more_is_read_whole():
    t = Tree()
    t.put("./Big", "v" * 700, "chr")
    data = J.snapshot_bytes(t)
    other = Tree()
    J.restore(other, J.reader(data))
    assert other.value("./Big") == "v" * 700


def test_rule_an_item_with_a_bad_depth_or_name_is_refused():
    items = _items(J.snapshot_bytes(_sample()))
    assert [i[:2] for i in items[1:]] == [[1, "N"], [2, "t"], [2, "u"]]
    for at, field, bad in ((1, 0, 0), (1, 0, 2), (2, 0, 3), (1, 0, "1"), (1, 1, ""), (2, 1, 7), (3, 1, b"u")):
        changed = [list(i) for i in items]
        changed[at][field] = bad
        _refused(_encoded(changed))


def test_rule_a_node_of_the_wrong_shape_or_a_value_its_format_refuses_is_refused():
    items = _items(J.snapshot_bytes(_sample()))
    node = items[2][2]  # ./N/t: a leaf with a title, so a full entry
    assert type(node) is list and len(node) == 6
    short, long_, flags, value = list(node), list(node), list(node), list(node)
    short.pop()
    long_.append(None)
    flags[3] = "0"  # flags must be an int
    value[0] = 12  # a chr leaf holding an int
    for entry in (short, long_, flags, value):
        changed = [list(i) for i in items]
        changed[2] = [2, "t", entry]
        _refused(_encoded(changed))


def test_rule_an_item_nested_past_four_levels_is_refused_unparsed():
    items = _items(J.snapshot_bytes(_sample()))
    deep = [list(i) for i in items]
    deep[3] = [2, "u", [[[[1]]]]]  # item, entry, and three more: five levels
    msg = _refused(_encoded(deep))
    assert "deep" in msg, msg


def test_rule_a_record_applied_in_a_transaction_is_logged_as_itself():
    # replaying a record makes the change it names and no other: its redo is the record
    t = Tree()
    t.put("./N", fmt="node")
    t.put("./N/a", 1, "int")
    for record in (["title", "./N/a", "T"], ["val", "./N/a", 2, "int", None], ["acl", "./N/a", "Get=A"],
                   ["mv", "./N/a", "b"], ["del", "./N/b"]):
        t.begin()
        J.apply(t, record)
        assert t.pending() == [record], (record, t.pending())
        t.commit()
    assert t.value("./N") == []
