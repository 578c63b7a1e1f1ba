"""The OMA DM management tree: Tree, and the commands that change it, with their ACL rules.

Checks run in one order (docs/protocol.md s.6): URI 400/414, existence 404, what the command
may do at all 405/406, the ACL 425, the value 415/400, capacity 420/413; a refusal changes
nothing. ACLs are checked here, before any board handler runs, never inside one. Reads are
in query.py, journal and snapshots in journal.py, the node layout in nodes.py.
"""

from . import acl as A
from . import formats as F
from . import proto as P
from . import uri as U
from .errors import DMError
from .nodes import ACL, DMACC, FLAGS, FMT, PERMANENT, READONLY, SECRET, TITLE, VALUE
from .nodes import MISSING, child, fields, flags_of, interior, own_acl, pack
from .query import WRITABLE, Query, check_prop


def _text(value, fmt, prop):
    if fmt not in (None, "chr") or type(value) is not str:
        raise DMError(P.S_BAD_FORMAT, "%s must be chr" % prop)
    return value


def _plain(prop, listing, cmd):
    if prop is not None:
        check_prop(prop)
    if prop is not None or listing:
        raise DMError(P.S_NOT_ALLOWED, "%s takes a plain URI" % cmd)


class Tree(Query):
    # --- writing -----------------------------------------------------------------------
    def add(self, principal, uri, value=None, fmt=None, mime=None):
        """Add a leaf, or an interior node with fmt "node". Needs Add on the parent."""
        segs, prop, listing = self._parse(uri)
        _plain(prop, listing, "Add")
        if not segs:
            raise DMError(P.S_EXISTS, ". exists")
        parent, _, peff, _, _, _ = self._locate(segs[:-1])
        if not interior(parent):
            raise DMError(P.S_NOT_ALLOWED, "%s is a leaf" % U.format(segs[:-1]))
        if child(parent, segs[-1]) is not MISSING:
            raise DMError(P.S_EXISTS, "%s exists" % U.format(segs))
        self._need(peff, P.CMD_ADD, principal, segs[:-1])
        fmt = F.infer(value, fmt)
        value = F.coerce(value, fmt)
        mime = F.stored_type(fmt, mime)
        flags = 0
        if fmt == "node":
            # The creator exception: without Replace on the parent it could not manage the node.
            own = ""
            if A.is_identifier(principal) and not A.grants(peff, P.CMD_REPLACE, principal):
                own = A.creator(principal)
            entry = [{}, "node", own, 0, None, mime, None]
        else:
            self._check_server_id(segs, value)
            if len(segs) == 5 and segs[0] == DMACC and segs[2] == "AppAuth" and segs[4] == "AAuthSecret":
                flags = SECRET
            entry = pack([value, fmt, "", flags, None, mime, None])
        self._insert(parent, segs, entry, self.limits["max_nodes"])

    def replace(self, principal, uri, value, fmt=None):
        """Replace a leaf's value (no fmt: keep the leaf's format), or ?prop=ACL|Name|Title."""
        segs, prop, listing = self._parse(uri)
        if listing:
            raise DMError(P.S_NOT_ALLOWED, "Replace takes no ?list=")
        entry, parent, eff, src, peff, psrc = self._locate(segs)
        if prop is not None:
            return self._replace_prop(principal, segs, prop, value, fmt, entry, parent, eff, src, peff, psrc)
        if interior(entry):
            raise DMError(P.S_NOT_ALLOWED, "%s is an interior node" % U.format(segs))
        f = fields(entry)
        if f[FLAGS] & READONLY:
            raise DMError(P.S_NOT_ALLOWED, "%s is read-only" % U.format(segs))
        self._need(eff, P.CMD_REPLACE, principal, segs)
        if fmt == "node":
            raise DMError(P.S_BAD_FORMAT, "a leaf cannot become interior")
        fmt = fmt or f[FMT]
        value = F.coerce(value, fmt)
        self._check_server_id(segs, value)
        self._check_size(value)
        write = self._hook_fn(entry, 1)
        if write:
            self._call(write, value)
        self._set_value(parent, segs, f, value, fmt)

    def _replace_prop(self, principal, segs, prop, value, fmt, entry, parent, eff, src, peff, psrc):
        check_prop(prop)
        if prop not in WRITABLE:
            raise DMError(P.S_NOT_ALLOWED, "%s can only be read" % prop)
        uri = U.format(segs)
        name = segs[-1] if segs else None
        if prop == "Name":
            if not segs or flags_of(entry) & PERMANENT:
                raise DMError(P.S_NOT_ALLOWED, "%s cannot be renamed" % uri)
            self._need(eff, P.CMD_REPLACE, principal, segs)
            return self._rename(segs, _text(value, fmt, prop), entry, parent)
        if prop == "Title":
            self._need(eff, P.CMD_REPLACE, principal, segs)
            self._check_size(_text(value, fmt, prop))
            self._set_meta(parent, name, entry, TITLE, value or None)
            return self._log("title", uri, value)
        if not self._acl_decision(principal, segs, entry, eff, src, peff, psrc)[0]:
            raise DMError(P.S_PERMISSION_DENIED, "Replace of the ACL of %s not permitted" % uri)
        canonical = A.parse(_text(value, fmt, prop))
        if not segs and A.ids(canonical, P.CMD_ADD) != "*":
            raise DMError(P.S_NOT_ALLOWED, "the root's Add must stay *")
        self._set_acl(parent, name, uri, entry, canonical)

    def _rename(self, segs, name, entry, parent):
        if not name or name == "." or name == "..":
            raise DMError(P.S_BAD_REQUEST, "bad node name")
        lim = self.limits
        if lim["max_seg_len"] and len(name) > lim["max_seg_len"]:
            raise DMError(P.S_URI_TOO_LONG, "name longer than %d" % lim["max_seg_len"])
        if name == segs[-1]:
            return
        if child(parent, name) is not MISSING:
            raise DMError(P.S_EXISTS, "%s exists" % U.format(segs[:-1] + [name]))
        if lim["max_tot_len"]:
            longest = 0  # every URI below must stay within MaxTotLen, or it could not be named
            for node_uri, _, _, _, _, _ in self._walk(entry, U.format(segs), "", None):
                longest = max(longest, len(node_uri))
            if longest - len(U.escape(segs[-1])) + len(U.escape(name)) > lim["max_tot_len"]:
                raise DMError(P.S_URI_TOO_LONG, "a URI below would be longer than %d" % lim["max_tot_len"])
        self._move(parent, segs, name)

    def delete(self, principal, uri):
        """Needs Delete on the node and on every node below it (their effective ACLs)."""
        segs, prop, listing = self._parse(uri)
        _plain(prop, listing, "Delete")
        entry, parent, eff, src, peff, psrc = self._locate(segs)
        if not segs:
            raise DMError(P.S_NOT_ALLOWED, "the root cannot be deleted")
        allowed, denied, permanent, count, ids = self._delete_decision(principal, segs, entry, eff, src)
        if permanent:
            raise DMError(P.S_NOT_ALLOWED, "%s is permanent" % permanent)
        if not allowed:
            raise DMError(P.S_PERMISSION_DENIED, "Delete not permitted by the ACL of %s" % denied)
        self._remove(parent, segs, count)
        for server_id in ids:
            self._forget_server(server_id)

    def _forget_server(self, server_id):
        """A deleted account's id leaves every ACL; a root command it empties becomes '*'."""
        for node_uri, node, _, _, parent, name in self._walk(self._root, ".", "", None):
            if server_id in own_acl(node):
                acl = A.remove_id(node[ACL], server_id, node is self._root)
                if acl != node[ACL]:
                    self._set_acl(parent, name, node_uri, node, acl)

    def execute(self, principal, uri, data=None):
        """-> (status, result) from the node's Exec handler: 200 done, or 202 started."""
        segs, prop, listing = self._parse(uri)
        _plain(prop, listing, "Exec")
        entry, parent, eff, src, peff, psrc = self._locate(segs)
        handler = self._hook_fn(entry, 2)
        if not handler:
            raise DMError(P.S_NOT_ALLOWED, "%s cannot be executed" % U.format(segs))
        self._need(eff, P.CMD_EXEC, principal, segs)
        result = self._call(handler, self, principal, data)
        if type(result) not in (tuple, list) or len(result) != 2 or result[0] not in (P.S_OK, P.S_ACCEPTED):
            raise DMError(P.S_FAILED, "Exec handler gave no (200|202, result)")
        return result[0], result[1]
