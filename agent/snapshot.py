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

VERSION = const(2)
_BATCH = const(256)  # bytes handed to write() at a time


def _items(root):
    """The snapshot's items: the root's fields, then [depth, name, entry] in pre-order."""
    yield [VERSION, root[N.ACL], root[N.FLAGS], root[N.TITLE], root[N.TYPE]]
    stack = [N.items(root)]
    while stack:
        for name, entry in stack[-1]:
            break
        else:
            stack.pop()
            continue
        depth = len(stack)
        if N.interior(entry):
            stack.append(N.items(entry))
        if type(entry) is list:
            entry = entry[:N.HOOK]  # a hook is code, never stored; children come as items
            if entry[N.FMT] == "node":
                entry[N.VALUE] = None
        yield [depth, name, entry]


def dump(tree, write):
    """Stream the snapshot to write(chunk), items framed (a u16 length each) and batched a few
    hundred bytes at a time, whatever the tree; the same bytes on every call while the tree
    stays as it is. The tree holds no copy of itself for it."""
    buf = bytearray(_BATCH)
    n = 0
    for item in _items(tree._root):
        data = cbor.dumps(item)
        for piece in (bytes((len(data) & 0xFF, len(data) >> 8)), data):
            k = len(piece)
            if n + k > _BATCH and n:
                write(memoryview(buf)[:n])
                n = 0
            if k > _BATCH:
                write(piece)
            else:
                buf[n : n + k] = piece
                n += k
    if n:
        write(memoryview(buf)[:n])
