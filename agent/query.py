"""The OMA DM reads: Get of values, child lists and properties, ?list= paging, the
effective-ACL query, and check(), which answers with the very decisions the commands use.

Every read needs Get on the node's effective ACL: its own if not empty, else the nearest
ancestor's that is not, all or nothing (never merged per command).
"""

from . import acl as A
from . import formats as F
from . import proto as P
from . import uri as U
from .errors import DMError
from .journal import Journal
from .nodes import PERMANENT, SECRET, TITLE, TYPE, VALUE, fields, names, flags_of, fmt_of, interior, own_acl

UNSUPPORTED = ("TStamp", "VerNo")  # optional in OMA DM, and each would cost heap on every node
WRITABLE = ("ACL", "Name", "Title")


def check_prop(prop):
    if prop not in P.PROPERTIES or prop in UNSUPPORTED:
        raise DMError(P.S_NOT_SUPPORTED, "property %s not supported" % prop)


class Query(Journal):
    def _need(self, acl, cmd, principal, segs):
        if not A.grants(acl, cmd, principal):
            raise DMError(P.S_PERMISSION_DENIED, "%s on %s not permitted" % (cmd, U.format(segs)))

    # --- reading -----------------------------------------------------------------------
    def get(self, principal, uri):
        """-> (value, format): a leaf's value, an interior node's child names, or a property."""
        segs, prop, listing = self._parse(uri)
        if listing:
            return self.list(principal, uri)[0], "node"
        entry, parent, eff, src, peff, psrc = self._locate(segs)
        if prop is not None:
            return self._get_prop(principal, segs, entry, eff, prop)
        if interior(entry):
            self._need(eff, P.CMD_GET, principal, segs)
            return sorted(names(entry)), "node"
        if flags_of(entry) & SECRET:
            raise DMError(P.S_NOT_ALLOWED, "%s is write-only" % U.format(segs))
        self._need(eff, P.CMD_GET, principal, segs)
        return self._read(entry), fmt_of(entry)

    def _get_prop(self, principal, segs, entry, eff, prop):
        check_prop(prop)
        is_node = interior(entry)
        if prop == "Size":
            if is_node:
                raise DMError(P.S_NOT_SUPPORTED, "Size is for leaves only")
            if flags_of(entry) & SECRET:
                raise DMError(P.S_NOT_ALLOWED, "%s is write-only" % U.format(segs))
        self._need(eff, P.CMD_GET, principal, segs)
        if prop == "ACL":
            return own_acl(entry), "chr"
        if prop == "Format":
            return fmt_of(entry), "chr"
        if prop == "Name":
            return (segs[-1] if segs else "."), "chr"
        if prop == "Size":
            return F.size(self._read(entry)), "int"
        meta = entry[TITLE if prop == "Title" else TYPE] if type(entry) is list else None
        if prop == "Title":
            return meta or "", "chr"
        return (F.default_type(fmt_of(entry)) if meta is None else meta), "chr"

    def list(self, principal, uri, cursor=None, limit=None):
        """?list=Struct: the URIs at and below uri that principal may Get; ?list=StructData:
        [uri, value] pairs. -> (entries, cursor of the next page or None)."""
        segs, prop, listing = self._parse(uri)
        if not listing:
            raise DMError(P.S_BAD_REQUEST, "list needs ?list=Struct or ?list=StructData")
        if limit is not None and (type(limit) is not int or limit < 1):
            raise DMError(P.S_BAD_REQUEST, "limit must be a positive integer")
        entry, parent, eff, src, peff, psrc = self._locate(segs)
        self._need(eff, P.CMD_GET, principal, segs)
        after = None
        if cursor is not None:
            try:
                csegs, cprop, clist = U.parse(cursor)
            except DMError:
                raise DMError(P.S_BAD_REQUEST, "bad cursor")
            if cprop or clist or csegs[: len(segs)] != segs:
                raise DMError(P.S_BAD_REQUEST, "cursor is not at or below the listed URI")
            after = csegs[len(segs) :]
        data = listing == "StructData"
        entries = []
        room = _PAGE_BYTES
        # A node's own ACL may grant Get below one that does not: the walk goes everywhere.
        for node_uri, node, node_eff, _, _, _ in self._walk(entry, U.format(segs), eff, None, after):
            if not A.grants(node_eff, P.CMD_GET, principal):
                continue
            value = None
            if data and not interior(node) and not flags_of(node) & SECRET:
                value = self._read(node)
            size = _encoded_size(node_uri) + (_encoded_size(value) + 1 if data else 0)
            # A page ends at the limit asked for, or before it would outgrow one frame.
            if entries and (limit is not None and len(entries) >= limit or size > room):
                return entries, (entries[-1][0] if data else entries[-1])
            room -= size
            entries.append([node_uri, value] if data else node_uri)
        return entries, None

    def acl_info(self, principal, uri):
        """-> (own ACL, effective ACL, URI of the node the effective ACL comes from)."""
        segs, prop, listing = self._parse(uri)
        if prop is not None or listing:
            raise DMError(P.S_BAD_REQUEST, "the ACL query takes a plain URI")
        entry, parent, eff, src, peff, psrc = self._locate(segs)
        self._need(eff, P.CMD_GET, principal, segs)
        return own_acl(entry), eff, U.format(segs[:src])

    # --- decisions shared by the commands and check() ------------------------------------
    def _acl_decision(self, principal, segs, entry, eff, src, peff, psrc):
        """Replace of ?prop=ACL: an interior node needs Replace on itself or on its parent, a
        leaf on its parent only. -> (allowed, depth of the node whose ACL decided)."""
        if interior(entry) and A.grants(eff, P.CMD_REPLACE, principal):
            return True, src
        if not segs:
            return False, src
        return A.grants(peff, P.CMD_REPLACE, principal), psrc

    def _delete_decision(self, principal, segs, entry, eff, src):
        """Delete needs Delete on the node and on every node below it.
        -> (allowed, deciding URI, first permanent node or None, node count, ServerIDs)."""
        denied = permanent = None
        count = 0
        ids = []
        for node_uri, node, node_eff, node_src, _, name in self._walk(entry, U.format(segs), eff,
                                                                      U.format(segs[:src])):
            count += 1
            if flags_of(node) & PERMANENT and permanent is None:
                permanent = node_uri
            if denied is None and not A.grants(node_eff, P.CMD_DELETE, principal):
                denied = node_src
            if name == "ServerID" and node_uri.startswith("./DMAcc/") and node_uri.count("/") == 3:
                ids.append(fields(node)[VALUE])
        return denied is None, denied or U.format(segs[:src]), permanent, count, ids

    def check(self, asker, server, cmd, uri):
        """May `server` do `cmd` on uri, by the ACL rules? -> (allowed, URI of the node whose
        ACL decided). Asking about another principal needs Get on uri (Add: on the parent)."""
        if cmd not in P.COMMANDS:
            raise DMError(P.S_BAD_REQUEST, "unknown command %r" % (cmd,))
        segs, prop, listing = self._parse(uri)
        if listing:
            raise DMError(P.S_BAD_REQUEST, "check takes a node or ?prop= URI")
        if prop is not None:
            check_prop(prop)
            if cmd != P.CMD_GET and (cmd != P.CMD_REPLACE or prop not in WRITABLE):
                raise DMError(P.S_NOT_ALLOWED, "no %s on ?prop=%s" % (cmd, prop))
        elif cmd == P.CMD_ADD:
            if not segs:
                raise DMError(P.S_NOT_ALLOWED, "the root has no parent")
            segs = segs[:-1]  # Add is decided by the parent's ACL
        entry, parent, eff, src, peff, psrc = self._locate(segs)
        if asker != server:
            self._need(eff, P.CMD_GET, asker, segs)
        if cmd == P.CMD_DELETE:
            return self._delete_decision(server, segs, entry, eff, src)[:2]
        if prop == "ACL" and cmd == P.CMD_REPLACE:
            allowed, depth = self._acl_decision(server, segs, entry, eff, src, peff, psrc)
            return allowed, U.format(segs[:depth])
        return A.grants(eff, cmd, server), U.format(segs[:src])


# Room for a page's entries: a frame, less the response's other fields and sealing.
_PAGE_BYTES = P.MAX_FRAME - 160


def _encoded_size(value):
    """CBOR size of a listed value, near enough to cut pages (heads counted as 3 bytes)."""
    if type(value) in (str, bytes, bytearray):
        return len(value.encode() if type(value) is str else value) + 3
    if type(value) is float:
        return 9
    if type(value) is int:
        return 9 if value > 0xFFFF or value < -0x10000 else 3
    return 1
