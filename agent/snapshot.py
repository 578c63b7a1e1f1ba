"""Writes the tree's snapshot (format version 2, read back by agent.journal.restore): a run
of items, each a u16 LE length and one CBOR array, handed to write() a few hundred bytes at
a time. Resident: compaction runs now and then on a heap in pieces, where loading code for
it might find no room.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from . import cbor
from . import nodes as N
from .nodes import ACL, FLAGS, FMT, TITLE, TYPE, VALUE, interior

VERSION = const(2)
_BATCH = const(256)  # bytes handed to write() at a time


class _Out:
    """Items framed and batched for write(): a few hundred bytes at a time, whatever the tree."""

    def __init__(self, write):
        self.write = write
        self.buf = bytearray(_BATCH)
        self.n = 0

    def item(self, obj):
        data = cbor.dumps(obj)
        self.put(bytes((len(data) & 0xFF, len(data) >> 8)))
        self.put(data)

    def put(self, data):
        k = len(data)
        if self.n + k > _BATCH:
            self.flush()
        if k > _BATCH:
            self.write(data)
        else:
            self.buf[self.n : self.n + k] = data
            self.n += k

    def flush(self):
        if self.n:
            self.write(memoryview(self.buf)[: self.n])
            self.n = 0


def _item_entry(entry):
    if type(entry) is not list:
        return entry
    return [None if entry[FMT] == "node" else entry[VALUE], entry[FMT], entry[ACL], entry[FLAGS],
            entry[TITLE], entry[TYPE]]


def dump(tree, write):
    """Stream the snapshot to write(chunk); the same bytes on every call while the tree stays
    as it is. The tree holds no copy of itself for it."""
    root = tree._root
    out = _Out(write)
    out.item([VERSION, root[ACL], root[FLAGS], root[TITLE], root[TYPE]])
    stack = [N.items(root)]
    while stack:
        for name, entry in stack[-1]:
            break
        else:
            stack.pop()
            continue
        out.item([len(stack), name, _item_entry(entry)])
        if interior(entry):
            stack.append(N.items(entry))
    out.flush()


