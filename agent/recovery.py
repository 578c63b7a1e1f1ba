"""Boot-time half of agent.store: settle leftover *.tmp files, read and check the snapshot and
the journal, cut a torn tail off. The format and the crash analysis are in agent/store.py.

A bad record with a good one somewhere after it is damage, not a torn tail (an append only
ever tears the end): nothing is cut, store.damage says what and where, and writes stay
refused until agent.repair.set_aside() (`dmagent serve --recover`). So is a journal missing beside a
snapshot: compaction never leaves one (only a journal.tmp, which is settled here).

Its own module so that the agent can drop it from the heap once booted; Store imports it
again if a failed write leaves recovery to do.
"""

import binascii
import os
import struct

from .store import (HEADER_SIZE, JOURNAL, JOURNAL_MAGIC, JOURNAL_TMP, RECORD_HEAD, SNAPSHOT,
                         SNAPSHOT_MAGIC, SNAPSHOT_TMP, VERSION, StoreError, StoreFull,
                         _remove_quietly, _size, _sync, _write_all, is_full)

_COPY_CHUNK = 512  # pragma: no mutate (any chunk size copies the same bytes)


def _read_header(f, name, magic):
    """The generation in the header of an open file; StoreError if it is not one of ours."""
    h = f.read(HEADER_SIZE)
    if len(h) < HEADER_SIZE:
        raise StoreError("%s: %d bytes, too short for a store header" % (name, len(h)))
    if h[0:4] != magic:
        raise StoreError("%s: not a dmagent store file (magic %r, want %r)" % (name, h[0:4], magic))
    if h[4] != VERSION:
        raise StoreError("%s: format version %d, this agent reads %d" % (name, h[4], VERSION))
    crc = struct.unpack_from("<I", h, 12)[0]
    if binascii.crc32(memoryview(h)[:12]) != crc:
        raise StoreError("%s: header CRC mismatch" % name)
    return struct.unpack_from("<I", h, 8)[0]


def _read_record(f, remaining, head):
    """The next record's payload, or None if the rest of the file is not a whole, good record.
    Checks the length against the bytes left before allocating."""
    if remaining < RECORD_HEAD or f.readinto(head) != RECORD_HEAD:
        return None
    n, crc = struct.unpack("<II", head)
    if n > remaining - RECORD_HEAD:  # pragma: no mutate Sub -> Add (up to 16 past the end: reads short below)
        return None
    payload = f.read(n)
    if len(payload) != n:
        return None
    if binascii.crc32(payload, binascii.crc32(memoryview(head)[:4])) != crc:
        return None
    return payload


def recover(store, keep, restore=None):
    """Repair the files after a crash and read them. keep: False (only repair), True (return
    (snapshot, [journal payloads])), or a function called with each payload in turn, after
    restore(snapshot or None): then no more than one record is in memory at a time."""
    try:
        result = _recover_files(store, keep, restore)
    except OSError as exc:
        if is_full(exc):
            raise StoreFull("store recovery: no space left to repair the journal")
        raise
    store._keep_reserve()
    return result

def _recover_files(store, keep, restore):
    _makedirs(store.root)
    store.close()
    store._gen = None
    jpath = store._path(JOURNAL)
    _settle_tmp(store, JOURNAL_TMP, JOURNAL, _journal_tmp_ok)
    _settle_tmp(store, SNAPSHOT_TMP, SNAPSHOT, _snapshot_tmp_ok)
    if restore is not None:
        gen, snapshot = _stream_snapshot(store, restore), None
    else:
        gen, snapshot = _read_snapshot(store)
    records = []
    size = _size(jpath)
    good = count = 0
    jgen = None
    damaged = False
    store.damage = store.damage_at = None
    if size is None and gen >= 1:  # compaction never leaves that
        from . import repair

        damaged = repair.missing_journal(store, gen)
    if size is not None:
        head = bytearray(RECORD_HEAD)
        with open(jpath, "rb") as f:
            jgen = _read_header(f, JOURNAL, JOURNAL_MAGIC)
            if jgen > gen:
                raise StoreError(
                    "journal.bin follows generation %d, snapshot.bin is only %d" % (jgen, gen)
                )
            good = HEADER_SIZE
            while jgen == gen and good < size:
                payload = _read_record(f, size - good, head)  # pragma: no mutate (a looser bound reads short)
                if payload is None:
                    break
                good += RECORD_HEAD + len(payload)
                count += 1
                if callable(keep):
                    keep(payload)
                elif keep:
                    records.append(payload)
                payload = None
            if jgen == gen and good < size:
                from . import repair  # rare: a bad record that is not at the very end

                damaged = repair.bad_record(store, f, good, count, size, head)
    if damaged:
        pass  # nothing is written until the operator chooses: agent.repair
    elif jgen != gen:  # no journal yet, or one from before the last compaction
        store._new_journal(gen)
        good = HEADER_SIZE
    elif good < size:  # torn or corrupt tail: cut it off so appends follow good data
        store._truncate_journal(good)
    store._jsize = good
    store._count = count
    store._gen = gen
    return snapshot, records

