"""TND 7.7.1 ACLs: the grammar (omadm-rules "ACL syntax"), whole-identifier matching, and
inheritance (all or nothing, from the nearest non-empty ancestor; the root's own rules)."""

from dmagent.agent import proto as P
from dmagent.host_tools.conformance.registry import check

G = "acl"

MALFORMED = [
    ("Get=", "a command with no ids"),
    ("Get=*+%(p1)s", "'*' that does not stand alone"),
    ("Fetch=%(p1)s", "an unknown command"),
    ("get=%(p1)s", "a command in the wrong case"),
    ("Get=Server A", "white space in an id"),
    ("Get=%(p1)s&", "a trailing '&'"),
    ("Get==%(p1)s", "a doubled '='"),
    ("Get=%(p1)s++%(p1)s", "an empty id between '+'"),
    ("Get", "no '='"),
    ("&Get=%(p1)s", "a leading '&'"),
]


def _malformed(acl, what):
    def run(t):
        d = t.dir()
        t.leaf(d + "/L", 1, "int")
        before = t.value(d + "?prop=ACL")
        text = acl % {"p1": t.p1}
        t.expect(t.replace(d + "?prop=ACL", text), 400, what=repr(text))
        t.equal(t.value(d + "?prop=ACL"), before, "the ACL after the refused Replace")
    return run


for _acl, _what in MALFORMED:
    check("TND 7.7.1 ACL syntax: an ACL with %s is refused with 400 and changes nothing" % _what, G)(
        _malformed(_acl, _what))


@check("TND 7.7.1 ACL syntax: a well-formed ACL with several commands and ids is accepted", G)
def well_formed(t):
    d = t.dir()
    t.node(d + "/N")
    acl = "Add=%s+%s&Get=*&Replace=%s" % (t.p1, "Other", t.p1)
    t.set_acl(d + "/N", acl)
    t.equal(t.value(d + "/N?prop=ACL"), acl, "ACL")


@check("TND 7.7.1 ACL syntax: the empty ACL is valid", G)
def empty_acl(t):
    d = t.dir()
    t.node(d + "/N")
    t.set_acl(d + "/N", "Get=" + t.p1)
    t.set_acl(d + "/N", "")
    t.equal(t.value(d + "/N?prop=ACL"), "", "ACL")


@check("omadm-rules ACL syntax: ids match whole: Get=<p1>X grants nothing to <p1>", G)
def whole_id_suffix(t):
    d = t.dir()
    t.node(d + "/N")
    t.leaf(d + "/N/L", 1, "int")
    t.set_acl(d + "/N", "Get=%sX&Replace=%s" % (t.p1, t.p1))
    t.expect(t.get(d + "/N/L"), 425)


@check("omadm-rules ACL syntax: ids match whole: an id that is a prefix of <p1> grants nothing to it", G)
def whole_id_prefix(t):
    d = t.dir()
    t.node(d + "/N")
    t.leaf(d + "/N/L", 1, "int")
    t.set_acl(d + "/N", "Get=%s+%s&Replace=%s" % (t.p1[:-1], t.p1 + "B", t.p1))
    t.expect(t.get(d + "/N/L"), 425)


@check("omadm-rules ACL syntax: '*' grants every principal", G)
def star(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.set_acl(d, "Get=*&Add=%s&Delete=%s&Replace=%s" % ((t.p1,) * 3))
    t.equal(t.value(d + "/L", who=t.p2), 1, "Get by p2")


@check("TND 7.7.1 ACL inheritance: an empty ACL inherits the nearest non-empty ancestor's", G)
def inherit_nearest(t):
    d = t.dir()
    t.node(d + "/A")
    t.node(d + "/A/B")
    t.leaf(d + "/A/B/L", 1, "int")
    acl = "Get=%s&Replace=%s" % (t.p1, t.p1)
    t.set_acl(d + "/A", acl)
    resp = t.expect(t.acl(d + "/A/B/L"), 200)
    t.equal((resp[P.K_ACL], resp[P.K_EFFECTIVE], resp[P.K_FROM]), ("", acl, d + "/A"), "own, effective, from")


@check("TND 7.7.1 ACL inheritance: all or nothing, never per command", G)
def inherit_all_or_nothing(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.node(d + "/N")
    t.leaf(d + "/N/L", 1, "int")
    t.set_acl(d + "/N", "Get=" + t.p1)  # no Replace here, though d grants it: nothing inherited
    t.expect(t.replace(d + "/N/L", 2), 425)
    t.equal(t.value(d + "/N/L"), 1, "value")


@check("TND 7.7.1 ACL inheritance: never concatenated with an ancestor's", G)
def inherit_not_concatenated(t):
    d = t.dir()
    t.node(d + "/N")
    t.leaf(d + "/N/L", 1, "int")
    t.set_acl(d + "/N", "Get=%s&Replace=%s" % (t.p2, t.p1))
    t.expect(t.get(d + "/N/L"), 425, what="p1, whom only the folder above grants Get")


@check("TND 7.7.1 ACL property: Get ?prop=ACL is the node's own ACL, not the effective one", G)
def own_not_effective(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.equal(t.value(d + "/L?prop=ACL"), "", "own ACL of a leaf that inherits")


@check("omadm-rules inheritance: the effective-ACL query names the node it came from, the node itself when its own ACL is not empty", G)
def effective_own(t):
    d = t.dir()
    t.node(d + "/N")
    acl = "Get=" + t.p1
    t.set_acl(d + "/N", acl)
    resp = t.expect(t.acl(d + "/N"), 200)
    t.equal((resp[P.K_ACL], resp[P.K_EFFECTIVE], resp[P.K_FROM]), (acl, acl, d + "/N"), "own, effective, from")


@check("TND 7.7.1 root ACL: the root has an ACL whose Add is '*'", G)
def root_add_star(t):
    resp = t.expect(t.acl("."), 200)
    own = resp[P.K_ACL]
    t.true(own, "the root's ACL is empty")
    adds = [e.split("=", 1)[1] for e in own.split("&") if e.startswith("Add=")]
    t.equal(adds, ["*"], "the root's Add")
    t.equal(resp[P.K_FROM], ".", "from")


@check("omadm-rules root ACL: replacing the root's ACL with Add not '*' is refused and changes nothing", G)
def root_add_stays(t):
    before = t.expect(t.acl("."), 200)[P.K_ACL]
    t.expect(t.replace(".?prop=ACL", "Add=%s&Get=*" % t.p1), 405, 425)
    t.equal(t.expect(t.acl("."), 200)[P.K_ACL], before, "the root's ACL")
