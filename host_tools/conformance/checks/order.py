"""protocol.md 6: which status wins when several apply. The order is URI syntax and limits
(400, 414), existence (404), what the command may do at all (405, 406), the ACL (425), the
value and its format (415, 400), capacity (420, 413). Each check makes two apply at once."""

from dmagent.agent import proto as P
from dmagent.host_tools.conformance.registry import Skipped, check

G = "status order"


def _closed(t):
    """A folder p2 may do nothing in, with a leaf and an interior node."""
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.node(d + "/N")
    return d


@check("protocol.md 6 order: 400 (URI syntax) before 404 (existence)", G)
def syntax_before_existence(t):
    d = t.dir()
    t.expect(t.get(d + "/Missing//x"), 400)


@check("protocol.md 6 order: 414 (URI limits) before 404 (existence)", G)
def limit_before_existence(t):
    seg = t.limits.get("MaxSegLen")
    if not seg:
        raise Skipped("no MaxSegLen")
    d = t.dir()
    t.expect(t.add(d + "/Missing/" + "s" * (seg + 1), 1, "int"), 414)


@check("protocol.md 6 order: 404 (existence) before 425 (ACL)", G)
def existence_before_acl(t):
    d = _closed(t)
    t.expect(t.get(d + "/Missing", who=t.p2), 404)


@check("protocol.md 6 order: 405 (command not allowed) before 425: Replace of an interior node", G)
def not_allowed_before_acl(t):
    d = _closed(t)
    t.expect(t.replace(d + "/N", "x", "chr", who=t.p2), 405)


@check("protocol.md 6 order: 406 (unsupported property) before 425", G)
def unsupported_before_acl(t):
    d = _closed(t)
    t.expect(t.get(d + "/L?prop=Colour", who=t.p2), 406)


@check("protocol.md 6 order: 425 (ACL) before 415 (value format)", G)
def acl_before_format(t):
    d = _closed(t)
    t.expect(t.replace(d + "/L", "not an int", who=t.p2), 425)
    t.equal(t.value(d + "/L"), 1, "value")


@check("protocol.md 6 order: 418 (exists) before 425 on Add", G)
def exists_before_acl(t):
    d = _closed(t)
    t.expect(t.add(d + "/L", 2, "int", who=t.p2), 418)


@check("protocol.md 6 order: 405 (permanent) before 425 on Delete of ./DevInfo", G)
def permanent_before_acl(t):
    t.expect(t.delete("./DevInfo", who=t.p2), 405)


@check("protocol.md 6 order: 404 before 405: Replace of an interior node that does not exist", G)
def existence_before_not_allowed(t):
    d = t.dir()
    t.expect(t.replace(d + "/Missing?prop=Format", "chr"), 404)


@check("protocol.md 6 status: every response, refused ones included, carries a status and its id", G)
def always_status(t):
    d = t.dir()
    for msg in (t.message(P.OP_GET, uri=d + "/Missing"), t.message(P.OP_DELETE, uri="."),
                t.message(P.OP_GET, uri=d + "?prop=Colour")):
        resp = t.send(msg)
        t.true(isinstance(resp.get(P.K_STATUS), int), "no status in %r" % resp)
        t.equal(resp.get(P.K_ID), msg[P.K_ID], "id")
        t.true(isinstance(resp.get(P.K_MSG, ""), str), "msg is text")
