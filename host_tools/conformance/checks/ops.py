"""The commands (OMA DM Protocol 6.5: Add, Replace, Delete, Get, Exec, Copy) on a scratch
folder: what each does, and the status of each way it can be refused."""

from dmagent.agent import proto as P
from dmagent.host_tools.conformance.registry import Skipped, check

G = "ops"
ECHO = "./DevDetail/Ext/Echo"


@check("DM-Protocol Add: a leaf is created with its value and format, Get reads them back", G)
def add_leaf(t):
    d = t.dir()
    t.leaf(d + "/L", "hello", "chr")
    resp = t.expect(t.get(d + "/L"), 200)
    t.equal((resp.get(P.K_VALUE), resp.get(P.K_FORMAT)), ("hello", "chr"), "value and format")


@check("DM-Protocol Add: an interior node (format node) is created empty; Get lists no children", G)
def add_node(t):
    d = t.dir()
    t.node(d + "/N")
    resp = t.expect(t.get(d + "/N"), 200)
    t.equal((resp.get(P.K_VALUE), resp.get(P.K_FORMAT)), ([], "node"), "children and format")


@check("TND 6 tree: Get of an interior node gives its child names in name order", G)
def child_names(t):
    d = t.dir()
    for name in ("b", "a", "c"):
        t.leaf("%s/%s" % (d, name), 1, "int")
    t.equal(t.value(d), ["a", "b", "c"], "child names")


@check("DM-Protocol Add status 418: Add of a node that exists is 418 and changes nothing", G)
def add_exists(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.expect(t.add(d + "/L", 2, "int"), 418)
    t.equal(t.value(d + "/L"), 1, "value after the refused Add")


@check("DM-Protocol Add status 404: Add under a parent that does not exist is 404", G)
def add_no_parent(t):
    d = t.dir()
    t.expect(t.add(d + "/Missing/L", 1, "int"), 404)


@check("TND 6 tree: Add under a leaf is 405 (a leaf has no children)", G)
def add_under_leaf(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.expect(t.add(d + "/L/X", 1, "int"), 405)


@check("TND 6 tree: Add of the root is 418 (it always exists)", G)
def add_root(t):
    t.expect(t.add(".", fmt="node"), 418)


@check("DM-Protocol Replace: a leaf's value is replaced and read back", G)
def replace_leaf(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.expect(t.replace(d + "/L", 7), 200)
    t.equal(t.value(d + "/L"), 7, "value")


@check("protocol.md 4 replace: without a format the leaf keeps its own; a value that does not match it is 415", G)
def replace_keeps_format(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.expect(t.replace(d + "/L", "seven"), 415)
    resp = t.expect(t.get(d + "/L"), 200)
    t.equal((resp[P.K_VALUE], resp[P.K_FORMAT]), (1, "int"), "leaf after the refused Replace")


@check("omadm-rules rights: Replace of an interior node's value is 405", G)
def replace_interior(t):
    d = t.dir()
    t.node(d + "/N")
    t.expect(t.replace(d + "/N", "x", "chr"), 405)


@check("DM-Protocol Replace status 404: Replace of a node that does not exist is 404", G)
def replace_missing(t):
    d = t.dir()
    t.expect(t.replace(d + "/Missing", 1, "int"), 404)


@check("protocol.md 4 replace: a Replace without a value is 400", G)
def replace_no_value(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.expect(t.req(P.OP_REPLACE, uri=d + "/L"), 400)


@check("DM-Protocol Delete: a deleted leaf is gone (Get 404)", G)
def delete_leaf(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.expect(t.delete(d + "/L"), 200)
    t.expect(t.get(d + "/L"), 404)


@check("DM-Protocol Delete: deleting an interior node deletes everything below it", G)
def delete_subtree(t):
    d = t.dir()
    t.node(d + "/N")
    t.node(d + "/N/M")
    t.leaf(d + "/N/M/L", 1, "int")
    t.expect(t.delete(d + "/N"), 200)
    for uri in (d + "/N", d + "/N/M", d + "/N/M/L"):
        t.expect(t.get(uri), 404, what=uri)


@check("DM-Protocol Delete status 404: Delete of a node that does not exist is 404", G)
def delete_missing(t):
    d = t.dir()
    t.expect(t.delete(d + "/Missing"), 404)


@check("omadm-rules Delete: the root cannot be deleted (405)", G)
def delete_root(t):
    t.expect(t.delete("."), 405)


@check("DM-Protocol Get status 404: Get of a node that does not exist is 404", G)
def get_missing(t):
    d = t.dir()
    t.expect(t.get(d + "/Missing"), 404)
    t.expect(t.get(d + "/Missing?prop=Format"), 404, what="a property of it")


@check("DM-Protocol Exec status 405: Exec of a node without an Exec handler is 405", G)
def exec_plain_leaf(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.expect(t.req(P.OP_EXEC, uri=d + "/L"), 405)


@check("DM-Protocol Exec status 404: Exec of a node that does not exist is 404", G)
def exec_missing(t):
    d = t.dir()
    t.expect(t.req(P.OP_EXEC, uri=d + "/Missing"), 404)


@check("DM-Protocol Exec: an Exec node runs with its data and answers 200 or 202 (DevDetail/Ext/Echo)", G)
def exec_echo(t):
    if t.get(ECHO).get(P.K_STATUS) == 404:
        raise Skipped("the device has no %s" % ECHO)
    resp = t.expect(t.req(P.OP_EXEC, uri=ECHO, value="ping"), 200, 202)
    if resp[P.K_STATUS] == 200:
        t.equal(resp.get(P.K_VALUE), "ping", "Echo's result")


@check("omadm-rules rights: Exec needs Exec in the node's ACL (425 without)", G)
def exec_needs_right(t):
    if t.get(ECHO).get(P.K_STATUS) == 404:
        raise Skipped("the device has no %s" % ECHO)
    allowed = t.expect(t.verdict(ECHO, "ConformanceNobody", P.CMD_EXEC), 200)[P.K_ALLOWED]
    t.equal(allowed, False, "Exec for an unknown server")


@check("DM-Protocol Copy: a leaf is copied with its value and format to a new node", G)
def copy_leaf(t):
    d = t.dir()
    t.leaf(d + "/L", 42, "int")
    t.expect(t.req(P.OP_COPY, uri=d + "/C", source=d + "/L"), 200)
    resp = t.expect(t.get(d + "/C"), 200)
    t.equal((resp[P.K_VALUE], resp[P.K_FORMAT]), (42, "int"), "the copy")
    t.equal(t.value(d + "/L"), 42, "the source")


@check("DM-Protocol Copy: the copy keeps the source's Type", G)
def copy_type(t):
    d = t.dir()
    t.leaf(d + "/L", "{}", "chr", mime="application/json")
    t.expect(t.req(P.OP_COPY, uri=d + "/C", source=d + "/L"), 200)
    t.equal(t.value(d + "/C?prop=Type"), "application/json", "Type of the copy")


@check("protocol.md 4 copy (Decision): a Copy onto an existing node is 418, never an overwrite", G)
def copy_exists(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.leaf(d + "/C", 2, "int")
    t.expect(t.req(P.OP_COPY, uri=d + "/C", source=d + "/L"), 418)
    t.equal(t.value(d + "/C"), 2, "the target")


@check("DM-Protocol Copy status 404: a Copy from a node that does not exist is 404", G)
def copy_missing(t):
    d = t.dir()
    t.expect(t.req(P.OP_COPY, uri=d + "/C", source=d + "/Missing"), 404)
    t.expect(t.get(d + "/C"), 404, what="the target")
