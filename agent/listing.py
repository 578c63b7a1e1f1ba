"""?list=Struct and ?list=StructData, a page at a time: loaded for the request and dropped.

Every listed node needs Get on its own effective ACL; the walk goes everywhere below, since
a node's own ACL may grant Get below one that does not. A page ends before it outgrows a frame.
A StructData entry is [uri, value, format]: a null leaf and an empty interior node differ.
"""

from . import acl as A
from . import proto as P
from . import uri as U
from .errors import DMError
from .nodes import SECRET, child, flags_of, fmt_of, interior, items

# Room for a page's entries: a frame, less the response's other fields and sealing.
_PAGE_BYTES = P.MAX_FRAME - 160


def listing(tree, principal, uri, cursor=None, limit=None):
    """?list=Struct: the URIs at and below uri that principal may Get; ?list=StructData:
    [uri, value, format] (value None for interior nodes and secrets). -> (entries, cursor of
    the next page or None)."""
    segs, prop, kind = tree._parse(uri)
    if not kind:
        raise DMError(P.S_BAD_REQUEST, "list needs ?list=Struct or ?list=StructData")
    if limit is not None and (type(limit) is not int or limit < 1):
        raise DMError(P.S_BAD_REQUEST, "limit must be a positive integer")
    entry, parent, eff, src, peff, psrc = tree._locate(segs)
    A.need(eff, P.CMD_GET, principal, segs)
    top = U.format(segs)
    after = _after(segs, cursor)
    stack = None  # no cursor: the walk starts at the top
    if after is not None:
        stack = _resume(entry, top, eff, after) if interior(entry) else []  # after a leaf: nothing
    return _page(tree, tree._walk(entry, top, eff, None, stack), principal, kind == "StructData", limit)


def _after(segs, cursor):
    """The path below the listed node that a cursor names, or None: where a page resumes.
    (Small functions: each is a block of its own when this module is loaded for a request.)"""
    if cursor is None:
        return None
    try:
        csegs, cprop, clist = U.parse(cursor)
    except DMError:
        raise DMError(P.S_BAD_REQUEST, "bad cursor")
    if cprop or clist or csegs[: len(segs)] != segs:
        raise DMError(P.S_BAD_REQUEST, "cursor is not at or below the listed URI")
    return csegs[len(segs) :]


def _resume(node, uri, eff, after):
    """Tree._walk's stack along `after` below interior node: each level resumes after its
    name, which need not exist any more. src: None, as listing's walk takes it."""
    stack = []
    src = None
    for name in after:
        stack.append((node, items(node, name), uri, eff, src))
        node = child(node, name)
        if not interior(node):
            return stack
        uri = U.join(uri, name)
        own = A.effective(node, uri)
        if own:
            eff, src = own
    stack.append((node, items(node), uri, eff, src))
    return stack


def _page(tree, walk, principal, data, limit):
    entries = []
    room = _PAGE_BYTES
    for node_uri, node, node_eff, _, _, _ in walk:
        if not A.grants(node_eff, P.CMD_GET, principal):
            continue
        value = None
        if data and not interior(node) and not flags_of(node) & SECRET:
            value = tree._read(node)
        fmt = fmt_of(node) if data else None
        size = _encoded_size(node_uri) + (_encoded_size(value) + _encoded_size(fmt) + 1 if data else 0)
        # A page ends at the limit asked for, or before it would outgrow one frame.
        if entries and (limit is not None and len(entries) >= limit or size > room):
            return entries, (entries[-1][0] if data else entries[-1])
        room -= size
        entries.append([node_uri, value, fmt] if data else node_uri)
    return entries, None


def _encoded_size(value):
    """CBOR size of a listed value, near enough to cut pages (heads counted as 3 bytes)."""
    if type(value) in (str, bytes, bytearray):
        return len(value.encode() if type(value) is str else value) + 3
    if type(value) is float:
        return 9
    if type(value) is int:
        return 9 if value > 0xFFFF or value < -0x10000 else 3
    return 1
