"""The rare reads, loaded when asked for: ?list= paging, the effective-ACL query, and check(),
which answers with the very decisions the commands use (agent.acl).

Every read needs Get on the node's effective ACL; a listing walks everywhere below, since a
node's own ACL may grant Get below one that does not.
"""

from agent import acl as A
from agent import proto as P
from agent import uri as U
from agent.errors import DMError
from agent.nodes import SECRET, flags_of, interior, own_acl
from agent.tree import WRITABLE, check_prop

# Room for a page's entries: a frame, less the response's other fields and sealing.
_PAGE_BYTES = P.MAX_FRAME - 160


def listing(tree, principal, uri, cursor=None, limit=None):
    """?list=Struct: the URIs at and below uri that principal may Get; ?list=StructData:
    [uri, value] pairs. -> (entries, cursor of the next page or None)."""
    segs, prop, kind = tree._parse(uri)
    if not kind:
        raise DMError(P.S_BAD_REQUEST, "list needs ?list=Struct or ?list=StructData")
    if limit is not None and (type(limit) is not int or limit < 1):
        raise DMError(P.S_BAD_REQUEST, "limit must be a positive integer")
    entry, parent, eff, src, peff, psrc = tree._locate(segs)
    A.need(eff, P.CMD_GET, principal, segs)
    after = None
    if cursor is not None:
        try:
            csegs, cprop, clist = U.parse(cursor)
        except DMError:
            raise DMError(P.S_BAD_REQUEST, "bad cursor")
        if cprop or clist or csegs[: len(segs)] != segs:
            raise DMError(P.S_BAD_REQUEST, "cursor is not at or below the listed URI")
        after = csegs[len(segs) :]
    data = kind == "StructData"
    entries = []
    room = _PAGE_BYTES
    for node_uri, node, node_eff, _, _, _ in tree._walk(entry, U.format(segs), eff, None, after):
        if not A.grants(node_eff, P.CMD_GET, principal):
            continue
        value = None
        if data and not interior(node) and not flags_of(node) & SECRET:
            value = tree._read(node)
        size = _encoded_size(node_uri) + (_encoded_size(value) + 1 if data else 0)
        # A page ends at the limit asked for, or before it would outgrow one frame.
        if entries and (limit is not None and len(entries) >= limit or size > room):
            return entries, (entries[-1][0] if data else entries[-1])
        room -= size
        entries.append([node_uri, value] if data else node_uri)
    return entries, None


def acl_info(tree, principal, uri):
    """-> (own ACL, effective ACL, URI of the node the effective ACL comes from)."""
    segs, prop, kind = tree._parse(uri)
    if prop is not None or kind:
        raise DMError(P.S_BAD_REQUEST, "the ACL query takes a plain URI")
    entry, parent, eff, src, peff, psrc = tree._locate(segs)
    A.need(eff, P.CMD_GET, principal, segs)
    return own_acl(entry), eff, U.format(segs[:src])


def check(tree, asker, server, cmd, uri):
    """May `server` do `cmd` on uri, by the ACL rules? -> (allowed, URI of the node whose
    ACL decided). Asking about another principal needs Get on uri (Add: on the parent)."""
    if cmd not in P.COMMANDS:
        raise DMError(P.S_BAD_REQUEST, "unknown command %r" % (cmd,))
    segs, prop, kind = tree._parse(uri)
    if kind:
        raise DMError(P.S_BAD_REQUEST, "check takes a node or ?prop= URI")
    if prop is not None:
        check_prop(prop)
        if cmd != P.CMD_GET and (cmd != P.CMD_REPLACE or prop not in WRITABLE):
            raise DMError(P.S_NOT_ALLOWED, "no %s on ?prop=%s" % (cmd, prop))
    elif cmd == P.CMD_ADD:
        if not segs:
            raise DMError(P.S_NOT_ALLOWED, "the root has no parent")
        segs = segs[:-1]  # Add is decided by the parent's ACL
    entry, parent, eff, src, peff, psrc = tree._locate(segs)
    if asker != server:
        A.need(eff, P.CMD_GET, asker, segs)
    if cmd == P.CMD_DELETE:
        return A.delete_decision(tree, server, segs, entry, eff, src)[:2]
    if prop == "ACL" and cmd == P.CMD_REPLACE:
        allowed, depth = A.acl_replace_decision(server, segs, entry, eff, src, peff, psrc)
        return allowed, U.format(segs[:depth])
    return A.grants(eff, cmd, server), U.format(segs[:src])


def _encoded_size(value):
    """CBOR size of a listed value, near enough to cut pages (heads counted as 3 bytes)."""
    if type(value) in (str, bytes, bytearray):
        return len(value.encode() if type(value) is str else value) + 3
    if type(value) is float:
        return 9
    if type(value) is int:
        return 9 if value > 0xFFFF or value < -0x10000 else 3
    return 1
