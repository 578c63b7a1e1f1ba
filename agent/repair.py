"""The store's rare paths, kept out of the heap until needed: telling damage from a torn
tail, and the operator's way out of damage (`dmagent serve --recover`:
see what recovery would drop, then drop it). agent.store and agent.recovery import it only
when one of these happens.
"""

import binascii
import struct

from .recovery import _read_record
from .store import HEADER_SIZE, JOURNAL, RECORD_HEAD, _size


def next_good_record(f, start, size, head):
    """(offset, payload length) of the first good record after a bad one at start, or None.
    Tries the bad record's own length first (a flipped payload byte), then every offset
    (a damaged length). Each try checks the CRC in pieces: nothing is read whole."""
    f.seek(start)
    tries = []
    if f.readinto(head) == RECORD_HEAD:
        n = struct.unpack_from("<I", head, 0)[0]
        if n <= size - start:
            tries.append(start + RECORD_HEAD + n)
    for at in tries + list(range(start + 1, size - RECORD_HEAD + 1)):
        n = _good_at(f, at, size, head)
        if n is not None:
            return at, n
    return None


def _good_at(f, at, size, head):
    if at + RECORD_HEAD > size:
        return None
    f.seek(at)
    if f.readinto(head) != RECORD_HEAD:
        return None
    n, want = struct.unpack("<II", head)
    if n > size - at - RECORD_HEAD:
        return None
    crc = binascii.crc32(memoryview(head)[:4])
    buf = bytearray(64)
    left = n
    while left:
        k = f.readinto(memoryview(buf)[: min(left, 64)])
        if not k:
            return None
        crc = binascii.crc32(memoryview(buf)[:k], crc)
        left -= k
    return n if crc == want else None


def count_records(path, at, size):
    count = 0
    head = bytearray(RECORD_HEAD)
    with open(path, "rb") as f:
        while True:
            n = _good_at(f, at, size, head)
            if n is None:
                return count
            count += 1
            at += RECORD_HEAD + n


_REFUSED = "; writes refused until recovered"


def missing_journal(store, gen):
    store.damage = ("journal.bin is missing beside snapshot.bin (generation %d): what was "
                    "written after that snapshot is lost" % gen) + _REFUSED
    return True


def bad_record(store, f, at, count, size, head):
    """Damage if a good record follows the bad one at `at`: set store.damage, True. A torn
    tail (nothing good after it): False, for recovery to cut off."""
    later = next_good_record(f, at, size, head)
    if later is None:
        return False
    after = count_records(store._path(JOURNAL), later[0], size)
    store.damage_at = (at, count, later[0], after)
    store.damage = ("journal.bin: record %d (byte %d) is damaged and %d good records follow "
                    "it" % (count + 1, at, after)) + _REFUSED
    return True


def records_after_damage(store):
    """The payloads of the good records after the damaged one (for the operator to see)."""
    at = store.damage_at[2]
    path = store._path(JOURNAL)
    size = _size(path)
    with open(path, "rb") as f:
        while True:
            f.seek(at)
            payload = _read_record(f, size - at, bytearray(RECORD_HEAD))
            if payload is None:
                return
            yield payload
            at += RECORD_HEAD + len(payload)


def set_aside(store, snapshot):
    """The operator's way out of store.damage: journal.bin is renamed to journal.damaged
    (a free name: .1, .2, ...), then snapshot (the state as loaded) is compacted in, which
    drops the damaged record and everything after it. Returns the name it was kept under."""
    name = None
    if _size(store._path(JOURNAL)) is not None:
        name = "journal.damaged"
        k = 0
        while _size(store._path(name)) is not None:
            k += 1
            name = "journal.damaged.%d" % k
        store.close()
        store._rename(JOURNAL, name)
    gen = store._gen
    store._new_journal(gen)  # empty: the state loaded now goes into the next snapshot
    store._jsize, store._count = HEADER_SIZE, 0
    store.damage = store.damage_at = None
    store.compact(snapshot)
    return name
