"""?list=Struct and ?list=StructData (omadm-rules "Tree and URIs", protocol.md 4 get):
what they list, for whom, in which order, and paging."""

from dmagent.agent import proto as P
from dmagent.host_tools.conformance.registry import check

G = "listing"


def _tree(t):
    d = t.dir()
    t.node(d + "/B")
    t.leaf(d + "/B/x", 2, "int")
    t.leaf(d + "/A", "a", "chr")
    t.node(d + "/C")
    return d


def _pages(t, uri, limit, who=None):
    """Every entry of a paged listing, and the number of pages."""
    entries, cursor, pages = [], None, 0
    while True:
        fields = {"uri": uri, "limit": limit}
        if cursor is not None:
            fields["cursor"] = cursor
        resp = t.expect(t.req(P.OP_GET, who or t.p1, **fields), 200)
        pages += 1
        entries += resp.get(P.K_VALUE) or []
        cursor = resp.get(P.K_NEXT)
        if cursor is None or pages > 50:
            return entries, pages


@check("omadm-rules ?list=Struct: the URIs at and below the node, depth first, children in name order", G)
def struct_order(t):
    d = _tree(t)
    t.equal(t.value(d + "?list=Struct"), [d, d + "/A", d + "/B", d + "/B/x", d + "/C"], "listing")


@check("omadm-rules ?list=StructData: [uri, value, format] entries with the leaves' values", G)
def struct_data(t):
    d = _tree(t)
    entries = {e[0]: e[1] for e in t.value(d + "?list=StructData")}
    t.equal((entries.get(d + "/A"), entries.get(d + "/B/x")), ("a", 2), "leaf values")


@check("omadm-rules ?list=: only nodes the requester may Get are listed", G)
def list_only_readable(t):
    d = _tree(t)
    t.set_acl(d, "Get=%s+%s&Replace=%s&Delete=%s&Add=%s" % (t.p1, t.p2, t.p1, t.p1, t.p1))
    t.set_acl(d + "/B", "Get=%s&Replace=%s&Delete=%s" % (t.p1, t.p1, t.p1))
    listed = t.value(d + "?list=Struct", who=t.p2)
    t.equal(listed, [d, d + "/A", d + "/C"], "listing for p2")


@check("protocol.md 4 get: ?list= with a limit pages; following next gives the whole listing once", G)
def paging(t):
    d = _tree(t)
    whole = t.value(d + "?list=Struct")
    entries, pages = _pages(t, d + "?list=Struct", 2)
    t.equal(entries, whole, "the pages joined")
    t.equal(pages, 3, "pages of 2 for 5 entries")


@check("protocol.md 4 get: the last page of a listing has no next", G)
def last_page(t):
    d = _tree(t)
    resp = t.expect(t.req(P.OP_GET, uri=d + "?list=Struct", limit=100), 200)
    t.true(P.K_NEXT not in resp, "next on the only page")


@check("protocol.md 3 limit: a listing limit that is not a positive integer is 400", G)
def bad_limit(t):
    d = t.dir()
    for bad in (0, -1, "2"):
        t.expect(t.req(P.OP_GET, uri=d + "?list=Struct", limit=bad), 400, what="limit %r" % (bad,))


@check("protocol.md 4 get: a cursor outside the listed node is 400", G)
def bad_cursor(t):
    d = _tree(t)
    t.expect(t.req(P.OP_GET, uri=d + "/B?list=Struct", cursor=d + "/A"), 400)


@check("omadm-rules ?list=: a listing of a node that does not exist is 404", G)
def list_missing(t):
    d = t.dir()
    t.expect(t.get(d + "/Missing?list=Struct"), 404)


@check("omadm-rules ?list=: a listing needs Get on the node listed (425 without)", G)
def list_needs_get(t):
    d = _tree(t)
    t.expect(t.get(d + "?list=Struct", who=t.p2), 425)


@check("omadm-rules secrets: ?list=StructData never carries a write-only value", G)
def list_no_secret(t):
    for uri, value, *_ in t.value("./DMAcc?list=StructData"):
        if uri.endswith("/AAuthSecret") or uri.endswith("/AAuthData"):
            t.equal(value, None, uri)
