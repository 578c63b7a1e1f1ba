"""What deleting a DMAcc account does to the ACLs that name its server: its id leaves them.
Loaded for that request only (a replaced ServerID: agent.server_id).

No right beyond the Delete itself is needed: the ACLs change only to follow the server.
"""

from .nodes import ACL, own_acl


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


def forget_server(tree, server_id):
    """A deleted account's id leaves every ACL; a root command it empties becomes '*'."""
    root = tree._root
    for node_uri, node, _, _, parent, name in tree._walk(root, ".", "", None):
        if server_id in own_acl(node):
            acl = remove_id(node[ACL], server_id, node is root)
            if acl != node[ACL]:
                tree._set_meta(parent, name, node_uri, node, ACL, acl)
