"""omadm-rules "Which right is needed for what": each row of the table, granted and refused,
with p2 as the principal whose rights the checks change; the check op's verdicts; the
creator exception."""

from dmagent.agent import proto as P
from dmagent.host_tools.conformance.registry import check

G = "rights"


def _acl(**cmds):
    return "&".join("%s=%s" % (cmd, ids) for cmd, ids in sorted(cmds.items()))


def _folder(t, **p2_rights):
    """A folder whose ACL gives p1 everything and p2 the commands named (True)."""
    d = t.dir()
    ids = {c: t.p1 for c in P.COMMANDS}
    for cmd, on in p2_rights.items():
        if on:
            ids[cmd] += "+" + t.p2
    t.set_acl(d, _acl(**ids))
    return d


@check("omadm-rules rights: Get needs Get on the node (425 without)", G)
def get_needs_get(t):
    d = _folder(t)
    t.leaf(d + "/L", 1, "int")
    t.expect(t.get(d + "/L", who=t.p2), 425)


@check("omadm-rules rights: Get of a property needs Get on the node (425 without)", G)
def prop_needs_get(t):
    d = _folder(t)
    t.leaf(d + "/L", 1, "int")
    t.expect(t.get(d + "/L?prop=Format", who=t.p2), 425)


@check("omadm-rules rights: Get with Get granted is 200", G)
def get_granted(t):
    d = _folder(t, Get=True)
    t.leaf(d + "/L", 1, "int")
    t.equal(t.value(d + "/L", who=t.p2), 1, "value")


@check("omadm-rules rights: Replace of a leaf needs Replace (Get alone is 425)", G)
def replace_needs_replace(t):
    d = _folder(t, Get=True)
    t.leaf(d + "/L", 1, "int")
    t.expect(t.replace(d + "/L", 2, who=t.p2), 425)
    t.equal(t.value(d + "/L"), 1, "value")


@check("omadm-rules rights: Replace of a leaf with Replace granted is 200", G)
def replace_granted(t):
    d = _folder(t, Replace=True)
    t.leaf(d + "/L", 1, "int")
    t.expect(t.replace(d + "/L", 2, who=t.p2), 200)


@check("omadm-rules rights: Add needs Add on the parent (425 without)", G)
def add_needs_add(t):
    d = _folder(t, Get=True)
    t.expect(t.add(d + "/L", 1, "int", who=t.p2), 425)
    t.expect(t.get(d + "/L"), 404, what="nothing created")


@check("omadm-rules rights: Add with Add on the parent is 200", G)
def add_granted(t):
    d = _folder(t, Add=True, Replace=True)
    t.expect(t.add(d + "/L", 1, "int", who=t.p2), 200)


@check("omadm-rules rights: Delete needs Delete on the node (425 without)", G)
def delete_needs_delete(t):
    d = _folder(t, Get=True)
    t.leaf(d + "/L", 1, "int")
    t.expect(t.delete(d + "/L", who=t.p2), 425)
    t.equal(t.value(d + "/L"), 1, "still there")


@check("omadm-rules Delete (Decision): Delete needs Delete on every node below too, else nothing is deleted", G)
def delete_whole_subtree(t):
    d = _folder(t, Delete=True)
    t.node(d + "/N")
    t.leaf(d + "/N/L", 1, "int")
    t.set_acl(d + "/N/L", _acl(Delete=t.p1, Get=t.p1, Replace=t.p1))
    t.expect(t.delete(d + "/N", who=t.p2), 425)
    t.equal(t.value(d + "/N/L"), 1, "the leaf below")


@check("omadm-rules rights: Delete with Delete on the node and below is 200", G)
def delete_granted(t):
    d = _folder(t, Delete=True)
    t.node(d + "/N")
    t.leaf(d + "/N/L", 1, "int")
    t.expect(t.delete(d + "/N", who=t.p2), 200)


@check("omadm-rules rights: Replace of an interior node's ACL is allowed by Replace on the node itself", G)
def acl_interior_self(t):
    d = _folder(t)
    t.node(d + "/N")
    t.set_acl(d + "/N", _acl(Replace=t.p2, Delete=t.p1, Get=t.p1))
    t.expect(t.replace(d + "/N?prop=ACL", _acl(Replace=t.p2, Delete=t.p1, Get=t.p1 + "+" + t.p2), who=t.p2), 200)


