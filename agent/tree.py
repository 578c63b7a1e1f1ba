"""The OMA DM management tree: finding nodes, the commands of the request path, transactions.

Checks run in one order (docs/protocol.md s.6): URI 400/414, existence 404, what the command
may do at all 405/406, the ACL 425, the value 415/400, capacity 420/413; a refusal changes
nothing. ACL decisions are agent.acl's, made here before any board handler runs. Rare work
lives in modules loaded when asked for (_rare): listing, query (check, the ACL query), props,
execute (Exec), server_id (a new ServerID), accounts; device (the device's own writes) for
boot. Boot replays the flash into the tree with agent.journal (apply, restore), which uses
the primitives below.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


import gc

from . import unload

_PKG = __name__[: __name__.rindex(".") + 1]  # "agent." on a board, "dmagent.agent." on a host
from . import acl as A
from . import formats as F
from . import nodes as N
from . import proto as P
from . import snapshot
from . import uri as U
from .errors import DMError

ROOT_ACL = "Add=*&Get=*"
DEFAULT_LIMITS = {"max_depth": 16, "max_tot_len": 255, "max_seg_len": 64, "max_nodes": 1200,
                  "max_value": 1024, "max_reply": P.MAX_FRAME - 320}
HARD_MAX_DEPTH = const(20)
DMACC = "DMAcc"
UNSUPPORTED = ("TStamp", "VerNo")  # optional in OMA DM, and each would cost heap on every node
WRITABLE = ("ACL", "Name", "Title")


def check_prop(prop):
    if prop not in P.PROPERTIES or prop in UNSUPPORTED:
        raise DMError(P.S_NOT_SUPPORTED, "property %s not supported" % prop)


def _text(value, fmt, prop):
    if fmt not in (None, "chr") or type(value) is not str:
        raise DMError(P.S_BAD_FORMAT, "%s must be chr" % prop)
    return value


def _plain(prop, listing, cmd):
    if prop is not None:
        check_prop(prop)
    if prop is not None or listing:
        raise DMError(P.S_NOT_ALLOWED, "%s takes a plain URI" % cmd)


# Beyond what the last boot needed more than the running agent (0 with keys: the security
# code is loaded after boot, into the room boot's own code leaves): a record being replayed
# (up to a frame, decoded too) and the blocks the heap may not have in one piece.
BOOT_SLACK = const(6144)
_GROWTH = const(256)  # value growth (Replace) unchecked by room() at most: within the slack


def heap_room(margin):
    """A Tree.room rule: the tree may grow while the heap keeps `margin` bytes free, which is
    what a boot with the same tree needs beyond the running agent (App measures it)."""

    def room():
        if gc.mem_free() >= margin:  # garbage counts as used: free now is free at least
            return True
        gc.collect()
        return gc.mem_free() >= margin

    return room


def _rare(module, fn, *args):
    """module.fn(*args), the module loaded for the call and dropped after it: listings and
    check (agent.query), properties (agent.props), the device's own work (agent.device). On
    a heap in pieces a load can fail where resident code would have run: that request gets
    a 420 (docs/memory.md says how often, and what keeping them resident cost)."""
    name = _PKG + module
    try:
        return getattr(__import__(name, None, None, ("x",)), fn)(*args)
    finally:
        unload(name)


class Tree:
    def __init__(self, limits=None):
        lim = dict(DEFAULT_LIMITS)
        lim.update(limits or {})
        depth = lim["max_depth"]
        lim["max_depth"] = HARD_MAX_DEPTH if not depth or depth > HARD_MAX_DEPTH else depth
        self.limits = lim
        # the longest string a request may carry (0: any): decoding makes none longer (session)
        self.longest = lim["max_value"] and max(lim["max_value"], lim["max_tot_len"], 255)
        self.room = None  # a function: may the tree grow (a boot must hold it)? None: yes
        self._grown = 0  # bytes values grew by since room was last checked
        self._root = N.new_interior(ROOT_ACL, N.PERMANENT)
        self._count = 1  # nodes, the root included
        self._hooks = {}  # key -> [read, write, exec]
        self._undo = None  # a list while a transaction is open
        self._redo = None
        self._count0 = 0

    # --- transactions: every change passes self._undo to agent.nodes, and goes to _log ----
    def begin(self):
        if self._undo is not None:
            raise RuntimeError("transaction already open")
        self._undo = []
        self._redo = []
        self._count0 = self._count

    def in_transaction(self):
        return self._undo is not None

    def pending(self):
        """Journal records of the open transaction so far (for the store, before commit)."""
        return self._redo if self._redo is not None else []

    def commit(self):
        records = self.pending()
        self._undo = self._redo = None
        return records

    def rollback(self):
        N.rollback(self._undo)
        self._count = self._count0
        self._undo = self._redo = None

    def _log(self, *record):
        if self._redo is not None:
            self._redo.append(list(record))

    # --- finding and walking: the one place the effective ACL is worked out ---------------
    def _parse(self, uri):
        lim = self.limits
        return U.parse(uri, lim["max_depth"], lim["max_tot_len"], lim["max_seg_len"])

    def _locate(self, segs):
        """-> (entry, parent, eff, src, parent_eff, parent_src): eff is the effective ACL and
        src the depth of the node it comes from. 404 if missing."""
        entry = self._root
        parent = peff = None
        eff = entry[N.ACL]
        src = psrc = 0
        for i in range(len(segs)):
            parent, peff, psrc = entry, eff, src
            entry = N.child(entry, segs[i]) if N.interior(entry) else N.MISSING
            if entry is N.MISSING:
                raise DMError(P.S_NOT_FOUND, "%s not found" % U.format(segs))
            own = A.effective(entry, i + 1)
            if own:
                eff, src = own
        return entry, parent, eff, src, peff, psrc

    def _walk(self, top, top_uri, eff, src, stack=None):
        """Pre-order from top, children in name order: yields (uri, entry, eff, src, parent,
        name), src being the URI the effective ACL comes from. With `stack` (agent.listing's,
        made along a paging cursor) the walk goes on from there, top not yielded again."""
        if stack is None:
            yield top_uri, top, eff, src, None, None
            if not N.interior(top):
                return
            # frames (node, its children to come, uri, eff, src)
            stack = [(top, N.items(top), top_uri, eff, src)]
        while stack:
            node, kids, uri, eff, src = stack[-1]
            for name, entry in kids:
                break
            else:
                stack.pop()
                continue
            uri = U.join(uri, name)
            own = A.effective(entry, uri)
            if own:
                eff, src = own
            yield uri, entry, eff, src, node, name
            if N.interior(entry):
                stack.append((entry, N.items(entry), uri, eff, src))

    # --- reading -------------------------------------------------------------------------
    def get(self, principal, uri):
        """-> (value, format): a leaf's value, an interior node's child names, or a property."""
        segs, prop, listing = self._parse(uri)
        if listing:
            return self.list(principal, uri)[0], "node"
        entry, parent, eff, src, peff, psrc = self._locate(segs)
        if prop is not None:
            return _rare("props", "get", self, principal, segs, entry, eff, prop)
        if N.flags_of(entry) & N.SECRET and not N.interior(entry):
            raise DMError(P.S_NOT_ALLOWED, "%s is write-only" % U.format(segs))
        A.need(eff, P.CMD_GET, principal, segs)
        return self._read(entry), N.fmt_of(entry)

    def list(self, principal, uri, cursor=None, limit=None):
        """?list=Struct|StructData, a page at a time (agent.listing)."""
        return _rare("listing", "listing", self, principal, uri, cursor, limit)

    def acl_info(self, principal, uri):
        """-> (own ACL, effective ACL, URI of the node the effective ACL comes from)."""
        return _rare("query", "acl_info", self, principal, uri)

    def check(self, asker, server, cmd, uri):
        return _rare("query", "check", self, asker, server, cmd, uri)

    # --- writing -------------------------------------------------------------------------
    def add(self, principal, uri, value=None, fmt=None, mime=None):
        """Add a leaf, or an interior node with fmt "node". Needs Add on the parent."""
        segs, prop, listing = self._parse(uri)
        _plain(prop, listing, "Add")
        if not segs:
            raise DMError(P.S_EXISTS, ". exists")
        parent, _, peff, _, _, _ = self._locate(segs[:-1])
        if not N.interior(parent):
            raise DMError(P.S_NOT_ALLOWED, "%s is a leaf" % U.format(segs[:-1]))
        if N.child(parent, segs[-1]) is not N.MISSING:
            raise DMError(P.S_EXISTS, "%s exists" % U.format(segs))
        shape = parent[N.FLAGS]  # the DDF's say: AccessType, and its <X>'s (nodes.EACH, MOST)
        if shape & N.NO_ADD:
            raise DMError(P.S_NOT_ALLOWED, "DDF AccessType: no Add here")
        A.need(peff, P.CMD_ADD, principal, segs[:-1])
        fmt = F.infer(value, fmt)
        value = F.coerce(value, fmt)
        mime = F.stored_type(fmt, mime)
        flags = shape >> N.EACH & 31
        if fmt == "node":
            entry = N.new_interior(A.creator_acl(peff, principal), flags, None, mime)
        else:
            self._check_server_id(segs, value)
            if len(segs) == 5 and segs[0] == DMACC and segs[2] == "AppAuth" and segs[4] == "AAuthSecret":
                flags |= N.SECRET
            entry = N.pack([value, fmt, "", flags, None, mime, None])
        most = shape >> N.MOST
        if most and N.child_count(parent) >= most:
            raise DMError(P.S_DEVICE_FULL, "DDF Occurrence: at most %d here" % most)
        self._insert(parent, segs, entry, True)

    def replace(self, principal, uri, value, fmt=None, mime=None):
        """Replace a leaf's value (no fmt: keep the leaf's format; a mime: its new Type), or
        ?prop=ACL|Name|Title."""
        segs, prop, listing = self._parse(uri)
        if listing:
            raise DMError(P.S_NOT_ALLOWED, "Replace takes no ?list=")
        entry, parent, eff, src, peff, psrc = self._locate(segs)
        if prop == "ACL":  # provisioning does this often: resident, unlike the other props
            if not A.acl_replace_decision(principal, segs, entry, eff, src, peff, psrc)[0]:
                raise DMError(P.S_PERMISSION_DENIED, "Replace of the ACL of %s not permitted" % U.format(segs))
            canonical = A.parse(_text(value, fmt, "ACL"))
            if not segs and A.ids(canonical, P.CMD_ADD) != "*":
                raise DMError(P.S_NOT_ALLOWED, "the root's Add must stay *")
            return self._set_meta(parent, segs[-1] if segs else None, U.format(segs), entry, N.ACL, canonical)
        if prop is not None:
            return _rare("props", "replace", self, principal, segs, prop, value, fmt, entry, parent, eff)
        if N.interior(entry):
            raise DMError(P.S_NOT_ALLOWED, "%s is an interior node" % U.format(segs))
        f = N.fields(entry)
        if f[N.FLAGS] & N.READONLY:
            raise DMError(P.S_NOT_ALLOWED, "%s is read-only" % U.format(segs))
        A.need(eff, P.CMD_REPLACE, principal, segs)
        if fmt == "node":
            raise DMError(P.S_BAD_FORMAT, "a leaf cannot become interior")
        fmt = fmt or f[N.FMT]
        value = F.coerce(value, fmt)
        if mime is not None:
            f[N.TYPE] = F.stored_type(fmt, mime)
        server_id = self._check_server_id(segs, value) and f[N.VALUE] != value
        self._check_size(value)
        grown = F.size(value) - F.size(f[N.VALUE])
        if grown > 0:
            self._grown += grown
            if self._grown > _GROWTH:  # a longer value: room is checked a few hundred bytes
                self._grown = 0  # at a time (each check may collect), like an Add
                self._check_room()
        write = self._hook_fn(entry, 1)
        if write:
            self._call(write, value)
        if server_id:  # the same server by a new name: its rights follow it
            _rare("server_id", "rename", self, f[N.VALUE], value)
        self._set_value(parent, segs, f, value, fmt)

    def delete(self, principal, uri):
        """Needs Delete on the node and on every node below it (their effective ACLs)."""
        segs, prop, listing = self._parse(uri)
        _plain(prop, listing, "Delete")
        entry, parent, eff, src, peff, psrc = self._locate(segs)
        if not segs:
            raise DMError(P.S_NOT_ALLOWED, "the root cannot be deleted")
        allowed, denied, permanent, count, ids = A.delete_decision(self, principal, segs, entry, eff, src)
        if permanent:
            raise DMError(P.S_NOT_ALLOWED, "%s cannot be deleted" % permanent)
        if not allowed:
            raise DMError(P.S_PERMISSION_DENIED, "Delete not permitted by the ACL of %s" % denied)
        self._remove(parent, segs, count)
        for server_id in ids:
            _rare("accounts", "forget_server", self, server_id)

    def execute(self, principal, uri, data=None):
        """-> (status, result) from the node's Exec handler: 200 done, or 202 started."""
        return _rare("execute", "execute", self, principal, uri, data)

    # --- primitives shared by the commands, the device's writes and journal replay --------
    def _insert(self, parent, segs, entry, request):
        """request: a server's Add, held to the node limit and to room(); else the device's."""
        max_nodes = self.limits["max_nodes"]
        if request and max_nodes and self._count >= max_nodes:
            raise DMError(P.S_DEVICE_FULL, "the tree holds the most nodes it may")
        if not N.interior(entry):
            self._check_size(N.fields(entry)[N.VALUE])
        if request:
            self._check_room()
        N.set_child(self._undo, parent, segs[-1], entry)  # a MemoryError: the dispatcher's 420
        self._count += 1
        if self._redo is not None:
            self._log("put", U.format(segs), _record_form(entry))

    def _check_room(self):
        if self.room is not None and not self.room():
            raise DMError(P.S_DEVICE_FULL, "tree full: a reboot could not hold more")

    def _check_size(self, value):
        limit = self.limits["max_value"]
        # a text of more characters than the bound has more bytes too: known before
        # F.size() encodes it (a copy as large as the value, on a heap that may lack one)
        if limit and (type(value) is str and len(value) > limit or F.size(value) > limit):
            raise DMError(P.S_TOO_LARGE, "value longer than %d bytes" % limit)

    def _check_server_id(self, segs, value):
        """-> whether segs is ./DMAcc/<X>/ServerID, what ACLs name; a value for one is checked
        by agent.server_id (accounts are provisioned rarely: loaded for it)."""
        if len(segs) != 3 or segs[0] != DMACC or segs[2] != "ServerID":
            return False
        _rare("server_id", "check", self, segs[1], value)
        return True

    def _set_value(self, parent, segs, f, value, fmt):
        f[N.VALUE], f[N.FMT] = value, fmt
        N.set_child(self._undo, parent, segs[-1], N.pack(f))
        self._log("val", U.format(segs), value, fmt, f[N.TYPE])

    def _set_meta(self, parent, name, uri, entry, slot, value):
        """Set a node's own ACL (slot ACL, canonical) or its Title (TITLE; "" is none), journaled."""
        kept = value if slot == N.ACL else value or None
        if N.interior(entry):
            N.set_slot(self._undo, entry, slot, kept)
        else:
            f = N.fields(entry)
            f[slot] = kept
            N.set_child(self._undo, parent, name, N.pack(f))
        self._log("acl" if slot == N.ACL else "title", uri, value)

    def _move(self, parent, segs, name):
        N.set_child(self._undo, parent, name, N.pop_child(self._undo, parent, segs[-1]))
        self._log("mv", U.format(segs), name)

    def _remove(self, parent, segs, count):
        N.pop_child(self._undo, parent, segs[-1])
        self._count -= count
        self._log("del", U.format(segs))

    # --- the device's own writes and board code: agent.device, loaded at boot and when a board
    # asks (the agent unloads it after boot)
    def put(self, uri, value=None, fmt=None, acl="", flags=0, title=None, mime=None):
        """Create or overwrite a node as the device itself: no ACL check, no node limit. An
        existing interior node keeps its children. Journaled like any change."""
        from . import device

        device.put(self, uri, value, fmt, acl, flags, title, mime)

    def set_acl(self, uri, acl):
        """Set a node's own ACL as the device itself (board policy, provisioning)."""
        from . import device

        device.set_acl(self, uri, acl)

    def bind(self, uri, read=None, write=None):
        """Expose live data as a leaf: read() answers Get, write(value) runs on Replace before
        the value is stored. Code is not data: not journaled, not in snapshots, not undone."""
        from . import device

        device.hook(self, uri, 0, read, 1, write, False)

    def on_exec(self, uri, handler):
        """handler(tree, principal, data) -> (200 or 202, result). ACLs are checked before."""
        from . import device

        device.hook(self, uri, 2, handler, 2, handler, True)

    def dump(self, write):
        """Stream the snapshot to write(chunk) (see Store.compact)."""
        snapshot.dump(self, write)

    def value(self, uri):
        """A leaf's value (an interior node's child names) as the device itself sees it: no
        ACL, secrets included. For the session layer and boards."""
        return self._read(self._locate(U.parse(uri)[0])[0])

    def exists(self, uri):
        try:
            self._locate(U.parse(uri)[0])
        except DMError:
            return False
        return True

    def _hook_fn(self, entry, i):
        if type(entry) is list and entry[N.HOOK] is not None:
            return self._hooks[entry[N.HOOK]][i]
        return None

    def _read(self, entry):
        """A leaf's value (its read hook's, if bound), or an interior node's child names."""
        if type(entry) is not list:
            return entry
        if entry[N.FMT] == "node":
            names = []
            for name, _ in N.items(entry):
                names.append(name)
            return names
        read = self._hook_fn(entry, 0)
        return self._call(read) if read else entry[N.VALUE]

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except (DMError, MemoryError):  # a full heap is the dispatcher's 420
            raise
        except Exception as exc:  # a board's code failed: the request fails, the agent lives
            raise DMError(P.S_FAILED, "handler failed: %s" % type(exc).__name__)

    def node_count(self):
        return self._count


def _record_form(entry):
    """entry as a record holds it: no hook, and an interior node without children."""
    if type(entry) is not list:
        return entry
    f = entry[:]
    f[N.HOOK] = None
    if f[N.FMT] == "node":
        f[N.VALUE] = []
    return f