def _makedirs(path):
    part = "/" if path.startswith("/") else ""
    for name in path.split("/"):
        if not name:
            continue
        part = part + name if not part or part.endswith("/") else part + "/" + name
        try:
            mode = os.stat(part)[0]
        except OSError:
            os.mkdir(part)
            continue
        if not mode & 0x4000:
            raise StoreError("%s: exists and is not a folder" % part)


def truncate_journal(store, n):
    """Cut journal.bin to its first n bytes: in place where the runtime can, else by
    copying them to journal.tmp and renaming that over (no truncate on MicroPython)."""
    path = store._path(JOURNAL)
    if store._truncate_in_place:
        with open(path, "r+b") as f:
            if hasattr(f, "truncate"):
                f.truncate(n)
                _sync(f)
                return
    tmp = store._path(JOURNAL_TMP)
    buf = bytearray(_COPY_CHUNK)
    mv = memoryview(buf)
    try:
        with open(path, "rb") as src:
            with open(tmp, "wb") as dst:
                left = n
                while left:
                    k = src.readinto(mv[: min(left, _COPY_CHUNK)])
                    if not k:
                        raise StoreError("journal.bin: shorter than %d bytes while copying" % n)
                    _write_all(dst, mv[:k])
                    left -= k
                _sync(dst)
    except Exception:
        _remove_quietly(tmp)
        raise
    store._rename(JOURNAL_TMP, JOURNAL)


def _read_snapshot(store):
    path = store._path(SNAPSHOT)
    size = _size(path)
    store._ssize = size or 0
    if size is None:
        return 0, None
    with open(path, "rb") as f:
        gen = _read_header(f, SNAPSHOT, SNAPSHOT_MAGIC)
        payload = _read_record(f, size - HEADER_SIZE, bytearray(RECORD_HEAD))  # pragma: no mutate (looser: reads short)
    if payload is None:
        raise StoreError("snapshot.bin: record torn or CRC mismatch (%d bytes)" % size)
    if HEADER_SIZE + RECORD_HEAD + len(payload) != size:
        extra = size - HEADER_SIZE - RECORD_HEAD - len(payload)
        raise StoreError("snapshot.bin: %d bytes after its record" % extra)
    return gen, payload

def _stream_snapshot(store, restore):
    """restore(read) with read(n) giving the snapshot record's next n bytes (b"" at its end,
    once its CRC is found good), or restore(None): the snapshot is never whole in memory."""
    path = store._path(SNAPSHOT)
    size = _size(path)
    store._ssize = size or 0
    if size is None:
        restore(None)
        return 0
    torn = "snapshot.bin: record torn or CRC mismatch (%d bytes)" % size
    with open(path, "rb") as f:
        gen = _read_header(f, SNAPSHOT, SNAPSHOT_MAGIC)
        head = bytearray(RECORD_HEAD)
        if size - HEADER_SIZE < RECORD_HEAD or f.readinto(head) != RECORD_HEAD:  # pragma: no mutate Sub -> Add (reads short)
            raise StoreError(torn)
        n, crc = struct.unpack("<II", head)
        if HEADER_SIZE + RECORD_HEAD + n != size:
            raise StoreError(torn)
        left = [n, binascii.crc32(memoryview(head)[:4])]

        def read(k):
            if not left[0]:
                if left[1] != crc:
                    raise StoreError(torn)
                return b""
            data = f.read(min(k, left[0]))  # pragma: no mutate (min(k, CRC): k but for a CRC below k; the file ends)
            if not data:
                raise StoreError(torn)
            left[0] -= len(data)
            left[1] = binascii.crc32(data, left[1])
            return data

        try:
            restore(read)
        except StoreError:
            raise
        except Exception:  # a damaged record reads as a bad snapshot: say which it is
            while read(256):  # pragma: no mutate (any piece size reads to the end)
                pass
            raise
        if left[0]:
            raise StoreError("snapshot.bin: %d bytes of its record were not read" % left[0])
    return gen

def _journal_tmp_ok(store, path):
    try:
        with open(path, "rb") as f:
            _read_header(f, JOURNAL_TMP, JOURNAL_MAGIC)
        return True
    except (OSError, StoreError):
        return False

def _snapshot_tmp_ok(store, path):
    # Only once a snapshot existed can snapshot.bin be missing mid-rename: the journal
    # then still names that generation (>= 1) and the tmp must be the next one.
    try:
        jpath = store._path(JOURNAL)
        with open(jpath, "rb") as f:
            jgen = _read_header(f, JOURNAL, JOURNAL_MAGIC)
        size = _size(path)
        with open(path, "rb") as f:
            gen = _read_header(f, SNAPSHOT_TMP, SNAPSHOT_MAGIC)
            payload = _read_record(f, size - HEADER_SIZE, bytearray(RECORD_HEAD))  # pragma: no mutate (looser: reads short)
    except (OSError, StoreError):
        return False
    if payload is None or HEADER_SIZE + RECORD_HEAD + len(payload) != size:
        return False
    return jgen >= 1 and gen == jgen + 1

def _settle_tmp(store, tmp, final, complete):
    tpath = store._path(tmp)
    if _size(tpath) is None:
        return
    if _size(store._path(final)) is None and complete(store, tpath):
        store._rename(tmp, final)
    else:
        os.remove(tpath)

