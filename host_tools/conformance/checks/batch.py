"""Atomic and Sequence (OMA DM Protocol; protocol.md 4): all or nothing with 216/215/507,
and in order with a stop at the first failure."""

from dmagent.agent import proto as P
from dmagent.host_tools.conformance.registry import check

G = "atomic and sequence"


def _item(op, **fields):
    item = {P.K_OP: op}
    for name, value in fields.items():
        item[{"uri": P.K_URI, "value": P.K_VALUE, "format": P.K_FORMAT, "items": P.K_ITEMS,
              "source": P.K_SOURCE}[name]] = value
    return item


def _statuses(resp):
    return [i.get(P.K_STATUS) for i in resp.get(P.K_ITEMS) or []]


@check("DM-Protocol Atomic: every item succeeds: 200 for each, and all of them take effect", G)
def atomic_ok(t):
    d = t.dir()
    resp = t.ok(P.OP_ATOMIC, items=[_item(P.OP_ADD, uri=d + "/A", format="node"),
                                    _item(P.OP_ADD, uri=d + "/A/L", value=1, format="int")])
    t.equal(_statuses(resp), [200, 200], "item statuses")
    t.equal(t.value(d + "/A/L"), 1, "the leaf")


@check("DM-Protocol Atomic: one item fails: 507, the items before it 216, the failed one its own status, the rest 215", G)
def atomic_fail_statuses(t):
    d = t.dir()
    t.leaf(d + "/X", 1, "int")
    resp = t.req(P.OP_ATOMIC, items=[_item(P.OP_ADD, uri=d + "/A", format="node"),
                                     _item(P.OP_ADD, uri=d + "/X", value=2, format="int"),
                                     _item(P.OP_DELETE, uri=d + "/X")])
    t.expect(resp, 507)
    t.equal(_statuses(resp), [216, 418, 215], "item statuses")


@check("DM-Protocol Atomic: a failed Atomic rolls back an Add made before the failure", G)
def atomic_rollback_add(t):
    d = t.dir()
    t.req(P.OP_ATOMIC, items=[_item(P.OP_ADD, uri=d + "/A", format="node"),
                              _item(P.OP_ADD, uri=d + "/Missing/L", value=1, format="int")])
    t.expect(t.get(d + "/A"), 404, what="the rolled back Add")


