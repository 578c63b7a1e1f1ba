"""A node's properties (?prop=...): Get of any, Replace of Name and Title (of ACL: in
agent.tree, which provisioning uses often); loaded for the request and dropped after.

Name renames the node in place; its subtree keeps its ACLs.
"""

from . import acl as A
from . import formats as F
from . import proto as P
from . import uri as U
from .errors import DMError
from .nodes import MISSING, PERMANENT, SECRET, TITLE, TYPE, child, flags_of, fmt_of, interior, own_acl
from .tree import WRITABLE, _text, check_prop

_TITLE_MAX = 255  # bytes (TND 7.7.5)


def get(tree, principal, segs, entry, eff, prop):
    """-> (value, "chr" or "int") of property prop of the node at segs."""
    check_prop(prop)
    if prop == "Size":
        if interior(entry):
            raise DMError(P.S_NOT_SUPPORTED, "Size is for leaves only")
        if flags_of(entry) & SECRET:
            raise DMError(P.S_NOT_ALLOWED, "%s is write-only" % U.format(segs))
    A.need(eff, P.CMD_GET, principal, segs)
    if prop == "ACL":
        return own_acl(entry), "chr"
    if prop == "Format":
        return fmt_of(entry), "chr"
    if prop == "Name":
        return (segs[-1] if segs else "."), "chr"
    if prop == "Size":
        return F.size(tree._read(entry)), "int"
    meta = entry[TITLE if prop == "Title" else TYPE] if type(entry) is list else None
    if prop == "Title":
        return meta or "", "chr"
    return (F.default_type(fmt_of(entry)) if meta is None else meta), "chr"


def replace(tree, principal, segs, prop, value, fmt, entry, parent, eff):
    """Replace of ?prop=Name or Title (ACL: Tree._replace_acl, resident)."""
    check_prop(prop)
    if prop not in WRITABLE:
        raise DMError(P.S_NOT_ALLOWED, "%s can only be read" % prop)
    uri = U.format(segs)
    name = segs[-1] if segs else None
    if prop == "Name":
        if not segs or flags_of(entry) & PERMANENT:
            raise DMError(P.S_NOT_ALLOWED, "%s cannot be renamed" % uri)
        A.need(eff, P.CMD_REPLACE, principal, segs)
        return _rename(tree, segs, _text(value, fmt, prop), entry, parent)
    if prop == "Title":
        A.need(eff, P.CMD_REPLACE, principal, segs)
        if len(_text(value, fmt, prop).encode()) > _TITLE_MAX:
            raise DMError(P.S_TOO_LARGE, "a Title is at most %d bytes" % _TITLE_MAX)
        return tree._set_meta(parent, name, uri, entry, TITLE, value)
    raise DMError(P.S_NOT_ALLOWED, "%s: ACL is replaced by Tree" % prop)  # not reached


def _rename(tree, segs, name, entry, parent):
    if not U.is_name(name):
        raise DMError(P.S_BAD_REQUEST, "bad node name (empty, . or .., or with '/')")
    lim = tree.limits
    if lim["max_seg_len"] and len(name) > lim["max_seg_len"]:
        raise DMError(P.S_URI_TOO_LONG, "name longer than %d" % lim["max_seg_len"])
    if name == segs[-1]:
        return
    if child(parent, name) is not MISSING:
        raise DMError(P.S_EXISTS, "%s exists" % U.format(segs[:-1] + [name]))
    if lim["max_tot_len"]:
        longest = 0  # every URI below must stay within MaxTotLen, or it could not be named
        for node_uri, _, _, _, _, _ in tree._walk(entry, U.format(segs), "", None):
            longest = max(longest, len(node_uri))
        if longest - len(U.escape(segs[-1])) + len(U.escape(name)) > lim["max_tot_len"]:
            raise DMError(P.S_URI_TOO_LONG, "a URI below would be longer than %d" % lim["max_tot_len"])
    tree._move(parent, segs, name)
