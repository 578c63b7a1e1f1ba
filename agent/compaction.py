"""Compaction, agent.store's rare write: the whole state becomes the new snapshot and the
journal starts again (the steps and their crash analysis are in agent/store.py).

Store.compact() imports it for one run and unloads it after: it runs once per
compact_bytes of journal. A load that finds no room raises MemoryError before anything is
written; the journal just grows until the next try.
"""

import binascii
import os
import struct

from .store import (HEADER_SIZE, RECORD_HEAD, RESERVE, SNAPSHOT, SNAPSHOT_MAGIC, SNAPSHOT_TMP,
                    StoreError, StoreFull, _remove_quietly, _size, _sync, _write_all, header,
                    is_full, record_head)


def compact(store, snapshot, spend_reserve):
    """Store.compact(snapshot, spend_reserve), which says what they are."""
    try:
        _compact(store, snapshot)
    except StoreFull:
        store._no_room = True
        path = store._path(RESERVE)
        if not (spend_reserve and store.reserve and _size(path) is not None):
            raise
        os.remove(path)
        store.reserve_short = True  # pragma: no mutate (every way out runs _keep_reserve, which sets it again)
        try:
            _compact(store, snapshot)
        except Exception:
            store._keep_reserve()  # not enough even so: take the room back for next time
            raise
    store._pressed = store._no_room = False
    store._keep_reserve()


def _compact(store, snapshot):
    store._ready()
    if store.damage is not None:
        raise StoreError(store.damage)
    gen = store._gen + 1
    tmp = store._path(SNAPSHOT_TMP)
    n = 0  # pragma: no mutate (only the message's size, for a streamed snapshot not measured yet)
    try:
        if callable(snapshot):
            n = _write_streamed(tmp, header(SNAPSHOT_MAGIC, gen), snapshot)
        else:
            n = len(snapshot)
            store._write_file(tmp, (header(SNAPSHOT_MAGIC, gen), record_head(snapshot), snapshot))
    except Exception as exc:  # noqa: BLE001 - the old snapshot and journal still stand
        _remove_quietly(tmp)
        if is_full(exc):
            raise StoreFull("compaction: no space left for a %d-byte snapshot" % n)
        raise
    # From the rename on, journal.bin is stale: until a fresh one is in, a failure leaves
    # recovery to the next call, which replaces it.
    store.close()
    store._gen = None
    store._rename(SNAPSHOT_TMP, SNAPSHOT)
    store._ssize = _size(store._path(SNAPSHOT)) or 0  # pragma: no mutate (just renamed in: never None)
    try:
        store._new_journal(gen)
    except OSError as exc:
        if is_full(exc):  # the new snapshot stands; recovery makes the journal
            raise StoreFull("compaction: no space left for a fresh journal")
        raise
    store._jsize = HEADER_SIZE
    store._count = 0
    store._gen = gen


def _write_streamed(path, head, dump):
    """One record from dump(write): a first pass measures it, the second writes it with
    a placeholder CRC, which a seek then fills in. Returns the payload length."""
    size = [0]

    def measure(chunk):
        size[0] += len(chunk)

    dump(measure)
    len_written = size[0]
    rec = bytearray(RECORD_HEAD)
    struct.pack_into("<I", rec, 0, size[0])
    crc = [binascii.crc32(memoryview(rec)[:4])]
    f = open(path, "wb")
    try:
        _write_all(f, head)
        _write_all(f, rec)

        def write(chunk):
            crc[0] = binascii.crc32(chunk, crc[0])
            size[0] -= len(chunk)
            _write_all(f, chunk)

        dump(write)
        if size[0]:
            raise StoreError("snapshot changed while it was written")
        struct.pack_into("<I", rec, 4, crc[0])
        f.seek(HEADER_SIZE + 4)
        _write_all(f, memoryview(rec)[4:])
        _sync(f)
    finally:
        f.close()
    return len_written  # pragma: no mutate (read only by the error message, which a failure raises before this)
