"""reserve.bin (agent.store): growing it, and spending it on a compaction that only frees
space. Its own module: it runs at the first boot, when the tree's size moves, and on a full
device, and need not sit in the heap in between.
"""

import os

from agent.store import RESERVE, StoreFull, _exists, _size, _sync, _write_all, is_full


def keep(store, want, have):
    """Grow (or, far too big, rewrite) reserve.bin to want bytes of zeros; on no room,
    keep what was written and set store.reserve_short."""
    path = store._path(RESERVE)
    if have > want:
        os.remove(path)
        have = 0
    store.reserve_short = True
    zeros = bytes(64)  # small: at boot the heap is at its most cut up
    try:
        with open(path, "ab") as f:
            while have < want:
                k = min(64, want - have)
                _write_all(f, memoryview(zeros)[:k])
                have += k
            _sync(f)
    except OSError as exc:
        if not is_full(exc):
            raise
        return  # what got written stays: it is room all the same
    store.reserve_short = False


def spend(store, snapshot):
    """The compaction again, in the room reserve.bin held (StoreFull if there is none)."""
    path = store._path(RESERVE)
    if not (store.reserve and _exists(path)):
        raise StoreFull("no room, and no reserve left")
    os.remove(path)
    store.reserve_short = True
    try:
        store._compact(snapshot)
    except Exception:
        store._keep_reserve()  # not enough even so: take the room back for next time
        raise
