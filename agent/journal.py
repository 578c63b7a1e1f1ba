"""Changes as the journal sees them: the record kinds, apply(), put(), dump() and restore().

A record names one change by URI: ["put", uri, node], ["val", uri, value, fmt], ["acl", uri,
acl], ["title", uri, title], ["mv", uri, new name], ["del", uri]. Replaying a commit's records
on the tree it started from gives the same tree, shape included. No ACL is checked here.
"""

from . import acl as A
from . import formats as F
from . import proto as P
from . import uri as U
from .errors import DMError
from .nodes import ACL, DMACC, FLAGS, FMT, HOOK, MISSING, SNAPSHOT_VERSION, TITLE, TYPE, VALUE
from .nodes import Nodes, bucket, child, fields, interior, names, pack


def _record_form(entry):
    """entry as a record holds it: no hook, and an interior node without children."""
    if type(entry) is not list:
        return entry
    f = entry[:]
    f[HOOK] = None
    if f[FMT] == "node":
        f[VALUE] = {}
    return f


class Journal(Nodes):
    # --- primitives shared by the commands and apply() ------------------------------------
    def _insert(self, parent, segs, entry, max_nodes):
        if max_nodes and self._count >= max_nodes:
            raise DMError(P.S_DEVICE_FULL, "the tree holds the most nodes it may")
        if not interior(entry):
            self._check_size(fields(entry)[VALUE])
        self._set_child(parent, segs[-1], entry)  # a MemoryError: the dispatcher's 420
        self._count += 1
        if self._redo is not None:
            self._log("put", U.format(segs), _record_form(entry))

    def _check_size(self, value):
        limit = self.limits["max_value"]
        if limit and F.size(value) > limit:
            raise DMError(P.S_TOO_LARGE, "value longer than %d bytes" % limit)

    def _check_server_id(self, segs, value):
        """./DMAcc/<X>/ServerID is what ACLs name: a valid identifier, unique among accounts."""
        if len(segs) != 3 or segs[0] != DMACC or segs[2] != "ServerID":
            return
        if not A.is_identifier(value):
            raise DMError(P.S_BAD_REQUEST, "a ServerID must be printable ASCII without =&*+")
        dmacc = child(self._root, DMACC)
        for name in names(dmacc):
            account = child(dmacc, name)
            if name != segs[1] and interior(account):
                sid = child(account, "ServerID")
                if sid is not MISSING and not interior(sid) and fields(sid)[VALUE] == value:
                    raise DMError(P.S_EXISTS, "ServerID %s is taken" % value)

    def _set_value(self, parent, segs, f, value, fmt):
        f[VALUE], f[FMT] = value, fmt
        self._set_child(parent, segs[-1], pack(f))
        self._log("val", U.format(segs), value, fmt)

    def _set_acl(self, parent, name, uri, entry, acl):
        self._set_meta(parent, name, entry, ACL, acl)
        self._log("acl", uri, acl)

    def _set_meta(self, parent, name, entry, slot, value):
        if interior(entry):
            self._set(entry, slot, value)
        else:
            f = fields(entry)
            f[slot] = value
            self._set_child(parent, name, pack(f))

    def _move(self, parent, segs, name):
        self._set_child(parent, name, self._pop_child(parent, segs[-1]))
        self._log("mv", U.format(segs), name)

    def _remove(self, parent, segs, count):
        self._pop_child(parent, segs[-1])
        self._count -= count
        self._log("del", U.format(segs))

    # --- the device's own writes: boards, standard objects, the store ------------------------
    def put(self, uri, value=None, fmt=None, acl="", flags=0, title=None, mime=None):
        """Create or overwrite a node as the device itself: no ACL check, no node limit. An
        existing interior node keeps its children. Journaled like any change."""
        segs = U.parse(uri)[0]
        fmt = F.infer(value, fmt)
        value = F.coerce(value, fmt)
        entry = [{} if fmt == "node" else value, fmt, A.parse(acl), flags, title or None,
                 F.stored_type(fmt, mime), None]
        self._put(segs, entry)

    def _put(self, segs, entry):
        is_node = entry[FMT] == "node"
        if not segs:
            if not is_node or A.ids(entry[ACL], P.CMD_ADD) != "*":
                raise DMError(P.S_NOT_ALLOWED, "the root stays interior, its Add *")
            old, parent = self._root, None
        else:
            parent = self._locate(segs[:-1])[0]
            if not interior(parent):
                raise DMError(P.S_NOT_ALLOWED, "%s is a leaf" % U.format(segs[:-1]))
            old = child(parent, segs[-1])
        if not is_node:
            self._check_server_id(segs, entry[VALUE])
        if old is MISSING:
            return self._insert(parent, segs, entry if is_node else pack(entry), 0)
        if interior(old) != is_node:
            raise DMError(P.S_NOT_ALLOWED, "%s cannot turn leaf or interior" % U.format(segs))
        if is_node:
            for slot in (ACL, FLAGS, TITLE, TYPE):
                self._set(old, slot, entry[slot])
        else:
            self._check_size(entry[VALUE])
            entry[HOOK] = fields(old)[HOOK]
            self._set_child(parent, segs[-1], pack(entry))
        self._log("put", U.format(segs), _record_form(entry))

    def set_acl(self, uri, acl):
        """Set a node's own ACL as the device itself (board policy, provisioning)."""
        segs = U.parse(uri)[0]
        entry, parent = self._locate(segs)[:2]
        acl = A.parse(acl)
        if not segs and A.ids(acl, P.CMD_ADD) != "*":
            raise DMError(P.S_NOT_ALLOWED, "the root's Add must stay *")
        self._set_acl(parent, segs[-1] if segs else None, U.format(segs), entry, acl)

    def apply(self, record):
        """Re-apply one journal record (from commit()) as the device itself."""
        try:
            op, uri = record[0], record[1]
            segs = U.parse(uri)[0]
            if op == "put":
                f = fields(record[2])
                if f[FMT] == "node":
                    f[VALUE] = {}
                return self._put(segs, f)
            entry, parent = self._locate(segs)[:2]
            name = segs[-1] if segs else None
            if op == "val":
                return self._set_value(parent, segs, fields(entry), F.coerce(record[2], record[3]), record[3])
            if op == "acl":
                return self._set_acl(parent, name, uri, entry, A.parse(record[2]))
            if op == "title":
                self._set_meta(parent, name, entry, TITLE, record[2] or None)
                return self._log("title", uri, record[2])
            if op == "mv":
                return self._move(parent, segs, record[2])
            if op == "del":
                count = 0
                for _ in self._walk(entry, uri, "", None):
                    count += 1
                return self._remove(parent, segs, count)
        except (IndexError, TypeError, KeyError, AttributeError, DMError) as exc:
            raise DMError(P.S_FAILED, "bad journal record: %r" % (exc,))
        raise DMError(P.S_FAILED, "unknown journal record %r" % (op,))

    def dump(self):
        """A CBOR-able snapshot. It IS the live tree, not a copy (a copy would cost as much
        heap as the tree): encode it before the next change."""
        return [SNAPSHOT_VERSION, self._root]

    def restore(self, snapshot):
        """Take a decoded dump() as the whole tree (checked first: a bad one changes nothing).
        The tree owns it afterwards. Bindings and Exec handlers are code: register them again."""
        if self._undo is not None:
            raise RuntimeError("restore inside a transaction")
        try:
            root = snapshot[1]
            if snapshot[0] != SNAPSHOT_VERSION or len(root) != 7 or not interior(root):
                raise ValueError("not a version %d snapshot" % SNAPSHOT_VERSION)
            if A.ids(A.parse(root[ACL]), P.CMD_ADD) != "*":
                raise ValueError("root ACL")
            root[HOOK] = None
            count = 1
            stack = [root]
            while stack:
                node = stack.pop()
                children = node[VALUE]
                parts = [children] if type(children) is dict else children
                if type(parts) is not list or not parts or len(parts) & (len(parts) - 1):
                    raise ValueError("children")
                for part in parts:
                    if type(part) is not dict:
                        raise ValueError("children")
                    for name in part:  # replacing values of existing keys is safe while iterating
                        if type(name) is not str or not name or bucket(children, name) is not part:
                            raise ValueError("name")
                        count += 1
                        part[name] = entry = _checked(part[name])
                        if interior(entry):
                            stack.append(entry)
        except (ValueError, TypeError, IndexError, KeyError, AttributeError, DMError) as exc:
            raise DMError(P.S_FAILED, "bad snapshot: %r" % (exc,))
        self._root, self._count, self._hooks = root, count, {}


def _checked(entry):
    if type(entry) is not list:
        if type(entry) not in F.BARE:
            raise ValueError("value")
        return entry
    if len(entry) != 7 or type(entry[FLAGS]) is not int:
        raise ValueError("node")
    for slot in (TITLE, TYPE):
        if entry[slot] is not None and type(entry[slot]) is not str:
            raise ValueError("title/type")
    if A.parse(entry[ACL]) != entry[ACL]:
        raise ValueError("ACL")
    entry[HOOK] = None
    if entry[FMT] == "node":
        if type(entry[VALUE]) not in (dict, list):
            raise ValueError("children")
        return entry
    F.coerce(entry[VALUE], entry[FMT])
    return pack(entry)

