"""OMA DM ACLs: the strings (canonical form, grants()) and the rules, one place each: the
effective ACL, and each command's decision.

An ACL is kept as its canonical string and grants() scans that string: no structure is
built per check. An empty ACL grants nothing by itself: it means "inherit" (effective()).
Matching is by whole identifier: `Get=ServerAB` does not grant ServerA.
"""

from . import nodes as N
from . import proto as P
from . import uri as U
from .errors import DMError

# Canonical form: commands in this (alphabetical) order, ids in the order given, no repeats.
_PREFIX = {}
for _cmd in P.COMMANDS:
    _PREFIX[_cmd] = _cmd + "="


def is_identifier(text):
    """A ServerID that an ACL can name: printable ASCII except = & * + and white space."""
    if type(text) is not str or not text:
        return False
    for c in text:
        if c < "!" or c > "~" or c in "=&*+":
            return False
    return True


def parse(text):
    """-> the canonical form of ACL text; DMError 400 if malformed."""
    if type(text) is not str:
        raise DMError(P.S_BAD_FORMAT, "ACL must be text")
    if not text:
        return ""
    found = {}
    for entry in text.split("&"):
        eq = entry.find("=")
        cmd = entry[:eq]
        if eq < 0 or cmd not in _PREFIX:  # pragma: no mutate 0 -> 1 (eq 0 leaves cmd "", refused too)
            raise DMError(P.S_BAD_REQUEST, "ACL entry must be Add|Delete|Exec|Get|Replace=ids")
        # The grammar (entry ("&" entry)*) lets a command come twice: its ids add up.
        ids = found.get(cmd) or []
        for ident in entry[eq + 1 :].split("+"):
            if ident != "*" and not is_identifier(ident):
                raise DMError(P.S_BAD_REQUEST, "bad identifier in ACL entry for %s" % cmd)
            if ident not in ids:
                ids.append(ident)
        if "*" in ids and len(ids) > 1:
            raise DMError(P.S_BAD_REQUEST, "'*' must stand alone")
        found[cmd] = ids
    out = []
    for cmd in P.COMMANDS:
        if cmd in found:
            out.append(_PREFIX[cmd] + "+".join(found[cmd]))
    return "&".join(out)


def ids(acl, cmd):
    """The ids text of cmd's entry in a canonical ACL ("A+B", "*"), or None."""
    prefix = _PREFIX[cmd]
    # "Cmd=" is found only at an entry's start: ids hold no "=", no command ends in another.
    i = acl.find(prefix)
    if i < 0:
        return None
    start = i + len(prefix)
    end = acl.find("&", start)
    return acl[start:] if end < 0 else acl[start:end]  # pragma: no mutate 0 -> 1 (end: -1 or past the prefix)


def grants(acl, cmd, principal):
    """True if canonical `acl` itself grants cmd to principal (None: unauthenticated, only '*')."""
    prefix = _PREFIX[cmd]
    i = acl.find(prefix)  # at an entry's start, as in ids()
    if i < 0:
        return False
    start = i + len(prefix)
    end = acl.find("&", start)
    if end < 0:  # pragma: no mutate 0 -> 1 (end: -1 or past the prefix)
        end = len(acl)
    if end == start + 1 and acl[start] == "*":
        return True
    # A principal holding '+' could straddle two ids; one that is empty matches nothing.
    if not principal or "+" in principal:
        return False
    n = len(principal)
    j = acl.find(principal, start, end)  # a hit lies inside the entry: j + n <= end
    while j >= 0:  # pragma: no mutate 0 -> 1 (a hit lies past the prefix: j is -1 or >= 4)
        if (j == start or acl[j - 1] == "+") and (j + n == end or acl[j + n] == "+"):
            return True
        # 1 -> 2 is equivalent: a good hit at j + 1 needs acl[j] == "+", the principal's first
        # character, and a principal holding "+" was refused above
        j = acl.find(principal, j + 1, end)  # pragma: no mutate 1 -> 2 (see above)
    return False


# --- the rules ---------------------------------------------------------------------------
def effective(entry, here):
    """The rule for the effective ACL at a node: its own ACL if it has one, else its parent's
    effective ACL, whole (never merged per command). -> (own ACL, here) when the node's own
    ACL decides, None when it inherits (no tuple made for the many nodes that inherit)."""
    own = N.own_acl(entry)
    if own:
        return own, here
    return None


def need(eff, cmd, principal, segs):
    """Get, Add (eff: the parent's), Replace of a value, Exec: the effective ACL grants cmd."""
    if not grants(eff, cmd, principal):
        raise DMError(P.S_PERMISSION_DENIED, "%s on %s not permitted" % (cmd, U.format(segs)))


def creator_acl(parent_eff, principal):
    """The own ACL of an interior node principal adds: none, unless principal has no Replace
    on the parent: then it could not manage its node, so it gets one naming itself."""
    if is_identifier(principal) and not grants(parent_eff, P.CMD_REPLACE, principal):
        return "Add=%s&Delete=%s&Replace=%s" % (principal, principal, principal)
    return ""


def acl_replace_decision(principal, segs, entry, eff, src, peff, psrc):
    """Replace of ?prop=ACL: an interior node needs Replace on itself or on its parent, a
    leaf on its parent only. -> (allowed, depth of the node whose ACL decided)."""
    if N.interior(entry) and grants(eff, P.CMD_REPLACE, principal):
        return True, src
    if not segs:
        return False, src
    return grants(peff, P.CMD_REPLACE, principal), psrc


def delete_decision(tree, principal, segs, entry, eff, src):
    """Delete needs Delete on the node and on every node below it (their effective ACLs).
    -> (allowed, deciding URI, first node that may not be deleted (Scope Permanent, DDF
    AccessType) or None, node count, ServerIDs)."""
    denied = permanent = None
    count = 0
    ids = []
    top = U.format(segs)
    for node_uri, node, node_eff, node_src, _, name in tree._walk(entry, top, eff, U.format(segs[:src])):
        count += 1
        if N.flags_of(node) & (N.PERMANENT | N.NO_DELETE) and permanent is None:
            permanent = node_uri
        if denied is None and not grants(node_eff, P.CMD_DELETE, principal):
            denied = node_src
        if name == "ServerID" and node_uri.startswith("./DMAcc/") and node_uri.count("/") == 3:
            ids.append(N.fields(node)[N.VALUE])
    return denied is None, denied or U.format(segs[:src]), permanent, count, ids
