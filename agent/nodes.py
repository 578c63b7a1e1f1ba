"""The tree's node storage: the compact entry layout, child lists in small sorted chunks, undo.

Nodes are not objects (1,000 leaves must fit a board's heap). A leaf with default metadata
is the bare value in its parent's child list, its format read from the Python type; any other
node is a 7-slot list [value or children, format, acl, flags, title, type, hook]. Children,
sorted by name, are a list of groups, a group a list of chunks, a chunk [names, entries] with
the names packed in one bytearray (length-prefixed UTF-8) edited in place. Every list and
bytearray has a bounded size (GROUP chunks, CHUNK names, about CHUNK_BYTES), so nothing grows
as one big block however many children a node has, and an insert leaves next to no garbage
(garbage between long-lived nodes is what cuts a heap into pieces). Every change takes an
undo list (None outside a transaction) and logs before it changes anything.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from . import formats as F

VALUE = const(0)  # a leaf's value, or an interior node's children
FMT = const(1)  # "node" for interior nodes
ACL = const(2)  # own ACL, canonical; "" inherits
FLAGS = const(3)
TITLE = const(4)  # None when there is none
TYPE = const(5)  # None: the default for the format (formats.default_type)
HOOK = const(6)  # key into the tree's hooks (code is never stored in the tree), or None

PERMANENT = const(1)  # cannot be deleted or renamed
READONLY = const(2)  # the value cannot be replaced
SECRET = const(4)  # write-only: Get of the value (and of Size) is 405 whatever the ACL
NO_ADD = const(8)  # DDF AccessType without Add: an Add below is 405 whatever the ACL
NO_DELETE = const(16)  # DDF AccessType without Delete: 405, like PERMANENT (which also bars renames)
# The DDF's <X> below an interior node, in its flags (no slot more per node): the flags a node
# added there gets, flags >> EACH & 31, and the most children it may have, flags >> MOST (0: any).
EACH = const(5)
MOST = const(10)

CHUNK = const(16)  # most names in one chunk (its entry list: 128 bytes at most)
CHUNK_BYTES = const(192)  # a chunk of long names splits sooner
GROUP = const(16)  # most chunks in one group
MISSING = object()


def interior(entry):
    return type(entry) is list and entry[FMT] == "node"


def new_interior(acl="", flags=0, title=None, mime=None):
    return [[], "node", acl, flags, title, mime, None]


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


# --- names in a chunk: each is a length (1 byte below 128, else 2) and its UTF-8 bytes ----
def packed_name(key):
    """key (a name's UTF-8 bytes) as a chunk holds it."""
    n = len(key)
    return (bytes((n,)) if n < 0x80 else bytes((0x80 | n >> 8, n & 0xFF))) + key


def _cmp(blob, s, n, key):
    """blob[s:s+n] against key, bytewise (UTF-8 order is code point order): -1, 0 or 1."""
    m = len(key)
    lim = n if n < m else m
    i = 0
    while i < lim:
        a = blob[s + i]
        b = key[i]
        if a != b:
            return -1 if a < b else 1
        i += 1
    if n == m:
        return 0
    return -1 if n < m else 1


def _index(lst, key, grouped):
    """Index of the item of lst (groups, grouped; or a group's chunks) that holds, or would
    take, key: the last whose first name <= key, found by bisection."""
    lo, hi = 0, len(lst)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        blob = lst[mid][0][0] if grouped else lst[mid][0]  # the item's first chunk's names
        n = blob[0]
        s = 1
        if n & 0x80:
            n, s = (n & 0x7F) << 8 | blob[1], 2
        if _cmp(blob, s, n, key) <= 0:
            lo = mid
        else:
            hi = mid
    return lo


def _find(blob, key):
    """-> (position, offset, found): where key is, or would go, among blob's names. The
    name heads are read inline: a helper returning (start, length) would allocate a tuple
    for every name passed over."""
    o = p = 0
    end = len(blob)
    while o < end:
        n = blob[o]
        s = o + 1
        if n & 0x80:
            n, s = (n & 0x7F) << 8 | blob[s], s + 1
        c = _cmp(blob, s, n, key)
        if c >= 0:
            return p, o, c == 0
        o = s + n
        p += 1
    return p, o, False


def child(node, name):
    kids = node[VALUE]
    if not kids:
        return MISSING
    key = name.encode()
    group = kids[_index(kids, key, True)]
    blob, vals = group[_index(group, key, False)]
    o = p = 0
    end = len(blob)
    m = len(key)
    while o < end:  # _find, inline: the request path's lookup makes no tuple
        n = blob[o]
        s = o + 1
        if n & 0x80:
            n, s = (n & 0x7F) << 8 | blob[s], s + 1
        if n == m and blob.startswith(key, s):
            return vals[p]
        o = s + n
        p += 1
    return MISSING


def items(node, after=None):
    """(name, entry) of node's children in name order; with `after` only the names after it
    (it need not exist). Entries may be replaced meanwhile, not added or removed."""
    kids = node[VALUE]
    g = c = p = o = 0
    if after is not None and kids:
        key = after.encode()
        g, c, chunk = _place(kids, key)
        p, o, found = _find(chunk[0], key)
        if found:
            o = _skip(chunk[0], o)
            p += 1
    while g < len(kids):
        group = kids[g]
        while c < len(group):
            blob, vals = group[c]
            while o < len(blob):
                n = blob[o]
                s = o + 1
                if n & 0x80:
                    n, s = (n & 0x7F) << 8 | blob[s], s + 1
                yield blob[s : s + n].decode(), vals[p]
                o, p = s + n, p + 1
            c += 1
            o = p = 0
        g += 1
        c = 0


def _skip(blob, o):
    """Offset of the name after the one at o."""
    n = blob[o]
    if n & 0x80:
        return o + 2 + ((n & 0x7F) << 8 | blob[o + 1])
    return o + 1 + n


def child_count(node):
    n = 0
    for group in node[VALUE]:
        for chunk in group:
            n += len(chunk[1])
    return n


# --- changes: each logs its undo first, so a MemoryError part-way is rolled back whole ------
def set_slot(undo, lst, i, value):
    """lst[i] = value: a node's slot, a child list's entry, a chunk or group replaced."""
    if undo is not None:
        undo.append((lst, i, lst[i]))
    lst[i] = value


def _insert(undo, seq, i, item):
    """item inserted at i of a list, or item's bytes at offset i of a bytearray."""
    if undo is not None:
        undo.append((seq, i, len(seq), None))
    if type(seq) is list:
        seq.insert(i, item)
    else:
        seq[i:i] = item


def _remove(undo, seq, i, n=1):
    """Item i of a list removed, or the n bytes at offset i of a bytearray."""
    if type(seq) is list:
        if undo is not None:
            undo.append((seq, i, len(seq), seq[i]))
        seq.pop(i)
    else:
        if undo is not None:
            undo.append((seq, i, len(seq), seq[i : i + n]))
        seq[i : i + n] = b""


def rollback(undo):
    """Undo logged changes, newest first. Next to nothing is allocated: what a removal took
    goes back into room its list or bytearray kept (one removal each, at least)."""
    while undo:
        step = undo.pop()
        lst, i = step[0], step[1]
        if len(step) == 3:
            lst[i] = step[2]
            continue
        grown = len(lst) - step[2]
        if type(lst) is list:
            if grown > 0:  # the insert happened
                lst.pop(i)
            elif grown < 0:  # the removal happened
                lst.insert(i, step[3])
        elif grown > 0:
            lst[i : i + grown] = b""
        elif grown < 0:
            lst[i:i] = step[3]


def _place(kids, key):
    """-> (group index, chunk index, chunk) for key (kids not empty)."""
    g = _index(kids, key, True)
    c = _index(kids[g], key, False)
    return g, c, kids[g][c]


def set_child(undo, node, name, entry):
    """Add child name, or replace its entry."""
    kids = node[VALUE]
    key = name.encode()
    if not kids:
        return _insert(undo, kids, 0, [[bytearray(packed_name(key)), [entry]]])
    g, c, chunk = _place(kids, key)
    blob, vals = chunk
    p, o, found = _find(blob, key)
    if found:
        return set_slot(undo, vals, p, entry)
    _insert(undo, vals, p, entry)
    _insert(undo, blob, o, packed_name(key))
    # A chunk, then its group, that grew too big is split in two halves, both made before
    # anything changes (a MemoryError there changes nothing).
    if len(vals) > CHUNK or len(blob) > CHUNK_BYTES and len(vals) > 1:
        half = len(vals) // 2
        o = 0
        for _ in range(half):
            o = _skip(blob, o)
        low, high = [blob[:o], vals[:half]], [blob[o:], vals[half:]]  # bytearray slices
        group = kids[g]
        _insert(undo, group, c + 1, high)
        set_slot(undo, group, c, low)
        if len(group) > GROUP:
            half = len(group) // 2
            low, high = group[:half], group[half:]
            _insert(undo, kids, g + 1, high)
            set_slot(undo, kids, g, low)


def pop_child(undo, node, name):
    """Remove child name (it must exist); -> its entry."""
    kids = node[VALUE]
    key = name.encode()
    g, c, chunk = _place(kids, key)
    blob, vals = chunk
    p, o, _ = _find(blob, key)
    old = vals[p]
    if len(vals) > 1:
        _remove(undo, vals, p)
        _remove(undo, blob, o, _skip(blob, o) - o)
    elif len(kids[g]) > 1:  # the chunk goes whole, and comes back whole on undo
        _remove(undo, kids[g], c)
    else:
        _remove(undo, kids, g)
    return old

