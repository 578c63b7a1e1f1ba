"""The device's own changes to its tree: provisioning (put, set_acl), board code bound to
nodes (bind, on_exec). No ACL is checked here.

Loaded for boot (seeding, journal replay, the board's bindings) and unloaded after it; a
board that writes later loads it again. Tree.put and friends are the way in.
"""

from . import acl as A
from . import formats as F
from . import nodes as N
from . import proto as P
from . import uri as U
from .errors import DMError
from .nodes import ACL, FLAGS, FMT, MISSING, TITLE, TYPE, VALUE, fields, interior, pack
from .tree import _record_form


def put(tree, uri, value=None, fmt=None, acl="", flags=0, title=None, mime=None):
    fmt = F.infer(value, fmt)
    value = F.coerce(value, fmt)
    entry = [[] if fmt == "node" else value, fmt, A.parse(acl), flags, title or None,
             F.stored_type(fmt, mime), None]
    put_entry(tree, U.parse(uri)[0], entry)


def put_entry(tree, segs, entry):
    """Create or overwrite the node at segs with entry's fields (a journal's "put" too)."""
    is_node = entry[FMT] == "node"
    if not segs:
        if not is_node or A.ids(entry[ACL], P.CMD_ADD) != "*":
            raise DMError(P.S_NOT_ALLOWED, "the root stays interior, its Add *")
        old, parent = tree._root, None
    else:
        parent = tree._locate(segs[:-1])[0]
        if not interior(parent):
            raise DMError(P.S_NOT_ALLOWED, "%s is a leaf" % U.format(segs[:-1]))
        old = N.child(parent, segs[-1])
    if not is_node:
        tree._check_server_id(segs, entry[VALUE])
    if old is MISSING:
        return tree._insert(parent, segs, entry if is_node else pack(entry), False)
    if interior(old) != is_node:
        raise DMError(P.S_NOT_ALLOWED, "%s cannot turn leaf or interior" % U.format(segs))
    if is_node:
        for slot in (ACL, FLAGS, TITLE, TYPE):
            N.set_slot(tree._undo, old, slot, entry[slot])
    else:
        tree._check_size(entry[VALUE])
        entry[N.HOOK] = fields(old)[N.HOOK]
        N.set_child(tree._undo, parent, segs[-1], pack(entry))
    tree._log("put", U.format(segs), _record_form(entry))


def set_acl(tree, uri, acl):
    segs = U.parse(uri)[0]
    entry, parent = tree._locate(segs)[:2]
    acl = A.parse(acl)
    if not segs and A.ids(acl, P.CMD_ADD) != "*":
        raise DMError(P.S_NOT_ALLOWED, "the root's Add must stay *")
    tree._set_meta(parent, segs[-1] if segs else None, U.format(segs), entry, ACL, acl)


def hook(tree, uri, i, fn_i, j, fn_j, interior_ok):
    """Register code for a node: slots i and j of its hooks [read, write, exec]."""
    segs = U.parse(uri)[0]
    entry, parent = tree._locate(segs)[:2]
    if interior(entry) and not interior_ok:
        raise DMError(P.S_NOT_ALLOWED, "only a leaf can be bound")
    f = entry if interior(entry) else fields(entry)
    hooks = tree._hooks
    if f[N.HOOK] is None:
        f[N.HOOK] = len(hooks) + 1
        hooks[f[N.HOOK]] = [None, None, None]
    hooks[f[N.HOOK]][i] = fn_i
    hooks[f[N.HOOK]][j] = fn_j
    if f is not entry:
        N.set_child(None, parent, segs[-1], f)

