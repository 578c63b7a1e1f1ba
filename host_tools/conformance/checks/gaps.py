"""Rules an independent audit found broken in agents (issue 13), each its own check so a
device that gets them wrong says so: node names, Title length, Type on Replace, DMTNDS,
dates and times that exist, what ?list= tells, 407, ServerID changes and ACLs."""

from dmagent.agent import proto as P
from dmagent.host_tools.conformance.registry import Skipped, check

G = "audit"
DMTNDS = "application/vnd.syncml.dmtnds+xml"


@check("TND 6 node names: a node name MUST NOT contain '/': Add of a %2F segment is 400", G)
def slash_add(t):
    d = t.dir()
    t.expect(t.add(d + "/a%2Fb", 1, "int"), 400)
    t.expect(t.get(d + "/a"), 404, what="nothing under the name's first half")


@check("TND 6 node names: a rename to a name with '/' is 400", G)
def slash_rename(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    t.expect(t.replace(d + "/L?prop=Name", "a/b"), 400)
    t.equal(t.value(d + "/L"), 1, "the leaf under its old name")


@check("TND 7.7.5 Title: a Title longer than 255 bytes is refused and the old one kept", G)
def title_long(t):
    d = t.dir()
    t.leaf(d + "/L", 1, "int")
    resp = t.replace(d + "/L?prop=Title", "t" * 300)
    t.true(400 <= (resp.get(P.K_STATUS) or 0) < 500, "a 300-byte Title got %s" % resp.get(P.K_STATUS))
    t.equal(t.value(d + "/L?prop=Title"), "", "Title")


@check("TND 7.7.7 Type: a Replace that gives a Type updates the leaf's Type", G)
def replace_type(t):
    d = t.dir()
    t.leaf(d + "/L", "{}", "chr", mime="text/plain")
    t.ok(P.OP_REPLACE, uri=d + "/L", value="[]", format="chr", type="application/json")
    t.equal(t.value(d + "/L?prop=Type"), "application/json", "Type after Replace")


@check("TND 7.7.7 Type: an Add with the DMTNDS MIME type (a tree, not a value) is 415", G)
def dmtnds(t):
    d = t.dir()
    t.expect(t.add(d + "/T", "<MgmtTree/>", "xml", mime=DMTNDS), 415)
    t.expect(t.get(d + "/T"), 404, what="nothing created")


@check("TND 7.7.2 Format date: a date that does not exist (2024-13-45) is 415", G)
def bad_date(t):
    d = t.dir()
    t.expect(t.add(d + "/D", "2024-13-45", "date"), 415)


@check("TND 7.7.2 Format time: a time that does not exist (25:61:61) is 415", G)
def bad_time(t):
    d = t.dir()
    t.expect(t.add(d + "/T", "25:61:61", "time"), 415)


@check("TND 7.7.2 Format: ?list=StructData tells an empty interior node from a null leaf", G)
def list_format(t):
    d = t.dir()
    t.node(d + "/Empty")
    t.leaf(d + "/Null", None, "null")
    entries = {e[0]: list(e[1:]) for e in t.value(d + "?list=StructData")}
    t.true(entries[d + "/Empty"] != entries[d + "/Null"],
           "the two entries are the same: %r" % entries[d + "/Empty"])


@check("TND 7.3 ?list=TNDS: a tree serialisation the device does not offer is 406, not 400", G)
def list_tnds(t):
    d = t.dir()
    t.expect(t.get(d + "?list=TNDS"), 406, 200)


@check("DM-Protocol status 407: a request that needs a principal, sent without any credentials, is 407", G)
def no_credentials(t):
    d = t.dir()
    t.expect(t.add(d + "/Anon", 1, "int", who=None), 407)


@check("omadm-rules DMAcc: replacing a ServerID value moves the old id's rights in every ACL to the new id", G)
def server_id_replace(t):
    account = None
    for name in t.value("./DMAcc") or []:
        uri = "./DMAcc/%s/ServerID" % name
        sid = t.get(uri).get(P.K_VALUE)
        if sid and sid not in t.target.servers and t.verdict(uri, t.p1, P.CMD_REPLACE).get(P.K_ALLOWED):
            account = (uri, sid)
            break
    if account is None:
        raise Skipped("needs a DMAcc account of another server whose ServerID %s may Replace" % t.p1)
    uri, sid = account
    d = t.dir()
    t.node(d + "/N")
    t.set_acl(d + "/N", "Delete=%s&Get=%s&Replace=%s" % (sid, t.p1, t.p1))
    new = sid + "Moved"
    t.expect(t.replace(uri, new), 200)
    try:
        t.equal(t.value(d + "/N?prop=ACL"), "Delete=%s&Get=%s&Replace=%s" % (new, t.p1, t.p1),
                "the ACL that named the old id")
    finally:
        t.expect(t.replace(uri, sid), 200, what="putting the ServerID back")


def _ddf(t):
    if not t.target.ddf:
        raise Skipped("give --ddf FILE: the device's own DDF says what to enforce")
    return t.target.ddf


@check("DM-TND DDF AccessType: Replace of a leaf whose AccessType excludes it is 405 (before the ACL)", G,
       needs=("ddf",))
def access_replace(t):
    nodes, _ = _ddf(t)
    leaves = [n for n in nodes if n["format"] != "node" and "Replace" not in n.get("access", ())]
    if not leaves:
        raise Skipped("the DDF has no leaf without Replace")
    for node in leaves:
        resp = t.get(node["uri"])
        if resp.get(P.K_STATUS) != 200:
            continue
        before = resp.get(P.K_VALUE)
        answer = t.replace(node["uri"], before)  # the same value: nothing changes even if it is taken
        t.expect(answer, 405, what="Replace of %s" % node["uri"])


@check("DM-TND DDF AccessType: Add under an interior node whose AccessType excludes Add is 405", G, needs=("ddf",))
def access_add(t):
    nodes, _ = _ddf(t)
    closed = [n for n in nodes if n["format"] == "node" and "Add" not in n.get("access", ())]
    if not closed:
        raise Skipped("the DDF has no interior node without Add")
    for node in closed:
        uri = node["uri"] + "/ConformanceAdd"
        resp = t.add(uri, 1, "int")
        if resp.get(P.K_STATUS) == 200:
            t.delete(uri)
        t.expect(resp, 405, what="Add under %s" % node["uri"])


@check("DM-TND DDF Occurrence: one child more than the placeholder's Occurrence allows is refused (420)", G,
       needs=("ddf",))
def occurrence(t):
    _, limits = _ddf(t)
    if not limits:
        raise Skipped("the DDF limits no placeholder's Occurrence")
    for parent, most in sorted(limits.items()):
        have = t.get(parent)
        if have.get(P.K_STATUS) != 200 or most - len(have.get(P.K_VALUE) or []) > 8:
            continue
        added = []
        try:
            for i in range(most - len(have[P.K_VALUE]) + 1):
                uri = "%s/Conf%d" % (parent, i)
                resp = t.add(uri, "x", "chr")
                if resp.get(P.K_STATUS) != 200:
                    break
                added.append(uri)
            t.expect(resp, 420, 418, what="child %d of %s (Occurrence at most %d)" % (len(have[P.K_VALUE]) + len(added) + 1,
                                                                                   parent, most))
        finally:
            for uri in added:
                t.delete(uri)
        return
    raise Skipped("no placeholder's parent readable here")