@check("omadm-rules rights: Replace of an interior node's ACL is allowed by Replace on its parent", G)
def acl_interior_parent(t):
    d = _folder(t, Replace=True)
    t.node(d + "/N")
    t.set_acl(d + "/N", _acl(Get=t.p1))
    t.expect(t.replace(d + "/N?prop=ACL", _acl(Get=t.p2), who=t.p2), 200)


@check("omadm-rules rights: Replace of an interior node's ACL without Replace on it or its parent is 425", G)
def acl_interior_denied(t):
    d = _folder(t, Get=True)
    t.node(d + "/N")
    t.expect(t.replace(d + "/N?prop=ACL", _acl(Get="*"), who=t.p2), 425)
    t.equal(t.value(d + "/N?prop=ACL"), "", "ACL")


@check("omadm-rules rights: Replace of a leaf's ACL needs Replace on the parent: Replace on the leaf is not enough", G)
def acl_leaf_self_not_enough(t):
    d = _folder(t, Get=True)
    t.leaf(d + "/L", 1, "int")
    t.set_acl(d + "/L", _acl(Replace=t.p2, Get=t.p1))
    t.expect(t.replace(d + "/L?prop=ACL", _acl(Get="*"), who=t.p2), 425)


@check("omadm-rules rights: Replace of a leaf's ACL with Replace on the parent is 200", G)
def acl_leaf_parent(t):
    d = _folder(t, Replace=True)
    t.leaf(d + "/L", 1, "int")
    t.expect(t.replace(d + "/L?prop=ACL", _acl(Get=t.p2), who=t.p2), 200)
    t._acls.append(d + "/L")


@check("omadm-rules rights: a rename needs Replace on the node (425 without)", G)
def rename_needs_replace(t):
    d = _folder(t, Get=True)
    t.leaf(d + "/L", 1, "int")
    t.expect(t.replace(d + "/L?prop=Name", "M", who=t.p2), 425)


@check("omadm-rules rights: Replace of Title needs Replace on the node (425 without)", G)
def title_needs_replace(t):
    d = _folder(t, Get=True)
    t.leaf(d + "/L", 1, "int")
    t.expect(t.replace(d + "/L?prop=Title", "t", who=t.p2), 425)


@check("omadm-rules rights: the effective-ACL query needs Get on the node (425 without)", G)
def acl_query_needs_get(t):
    d = _folder(t)
    t.leaf(d + "/L", 1, "int")
    t.expect(t.acl(d + "/L", who=t.p2), 425)


@check("omadm-rules rights: a principal may ask the check op about itself without Get", G)
def check_self(t):
    d = _folder(t)
    t.leaf(d + "/L", 1, "int")
    resp = t.expect(t.verdict(d + "/L", t.p2, P.CMD_REPLACE, who=t.p2), 200)
    t.equal((resp[P.K_ALLOWED], resp[P.K_FROM]), (False, d), "verdict, from")


@check("omadm-rules rights: asking the check op about another principal needs Get (425 without)", G)
def check_other_needs_get(t):
    d = _folder(t)
    t.leaf(d + "/L", 1, "int")
    t.expect(t.verdict(d + "/L", t.p1, P.CMD_GET, who=t.p2), 425)


@check("protocol.md 4 check: the verdict for Get and Replace is the ACL's, and names the node it came from", G)
def check_verdicts(t):
    d = _folder(t, Get=True)
    t.node(d + "/N")
    t.leaf(d + "/N/L", 1, "int")
    for server, cmd, wanted in ((t.p2, P.CMD_GET, True), (t.p2, P.CMD_REPLACE, False),
                                (t.p1, P.CMD_REPLACE, True), ("ConformanceNobody", P.CMD_GET, False)):
        resp = t.expect(t.verdict(d + "/N/L", server, cmd), 200)
        t.equal((resp[P.K_ALLOWED], resp[P.K_FROM]), (wanted, d), "%s %s" % (server, cmd))


