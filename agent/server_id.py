"""A new ServerID (./DMAcc/<X>/ServerID): checked, and when one is replaced the old id's rights
in every ACL become the new id's. Loaded for that request only, kept small: a board may have
little room to load it.

No right beyond the Replace itself is needed: the ACLs change only to follow the server they
name, and give nobody a right it did not have under the old name (docs/protocol.md 4).
"""

from . import acl as A
from . import nodes as N
from . import proto as P
from .errors import DMError
from .nodes import ACL, MISSING, VALUE, fields, interior, own_acl
from .tree import DMACC


def check(tree, account, value):
    """A ServerID for ./DMAcc/<account>: a valid identifier, unique among accounts."""
    if not A.is_identifier(value):
        raise DMError(P.S_BAD_REQUEST, "a ServerID must be printable ASCII without =&*+")
    for name, other in N.items(N.child(tree._root, DMACC)):
        if name != account and interior(other):
            sid = N.child(other, "ServerID")
            if sid is not MISSING and not interior(sid) and fields(sid)[VALUE] == value:
                raise DMError(P.S_EXISTS, "ServerID %s is taken" % value)


def rename(tree, old, new):
    """In the request's transaction (its journal records commit with the new value, or none
    do). 418 when an ACL names new already: two servers' rights would merge into one."""
    root = tree._root
    for uri, node, _, _, _, _ in tree._walk(root, ".", "", None):
        if _named(own_acl(node), new):
            raise DMError(P.S_EXISTS, "%s is named in the ACL of %s already" % (new, uri))
    for uri, node, _, _, parent, name in tree._walk(root, ".", "", None):
        acl = own_acl(node)
        if _named(acl, old):
            out = []
            for entry in acl.split("&"):
                eq = entry.find("=") + 1
                out.append(entry[:eq] + "+".join([new if i == old else i for i in entry[eq:].split("+")]))
            tree._set_meta(parent, name, uri, node, ACL, "&".join(out))


def _named(acl, ident):
    """True if canonical acl names ident, as a whole identifier, in any entry."""
    if ident in acl:
        for entry in acl.split("&"):
            if ident in entry[entry.find("=") + 1 :].split("+"):
                return True
    return False
