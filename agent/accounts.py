"""What a change of a DMAcc account does to the ACLs that name its server: a deleted account's
id leaves them, a replaced ServerID takes the old one's place. Loaded for that request only.

No right beyond the Delete or the Replace itself is needed: the ACLs change only to follow
the server they name, and give nobody a right it did not have under the old name.
"""

from agent import proto as P
from agent.errors import DMError
from agent.nodes import ACL, own_acl


def remove_id(acl, ident, star_if_emptied=False):
    """acl without ident; a command left with no id is dropped, or becomes '*' (the root's rule)."""
    if ident not in acl:
        return acl
    out = []
    for entry in acl.split("&"):
        eq = entry.find("=")
        kept = [i for i in entry[eq + 1 :].split("+") if i != ident]
        if kept:
            out.append(entry[: eq + 1] + "+".join(kept))
        elif star_if_emptied:
            out.append(entry[: eq + 1] + "*")
    return "&".join(out)


def names(acl, ident):
    """True if canonical acl names ident, as a whole identifier, in any entry."""
    if ident not in acl:
        return False
    for entry in acl.split("&"):
        if ident in entry[entry.find("=") + 1 :].split("+"):
            return True
    return False


def replace_id(acl, old, new):
    """acl with the whole identifier old renamed new (new must not be in acl)."""
    out = []
    for entry in acl.split("&"):
        eq = entry.find("=")
        out.append(entry[: eq + 1] + "+".join([new if i == old else i for i in entry[eq + 1 :].split("+")]))
    return "&".join(out)


def forget_server(tree, server_id):
    """A deleted account's id leaves every ACL; a root command it empties becomes '*'."""
    root = tree._root
    for node_uri, node, _, _, parent, name in tree._walk(root, ".", "", None):
        if server_id in own_acl(node):
            acl = remove_id(node[ACL], server_id, node is root)
            if acl != node[ACL]:
                tree._set_acl(parent, name, node_uri, node, acl)


def rename_server(tree, old, new):
    """A ServerID replaced: in every ACL, old's rights become new's, in the request's
    transaction (its journal records commit with the new value, or none do). 418 when an ACL
    names new already: two servers' rights would merge into one."""
    root = tree._root
    for node_uri, node, _, _, _, _ in tree._walk(root, ".", "", None):
        if names(own_acl(node), new):
            raise DMError(P.S_EXISTS, "%s is named in the ACL of %s: its rights and %s's would merge" % (new, node_uri, old))
    for node_uri, node, _, _, parent, name in tree._walk(root, ".", "", None):
        if names(own_acl(node), old):
            tree._set_acl(parent, name, node_uri, node, replace_id(node[ACL], old, new))