@check("protocol.md 4 check: Add is decided on the parent", G)
def check_add_parent(t):
    d = _folder(t, Add=True)
    t.node(d + "/N")
    t.set_acl(d + "/N", _acl(Get=t.p1))
    resp = t.expect(t.verdict(d + "/N/New", t.p2, P.CMD_ADD), 200)
    t.equal((resp[P.K_ALLOWED], resp[P.K_FROM]), (False, d + "/N"), "Add under N")
    resp = t.expect(t.verdict(d + "/N", t.p2, P.CMD_ADD), 200)
    t.equal(resp[P.K_ALLOWED], True, "Add of N itself (parent grants)")


@check("protocol.md 4 check: Delete is decided on the node and everything below", G)
def check_delete_subtree(t):
    d = _folder(t, Delete=True)
    t.node(d + "/N")
    t.leaf(d + "/N/L", 1, "int")
    t.set_acl(d + "/N/L", _acl(Delete=t.p1))
    resp = t.expect(t.verdict(d + "/N", t.p2, P.CMD_DELETE), 200)
    t.equal(resp[P.K_ALLOWED], False, "Delete of N with a leaf p2 may not delete")


@check("protocol.md 4 check: Replace on ?prop=ACL follows the ACL-replace rule (leaf: the parent's Replace)", G)
def check_acl_rule(t):
    d = _folder(t, Get=True)
    t.leaf(d + "/L", 1, "int")
    t.set_acl(d + "/L", _acl(Replace=t.p2, Get=t.p1))
    resp = t.expect(t.verdict(d + "/L?prop=ACL", t.p2, P.CMD_REPLACE), 200)
    t.equal(resp[P.K_ALLOWED], False, "Replace of the leaf's ACL")


@check("protocol.md 4 check: a check without a server or with an unknown command is 400", G)
def check_bad(t):
    d = t.dir()
    t.expect(t.req(P.OP_CHECK, uri=d, cmd=P.CMD_GET), 400, what="no server")
    t.expect(t.req(P.OP_CHECK, uri=d, server=t.p1, cmd="Fetch"), 400, what="cmd Fetch")


@check("omadm-rules creator exception: an interior node added without Replace on the parent gets Add, Delete, Replace for its creator", G)
def creator_exception(t):
    d = _folder(t, Add=True, Get=True)
    t.expect(t.add(d + "/Made", fmt="node", who=t.p2), 200)
    t._acls.append(d + "/Made")
    # Nobody may Get the new node (no Get in its ACL): the creator asks about itself.
    for cmd, wanted in ((P.CMD_ADD, True), (P.CMD_DELETE, True), (P.CMD_REPLACE, True), (P.CMD_GET, False)):
        uri = d + "/Made" + ("/Child" if cmd == P.CMD_ADD else "")  # Add is decided on the parent
        resp = t.expect(t.verdict(uri, t.p2, cmd, who=t.p2), 200)
        t.equal((resp[P.K_ALLOWED], resp[P.K_FROM]), (wanted, d + "/Made"), "creator's " + cmd)


@check("omadm-rules creator exception: a leaf added without Replace on the parent keeps an empty ACL", G)
def creator_leaf(t):
    d = _folder(t, Add=True, Get=True)
    t.expect(t.add(d + "/L", 1, "int", who=t.p2), 200)
    t.equal(t.value(d + "/L?prop=ACL"), "", "own ACL")


@check("omadm-rules creator exception: with Replace on the parent the new interior node's ACL is empty", G)
def creator_with_replace(t):
    d = _folder(t, Add=True, Replace=True, Get=True)
    t.expect(t.add(d + "/Made", fmt="node", who=t.p2), 200)
    t.equal(t.value(d + "/Made?prop=ACL"), "", "own ACL")


@check("omadm-rules rights: a principal whose id is in no ACL gets 425 for Get, Replace, Delete", G)
def stranger(t):
    d = _folder(t)
    t.leaf(d + "/L", 1, "int")
    t.expect(t.get(d + "/L", who=t.p2), 425, what="Get")
    t.expect(t.replace(d + "/L", 5, who=t.p2), 425, what="Replace")
    t.expect(t.delete(d + "/L", who=t.p2), 425, what="Delete")
    t.equal(t.value(d + "/L"), 1, "value")
