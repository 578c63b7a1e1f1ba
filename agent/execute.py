"""Exec of a node, loaded for the request and dropped after it (Tree.execute): a management
session is mostly Gets and Replaces, and a board's Exec handlers run now and then.

A load that finds no room raises MemoryError before any handler runs: the dispatcher answers
420 "device out of memory" (an Exec is not tried again) and nothing has changed.
"""

from . import acl as A
from . import proto as P
from . import uri as U
from .errors import DMError
from .tree import _plain


def execute(tree, principal, uri, data):
    """-> (status, result) from the node's Exec handler: 200 done, or 202 started."""
    segs, prop, listing = tree._parse(uri)
    _plain(prop, listing, "Exec")
    entry, parent, eff, src, peff, psrc = tree._locate(segs)
    handler = tree._hook_fn(entry, 2)
    if not handler:
        raise DMError(P.S_NOT_ALLOWED, "%s cannot be executed" % U.format(segs))
    A.need(eff, P.CMD_EXEC, principal, segs)
    result = tree._call(handler, tree, principal, data)
    if type(result) not in (tuple, list) or len(result) != 2 or result[0] not in (P.S_OK, P.S_ACCEPTED):
        raise DMError(P.S_FAILED, "Exec handler gave no (200|202, result)")
    return result[0], result[1]
