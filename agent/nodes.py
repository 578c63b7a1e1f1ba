"""The tree's storage: compact node layout, finding and walking nodes, undo, board hooks.

Nodes are not objects (1,000 leaves must fit a board's heap). A leaf with default metadata
is the bare value in its parent's children, its format read from the Python type; any other
node is a 7-slot list [value or children, format, acl, flags, title, type, hook]. Children
are a dict, or past BUCKET names a list of dicts picked by a fixed hash: a fragmented heap
has no room for one big table. Always go through child()/names(), never index VALUE.
Layers: Nodes (here) < journal.Journal < query.Query < tree.Tree; only the last two check ACLs.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from . import formats as F
from . import proto as P
from . import uri as U
from .errors import DMError

VALUE = const(0)  # a leaf's value, or an interior node's children
FMT = const(1)  # "node" for interior nodes
ACL = const(2)  # own ACL, canonical; "" inherits
FLAGS = const(3)
TITLE = const(4)  # None when there is none
TYPE = const(5)  # None: the default for the format (formats.default_type)
HOOK = const(6)  # key into Nodes._hooks (code is never stored in the tree), or None

PERMANENT = const(1)  # cannot be deleted or renamed
READONLY = const(2)  # the value cannot be replaced
SECRET = const(4)  # write-only: Get of the value (and of Size) is 405 whatever the ACL

ROOT_ACL = "Add=*&Get=*"
SNAPSHOT_VERSION = const(1)
DEFAULT_LIMITS = {"max_depth": 16, "max_tot_len": 255, "max_seg_len": 64, "max_nodes": 1200,
                  "max_value": 1024, "max_reply": P.MAX_FRAME - 320}
HARD_MAX_DEPTH = const(20)  # 3 CBOR levels a tree level: a snapshot stays within the decoder's 64
BUCKET = const(64)  # most names in one dict (a 584-byte table on a 32-bit board)
_BATCH = const(16)  # names a walk takes from a node at a time, in order
DMACC = "DMAcc"
MISSING = object()


def interior(entry):
    return type(entry) is list and entry[FMT] == "node"


def fields(entry):
    """A fresh 7-slot list for a leaf entry, bare or not."""
    if type(entry) is list:
        return entry[:]
    return [entry, F.BARE[type(entry)], "", 0, None, None, None]


def fmt_of(entry):
    return entry[FMT] if type(entry) is list else F.BARE[type(entry)]


def own_acl(entry):
    return entry[ACL] if type(entry) is list else ""


def flags_of(entry):
    return entry[FLAGS] if type(entry) is list else 0


def pack(f):
    """The cheapest entry for leaf fields: the bare value when everything else is default."""
    if not f[ACL] and not f[FLAGS] and f[TITLE] is None and f[TYPE] is None and f[HOOK] is None:
        if F.BARE.get(type(f[VALUE])) == f[FMT]:
            return f[VALUE]
    return f


def name_hash(name):
    """Fixed on every runtime (Python's own str hash is salted on CPython): snapshots agree."""
    h = 0
    for c in name:
        h = (h * 31 + ord(c)) & 0xFFFFF  # stays a small int on a 32-bit board
        h ^= h >> 7
    return h


def bucket(children, name):
    """The dict of `children` that holds, or would hold, name."""
    if type(children) is dict:
        return children
    return children[name_hash(name) & (len(children) - 1)]


def child(node, name):
    return bucket(node[VALUE], name).get(name, MISSING)


def names(node):
    """The child names of an interior node, in no order."""
    children = node[VALUE]
    for part in [children] if type(children) is dict else children:
        for name in part:
            yield name


def child_count(node):
    children = node[VALUE]
    if type(children) is dict:
        return len(children)
    return sum([len(part) for part in children])


def _bisect(ordered, name):
    lo, hi = 0, len(ordered)
    while lo < hi:
        mid = (lo + hi) // 2
        if ordered[mid] < name:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _next_names(node, last):
    """In order, up to _BATCH child names that sort after last (None: from the first). One pass
    and no list of every name, whatever the node's size."""
    batch = []
    for name in names(node):
        if last is not None and name <= last:
            continue
        if len(batch) < _BATCH:
            batch.insert(_bisect(batch, name), name)
        elif name < batch[-1]:
            batch.pop()
            batch.insert(_bisect(batch, name), name)
    return batch


class Nodes:
    def __init__(self, limits=None):
        lim = dict(DEFAULT_LIMITS)
        lim.update(limits or {})
        depth = lim["max_depth"]
        lim["max_depth"] = HARD_MAX_DEPTH if not depth or depth > HARD_MAX_DEPTH else depth
        self.limits = lim
        self._root = [{}, "node", ROOT_ACL, PERMANENT, None, None, None]
        self._count = 1  # nodes, the root included
        self._hooks = {}  # key -> [read, write, exec]
        self._undo = None  # a list while a transaction is open
        self._redo = None
        self._count0 = 0

    # --- transactions: every change goes through _set/_set_child/_pop_child and _log --------
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
        undo = self._undo
        while undo:
            node, key, old = undo.pop()
            if type(key) is int:  # a slot of a node list, children included
                node[key] = old
            elif old is MISSING:  # pop: a MemoryError may have stopped the add it undoes
                bucket(node[VALUE], key).pop(key, None)
            else:
                bucket(node[VALUE], key)[key] = old
        self._count = self._count0
        self._undo = self._redo = None

    def _set(self, node, slot, value):
        if self._undo is not None:
            self._undo.append((node, slot, node[slot]))
        node[slot] = value

    def _set_child(self, node, name, entry):
        part = bucket(node[VALUE], name)
        if self._undo is not None:  # by name, not by dict: _split may move it to another dict
            self._undo.append((node, name, part.get(name, MISSING)))
        part[name] = entry
        if len(part) > BUCKET:
            self._split(node)

    def _split(self, node):
        """Twice the dicts. The old ones are left as they were, so undo can put them back."""
        old = node[VALUE]
        parts = [old] if type(old) is dict else old
        new = [{} for _ in range(2 * len(parts))]
        for part in parts:
            for name in part:
                new[name_hash(name) & (len(new) - 1)][name] = part[name]
        self._set(node, VALUE, new)

    def _pop_child(self, node, name):
        part = bucket(node[VALUE], name)
        old = part[name]
        if self._undo is not None:  # logged first: a MemoryError here leaves nothing undone
            self._undo.append((node, name, old))
        del part[name]
        return old

    def _log(self, *record):
        if self._redo is not None:
            self._redo.append(list(record))

    # --- finding and walking -----------------------------------------------------------
    def _parse(self, uri):
        lim = self.limits
        return U.parse(uri, lim["max_depth"], lim["max_tot_len"], lim["max_seg_len"])

    def _locate(self, segs):
        """-> (entry, parent, eff, src, parent_eff, parent_src): eff is the effective ACL and
        src the depth of the node it comes from. 404 if missing."""
        entry = self._root
        parent = peff = None
        eff = entry[ACL]
        src = psrc = 0
        for i in range(len(segs)):
            if not interior(entry):
                raise DMError(P.S_NOT_FOUND, "%s not found" % U.format(segs))
            parent, peff, psrc = entry, eff, src
            entry = child(entry, segs[i])
            if entry is MISSING:
                raise DMError(P.S_NOT_FOUND, "%s not found" % U.format(segs))
            if type(entry) is list and entry[ACL]:
                eff, src = entry[ACL], i + 1
        return entry, parent, eff, src, peff, psrc

    def _walk(self, top, top_uri, eff, src, after=None):
        """Pre-order from top, children in name order: yields (uri, entry, eff, src, parent,
        name), src being the URI the effective ACL comes from. With `after` (a path relative
        to top, e.g. a paging cursor) only what comes after it; it need not exist any more."""
        if after is None:
            yield top_uri, top, eff, src, None, None
        if not interior(top):
            return
        stack = []
        self._push(stack, top, top_uri, eff, src, after, 0 if after else -1)
        while stack:
            frame = stack[-1]  # [node, last name taken, next names, uri, eff, src]
            if not frame[2]:
                frame[2] = _next_names(frame[0], frame[1])
                if not frame[2]:
                    stack.pop()
                    continue
            name = frame[1] = frame[2].pop(0)
            node = frame[0]
            entry = child(node, name)
            uri = U.join(frame[3], name)
            eff, src = frame[4], frame[5]
            if type(entry) is list and entry[ACL]:
                eff, src = entry[ACL], uri
            yield uri, entry, eff, src, node, name
            if interior(entry):
                stack.append([entry, None, [], uri, eff, src])

    def _push(self, stack, node, uri, eff, src, after, depth):
        """Frames for node and, along a cursor, for each ancestor of the cursor node below it:
        those resume after the cursor's name; the cursor node's own children all come after."""
        while 0 <= depth < len(after):
            name = after[depth]
            stack.append([node, name, [], uri, eff, src])
            node = child(node, name)
            if not interior(node):
                return
            uri = U.join(uri, name)
            if node[ACL]:
                eff, src = node[ACL], uri
            depth += 1
        stack.append([node, None, [], uri, eff, src])

    # --- the device's own reads, and board code ----------------------------------------
    def value(self, uri):
        """A leaf's value (an interior node's child names) as the device itself sees it: no
        ACL, secrets included. For the session layer and boards."""
        entry = self._locate(U.parse(uri)[0])[0]
        return sorted(names(entry)) if interior(entry) else self._read(entry)

    def exists(self, uri):
        try:
            self._locate(U.parse(uri)[0])
        except DMError:
            return False
        return True

    def bind(self, uri, read=None, write=None):
        """Expose live data as a leaf: read() answers Get, write(value) runs on Replace before
        the value is stored. Code is not data: not journaled, not in snapshots, not undone."""
        self._hook(uri, 0, read, 1, write, False)

    def on_exec(self, uri, handler):
        """handler(tree, principal, data) -> (200 or 202, result). ACLs are checked before."""
        self._hook(uri, 2, handler, 2, handler, True)

    def _hook(self, uri, i, fn_i, j, fn_j, interior_ok):
        segs = U.parse(uri)[0]
        entry, parent = self._locate(segs)[:2]
        if interior(entry) and not interior_ok:
            raise DMError(P.S_NOT_ALLOWED, "only a leaf can be bound")
        f = entry if interior(entry) else fields(entry)
        if f[HOOK] is None:
            f[HOOK] = len(self._hooks) + 1
            self._hooks[f[HOOK]] = [None, None, None]
        self._hooks[f[HOOK]][i] = fn_i
        self._hooks[f[HOOK]][j] = fn_j
        if f is not entry:
            bucket(parent[VALUE], segs[-1])[segs[-1]] = f

    def _hook_fn(self, entry, i):
        if type(entry) is list and entry[HOOK] is not None:
            return self._hooks[entry[HOOK]][i]
        return None

    def _read(self, entry):
        if type(entry) is not list:
            return entry
        read = self._hook_fn(entry, 0)
        return self._call(read) if read else entry[VALUE]

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except (DMError, MemoryError):  # a full heap is the dispatcher's 420
            raise
        except Exception as exc:  # a board's code failed: the request fails, the agent lives
            raise DMError(P.S_FAILED, "handler failed: %s" % type(exc).__name__)

    def node_count(self):
        return self._count
