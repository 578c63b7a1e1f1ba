"""Sequence and Copy: OMA DM commands a gateway sends rarely, so the agent loads them on
first use and keeps the heap for the common ops. A Sequence item is a request of its own
(its own transaction); a Copy is the tree's Get and then its Add, with their rules.
"""

from . import proto as P
from .errors import DMError

_SEQUENCE_OPS = (P.OP_GET, P.OP_ADD, P.OP_REPLACE, P.OP_DELETE, P.OP_EXEC, P.OP_COPY, P.OP_ATOMIC)


def sequence(dispatcher, session, req, resp):
    """In order, each item its own request (its own transaction, persisted when it
    succeeds); the first failure stops the rest (215). The Sequence itself is 200."""
    items = req.get(P.K_ITEMS)
    if not isinstance(items, list) or not items:
        raise DMError(P.S_BAD_REQUEST, "sequence needs a non-empty list of items")
    results = []
    failed = False
    for item in items:
        if failed:
            results.append({P.K_STATUS: P.S_NOT_EXECUTED})
            continue
        if not isinstance(item, dict):
            sub = {P.K_STATUS: P.S_BAD_REQUEST, P.K_MSG: "sequence item must be a map"}
        elif item.get(P.K_OP) == P.OP_SEQUENCE:
            sub = {P.K_STATUS: P.S_FAILED, P.K_MSG: "a Sequence may not be inside a Sequence"}
        elif item.get(P.K_OP) not in _SEQUENCE_OPS:
            sub = {P.K_STATUS: P.S_NOT_SUPPORTED, P.K_MSG: "op not allowed in a sequence"}
        else:
            sub = dispatcher.handle(session, item, False)  # out of heap: 420, not retried
            sub.pop(P.K_ID, None)
        status = sub.get(P.K_STATUS)
        failed = not (type(status) is int and 200 <= status < 300)
        results.append(sub)
    resp[P.K_ITEMS] = results
    return P.S_OK


def copy(tree, principal, uri, source):
    """Add at uri the value, format and Type of the leaf at source (Get on it, Add on uri's parent).
    uri and source: canonical forms (agent.uri; the dispatcher made them), or text."""
    uri = tree._parse(uri)
    if source is None:
        raise DMError(P.S_BAD_REQUEST, "copy needs a plain source URI")
    source = tree._parse(source)
    if source[1] is not None or source[2] or uri[1] is not None or uri[2]:
        raise DMError(P.S_BAD_REQUEST, "copy needs a plain source URI")
    value, fmt = tree.get(principal, source)
    if fmt == "node":
        raise DMError(P.S_NOT_ALLOWED, "only a leaf can be copied")
    mime = tree.get(principal, (source[0], "Type", None))[0]
    tree.add(principal, uri, value, fmt, mime)
