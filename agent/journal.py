"""The tree as flash holds it: journal records and their replay, and reading the streamed
snapshot back. Only boot needs it: the agent unloads it after boot.

A record names one change by URI: ["put", uri, node], ["val", uri, value, fmt, type], ["acl", uri,
acl], ["title", uri, title], ["mv", uri, new name], ["del", uri]. A snapshot (version 2) is a
run of items, each a u16 LE length and one CBOR array: first [2, acl, flags, title, type] of
the root, then one [depth, name, entry] per node in pre-order, names in order, an interior
entry with None for children. It is written and read an item at a time, never whole.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from . import acl as A
from . import cbor
from . import formats as F
from . import nodes as N
from . import proto as P
from . import uri as U
from .errors import DMError
from .nodes import ACL, FLAGS, FMT, TITLE, TYPE, VALUE, fields, interior, pack
from .snapshot import VERSION
from .tree import HARD_MAX_DEPTH

_ITEM_DEPTH = const(4)  # item, entry, value: a snapshot item nests no deeper
_FILL = const(12)  # names a restored chunk gets, chunks a restored group: room to grow


def apply(tree, record):
    """Re-apply one journal record as the device itself: no ACL check, no node limit."""
    try:
        op, uri = record[0], record[1]
        segs = U.parse(uri)[0]
        if op == "put":
            f = fields(record[2])
            if f[FMT] == "node":
                f[VALUE] = []
            from . import device  # loaded for boot anyway; not for compaction

            return device.put_entry(tree, segs, f)
        entry, parent = tree._locate(segs)[:2]
        name = segs[-1] if segs else None
        if op == "val":  # [4], the Type, since Replace takes one (older records: kept)
            f = fields(entry)
            if len(record) > 4:
                f[TYPE] = record[4]
            return tree._set_value(parent, segs, f, F.coerce(record[2], record[3]), record[3])
        if op == "acl":
            return tree._set_meta(parent, name, uri, entry, ACL, A.parse(record[2]))
        if op == "title":
            return tree._set_meta(parent, name, uri, entry, TITLE, record[2])
        if op == "mv":
            return tree._move(parent, segs, record[2])
        if op == "del":
            count = 0
            for _ in tree._walk(entry, uri, "", None):
                count += 1
            return tree._remove(parent, segs, count)
    except (IndexError, TypeError, KeyError, AttributeError, DMError) as exc:
        raise DMError(P.S_FAILED, "bad journal record: %r" % (exc,))
    raise DMError(P.S_FAILED, "unknown journal record %r" % (op,))


# --- the snapshot (written by agent.snapshot) ---------------------------------------------
def reader(data):
    """read(n) over snapshot bytes in memory (tests, host tools): b"" at the end."""
    pos = [0]

    def read(n):
        if pos[0] >= len(data):
            return b""
        chunk = data[pos[0] : pos[0] + n]
        if len(chunk) != n:
            raise DMError(P.S_FAILED, "bad snapshot: torn item")
        pos[0] += n
        return chunk

    return read


def snapshot_bytes(tree):
    """The whole snapshot in memory (tests and host tools: a board streams it)."""
    parts = []
    tree.dump(lambda chunk: parts.append(bytes(chunk)))
    return b"".join(parts)


def restore(tree, read):
    """Take the snapshot read(n) gives (n bytes, b"" at its end) as the whole tree, an item at
    a time. Checked as it is read: a bad one changes nothing. Bindings and Exec handlers are
    code: register them again."""
    if tree._undo is not None:
        raise RuntimeError("restore inside a transaction")
    try:
        head = _next(read)
        if type(head) is not list or len(head) != 5 or head[0] != VERSION:
            raise ValueError("not a version %d snapshot" % VERSION)
        root = _checked([None, "node"] + head[1:])
        if A.ids(root[ACL], P.CMD_ADD) != "*":
            raise ValueError("root ACL")
        count = 1
        stack = [root]  # the interior nodes along the path to the last item
        lasts = [None]  # the last name added under each of them
        while True:
            item = _next(read)
            if item is None:
                break
            depth, name = item[0], item[1]
            if type(depth) is not int or not 1 <= depth <= len(stack) or type(name) is not str or not name:
                raise ValueError("item")
            del stack[depth:], lasts[depth:]
            if lasts[-1] is not None and not lasts[-1] < name:
                raise ValueError("names out of order")
            entry = _checked(item[2])
            append_child(stack[-1], name, entry)
            lasts[-1] = name
            count += 1
            if interior(entry):
                if depth >= HARD_MAX_DEPTH:
                    raise ValueError("too deep")
                stack.append(entry)
                lasts.append(None)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, DMError) as exc:
        raise DMError(P.S_FAILED, "bad snapshot: %r" % (exc,))
    tree._root, tree._count, tree._hooks = root, count, {}


def append_child(node, name, entry):
    """Add a child whose name sorts after every other (agent.nodes' layout, filled to _FILL
    so that later inserts split little). No undo: a failed restore drops the whole tree."""
    kids = node[VALUE]
    piece = N.packed_name(name.encode())
    if kids:
        group = kids[-1]
        chunk = group[-1]
        if len(chunk[1]) < _FILL and len(chunk[0]) + len(piece) <= N.CHUNK_BYTES:
            chunk[0] += piece
            chunk[1].append(entry)
            return
        if len(group) < _FILL:
            group.append([bytearray(piece), [entry]])
            return
    kids.append([[bytearray(piece), [entry]]])


def _next(read):
    head = read(2)
    if not head:
        return None
    if len(head) != 2:
        raise ValueError("torn item")
    n = head[0] | head[1] << 8
    data = read(n)
    if len(data) != n:
        raise ValueError("torn item")
    return cbor.loads(data, _ITEM_DEPTH)


def _checked(entry):
    if type(entry) is not list:
        if type(entry) not in F.BARE:
            raise ValueError("value")
        return entry
    if len(entry) != 6 or type(entry[FLAGS]) is not int:
        raise ValueError("node")
    for slot in (TITLE, TYPE):
        if entry[slot] is not None and type(entry[slot]) is not str:
            raise ValueError("title/type")
    if A.parse(entry[ACL]) != entry[ACL]:
        raise ValueError("ACL")
    entry.append(None)  # HOOK
    if entry[FMT] == "node":
        if entry[VALUE] is not None:
            raise ValueError("children")
        entry[VALUE] = []
        return entry
    F.coerce(entry[VALUE], entry[FMT])
    return pack(entry)

