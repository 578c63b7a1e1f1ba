"""check() and the ACL query (acl_info), loaded when asked: they answer with the very
decisions and the effective ACL the commands use (agent.acl). Listings are agent.listing.

Asking about another principal needs Get on the node; a board-sized heap loads this module
for the request and drops it after (a small module finds room where a big one may not).
"""

from . import acl as A
from . import nodes as N
from . import proto as P
from . import uri as U
from .errors import DMError
from .tree import WRITABLE, check_prop


def check(tree, asker, server, cmd, uri):
    """May `server` do `cmd` on uri, by the ACL rules? -> (allowed, URI of the node whose
    ACL decided). Asking about another principal needs Get on uri (Add: on the parent)."""
    segs, prop = _target(tree, cmd, uri)
    entry, parent, eff, src, peff, psrc = tree._locate(segs)
    if asker != server:
        A.need(eff, P.CMD_GET, asker, segs)
    if cmd == P.CMD_DELETE:
        return A.delete_decision(tree, server, segs, entry, eff, src)[:2]
    if prop == "ACL" and cmd == P.CMD_REPLACE:
        allowed, depth = A.acl_replace_decision(server, segs, entry, eff, src, peff, psrc)
        return allowed, U.format(segs[:depth])
    return A.grants(eff, cmd, server), U.format(segs[:src])


def acl_info(tree, principal, uri):
    """-> (own ACL, effective ACL, URI of the node the effective ACL comes from)."""
    segs, prop, listing = tree._parse(uri)
    if prop is not None or listing:
        raise DMError(P.S_BAD_REQUEST, "the ACL query takes a plain URI")
    entry, parent, eff, src, peff, psrc = tree._locate(segs)
    A.need(eff, P.CMD_GET, principal, segs)
    return N.own_acl(entry), eff, U.format(segs[:src])


def _target(tree, cmd, uri):
    """-> (segments of the node whose ACL decides, prop). Small functions: each is a block of
    its own when this module is loaded for a request."""
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
    return segs, prop