@check("DM-Protocol Atomic: a failed Atomic rolls back a Replace (the old value is back)", G)
def atomic_rollback_replace(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.req(P.OP_ATOMIC, items=[_item(P.OP_REPLACE, uri=d + "/L", value=2),
                              _item(P.OP_DELETE, uri=d + "/Missing")])
    t.equal(t.value(d + "/L"), 1, "value")


@check("DM-Protocol Atomic: a failed Atomic rolls back a Delete (the subtree is back, ACLs and all)", G)
def atomic_rollback_delete(t):
    d = t.dir()
    t.node(d + "/N")
    t.leaf(d + "/N/L", 5, "int")
    t.set_acl(d + "/N", "Delete=%s&Get=%s&Replace=%s" % ((t.p1,) * 3))
    t.req(P.OP_ATOMIC, items=[_item(P.OP_DELETE, uri=d + "/N"), _item(P.OP_DELETE, uri=d + "/Missing")])
    t.equal(t.value(d + "/N/L"), 5, "the leaf")
    t.equal(t.value(d + "/N?prop=ACL"), "Delete=%s&Get=%s&Replace=%s" % ((t.p1,) * 3), "the ACL")


@check("DM-Protocol Atomic: an Atomic refused by the ACL half way changes nothing", G)
def atomic_acl(t):
    d = t.dir()
    t.set_acl(d, "Add=%s+%s&Get=%s&Delete=%s&Replace=%s" % (t.p1, t.p2, t.p1, t.p1, t.p1))
    t.leaf(d + "/L", 1, "int")
    resp = t.req(P.OP_ATOMIC, who=t.p2, items=[_item(P.OP_ADD, uri=d + "/New", value=1, format="int"),
                                               _item(P.OP_REPLACE, uri=d + "/L", value=2)])
    t.expect(resp, 507)
    t.equal(_statuses(resp), [216, 425], "item statuses")
    t.expect(t.get(d + "/New"), 404, what="the Add before")


@check("protocol.md 4 atomic: an Atomic without items, or with an empty list, is 400", G)
def atomic_empty(t):
    t.expect(t.req(P.OP_ATOMIC), 400, what="no items")
    t.expect(t.req(P.OP_ATOMIC, items=[]), 400, what="[]")


@check("protocol.md 4 atomic: an item that is not a map fails the Atomic (507, item 400)", G)
def atomic_not_map(t):
    d = t.dir()
    resp = t.req(P.OP_ATOMIC, items=[_item(P.OP_ADD, uri=d + "/A", format="node"), 7])
    t.expect(resp, 507)
    t.equal(_statuses(resp), [216, 400], "item statuses")


@check("DM-Protocol Atomic: Get inside an Atomic is 500 (not allowed there)", G)
def atomic_get(t):
    d = t.dir()
    resp = t.req(P.OP_ATOMIC, items=[_item(P.OP_GET, uri=d)])
    t.equal(_statuses(resp), [500], "item status")


@check("DM-Protocol Atomic: an Atomic nested in an Atomic is 500", G)
def atomic_nested(t):
    d = t.dir()
    inner = _item(P.OP_ATOMIC, items=[_item(P.OP_ADD, uri=d + "/A", format="node")])
    resp = t.req(P.OP_ATOMIC, items=[inner])
    t.equal(_statuses(resp), [500], "item status")
    t.expect(t.get(d + "/A"), 404, what="the inner Add")


@check("DM-Protocol Atomic: Copy may be an Atomic item and is rolled back with it", G)
def atomic_copy(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.req(P.OP_ATOMIC, items=[_item(P.OP_COPY, uri=d + "/C", source=d + "/L"),
                              _item(P.OP_DELETE, uri=d + "/Missing")])
    t.expect(t.get(d + "/C"), 404, what="the rolled back copy")


@check("DM-Protocol Sequence: the items run in order, a Get sees the Add before it", G)
def sequence_order(t):
    d = t.dir()
    resp = t.ok(P.OP_SEQUENCE, items=[_item(P.OP_ADD, uri=d + "/L", value=3, format="int"),
                                      _item(P.OP_GET, uri=d + "/L")])
    t.equal(_statuses(resp), [200, 200], "item statuses")
    t.equal(resp[P.K_ITEMS][1].get(P.K_VALUE), 3, "the Get's value")


@check("protocol.md 4 sequence (Decision): the first failure stops the Sequence, the rest are 215", G)
def sequence_stop(t):
    d = t.dir()
    resp = t.ok(P.OP_SEQUENCE, items=[_item(P.OP_ADD, uri=d + "/A", value=1, format="int"),
                                      _item(P.OP_DELETE, uri=d + "/Missing"),
                                      _item(P.OP_ADD, uri=d + "/B", value=1, format="int")])
    t.equal(_statuses(resp), [200, 404, 215], "item statuses")
    t.expect(t.get(d + "/B"), 404, what="the item after the failure")


@check("DM-Protocol Sequence: a Sequence is not atomic: what ran before a failure stays", G)
def sequence_not_atomic(t):
    d = t.dir()
    t.req(P.OP_SEQUENCE, items=[_item(P.OP_ADD, uri=d + "/A", value=1, format="int"),
                                _item(P.OP_DELETE, uri=d + "/Missing")])
    t.equal(t.value(d + "/A"), 1, "the Add before the failure")


@check("DM-Protocol Sequence: an Atomic inside a Sequence is all or nothing on its own", G)
def sequence_atomic(t):
    d = t.dir()
    atomic = _item(P.OP_ATOMIC, items=[_item(P.OP_ADD, uri=d + "/A", format="node"),
                                       _item(P.OP_DELETE, uri=d + "/Missing")])
    resp = t.ok(P.OP_SEQUENCE, items=[_item(P.OP_ADD, uri=d + "/L", value=1, format="int"), atomic])
    t.equal(_statuses(resp), [200, 507], "item statuses")
    t.expect(t.get(d + "/A"), 404, what="the rolled back Atomic")
    t.equal(t.value(d + "/L"), 1, "the Add before it")


@check("DM-Protocol Sequence: a Sequence inside a Sequence is 500", G)
def sequence_nested(t):
    d = t.dir()
    inner = _item(P.OP_SEQUENCE, items=[_item(P.OP_GET, uri=d)])
    resp = t.ok(P.OP_SEQUENCE, items=[inner])
    t.equal(_statuses(resp), [500], "item status")


@check("protocol.md 4 sequence: a Sequence without items is 400", G)
def sequence_empty(t):
    t.expect(t.req(P.OP_SEQUENCE, items=[]), 400)
