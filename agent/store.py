"""Crash-safe persistence of bytes: one snapshot, plus a journal of records appended after it.

A record is on flash when append() returns. Generation numbers, not file order, decide what is
current: after compaction renames a new snapshot in, the old journal is ignored, never replayed.

Files in root_dir, each `header || records`:
  header (16 bytes)  magic (4: b"dmSN" in snapshot.bin, b"dmJL" in journal.bin) || version (1)
                     || 3 zero bytes || generation (u32 LE) || CRC-32 of the 12 bytes before (LE)
  record             length (u32 LE) || CRC-32 over the length field and payload (u32 LE) || payload
snapshot.bin holds one record, the whole tree, and its header names its generation G (>= 1);
no snapshot.bin means generation 0, the empty tree. journal.bin's header names the generation
of the snapshot it follows; its records apply on top of that snapshot, in order. CRC-32 is the
zlib one (binascii.crc32). The record CRC covers the length so a zero-filled tail, which some
file systems leave after a crash, does not read as empty records.

load(): a torn or corrupt journal record ends the journal; it and what follows are cut off
(the file is truncated to the last good record). A journal of an older generation than the
snapshot is stale and replaced by an empty one. A bad header or snapshot raises StoreError.

compact(S), current generation G:
  1. write snapshot.tmp (header G+1, record S), flush + fsync     crash: state before
  2. rename snapshot.tmp -> snapshot.bin, fsync the folder         crash: state after
     (journal.bin still says G: stale, ignored at load and replaced)
  3. write journal.tmp (header G+1, no records), flush + fsync     crash: state after
  4. rename journal.tmp -> journal.bin, fsync the folder           crash: state after
At load a leftover *.tmp is removed, except where the final file is missing, which only a
rename done as "remove, then rename" (FAT) can leave: then a complete tmp is renamed in
(journal.tmp: a good header; snapshot.tmp: a good record of generation J+1 where journal.bin
names J >= 1). Rename onto an existing file is atomic on POSIX and on littlefs.

Durability: CPython has os.fsync, used on files and (for renames) the folder. MicroPython
has none: flush() is what there is; it fsyncs on the unix port, and on littlefs a file's
new data is committed only by flush/close, so a failed or cut-off append leaves nothing there.
"""

import binascii
import os
import struct

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


SNAPSHOT = "snapshot.bin"
JOURNAL = "journal.bin"
SNAPSHOT_TMP = "snapshot.tmp"
JOURNAL_TMP = "journal.tmp"
SNAPSHOT_MAGIC = b"dmSN"
JOURNAL_MAGIC = b"dmJL"
VERSION = const(1)
HEADER_SIZE = const(16)
RECORD_HEAD = const(8)
DEFAULT_COMPACT_BYTES = const(16384)

_ENOSPC = const(28)
_COPY_CHUNK = const(512)
_fsync = getattr(os, "fsync", None)  # CPython only


class StoreError(Exception):
    """The store's files cannot be used as they are; the message names the file and why."""


class StoreFull(StoreError):
    """A write failed for lack of space; no partial record was left behind."""


def _errno(exc):
    err = getattr(exc, "errno", None)
    if err is None and exc.args:
        err = exc.args[0]
    return err


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _size(path):
    """File size, or None when there is no such file."""
    try:
        return os.stat(path)[6]
    except OSError:
        return None


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _sync(f):
    f.flush()
    if _fsync is not None:
        _fsync(f.fileno())


def _write_all(f, data):
    # One write call in practice; a raw CPython file may write short when space runs out.
    n = len(data)
    w = f.write(data)
    if w is None:  # stream API without a count: MicroPython files always give one
        return
    mv = memoryview(data)
    while w < n:
        k = f.write(mv[w:])
        if not k:
            raise OSError(_ENOSPC, "short write")
        w += k


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


def header(magic, generation):
    h = bytearray(HEADER_SIZE)
    h[0:4] = magic
    h[4] = VERSION
    struct.pack_into("<I", h, 8, generation)
    struct.pack_into("<I", h, 12, binascii.crc32(memoryview(h)[:12]))
    return h


def _record_head(payload):
    h = bytearray(RECORD_HEAD)
    struct.pack_into("<I", h, 0, len(payload))
    struct.pack_into("<I", h, 4, binascii.crc32(payload, binascii.crc32(memoryview(h)[:4])))
    return h


def record(payload):
    """The on-disk bytes of one record, in one buffer (so append can write it in one call)."""
    n = len(payload)
    rec = bytearray(RECORD_HEAD + n)
    rec[0:RECORD_HEAD] = _record_head(payload)
    rec[RECORD_HEAD:] = payload
    return rec


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
    if n > remaining - RECORD_HEAD:
        return None
    payload = f.read(n)
    if len(payload) != n:
        return None
    if binascii.crc32(payload, binascii.crc32(memoryview(head)[:4])) != crc:
        return None
    return payload


class Store:
    """Snapshot + journal in root_dir (created if missing). Call load() first; append(),
    compact() and stats() run the same recovery themselves if it has not run yet."""

    _truncate_in_place = True  # where files have truncate(); tests turn it off for the copy path

    def __init__(self, root_dir, compact_bytes=DEFAULT_COMPACT_BYTES):
        self.root = root_dir.rstrip("/") or "/"
        self.compact_bytes = compact_bytes
        _makedirs(self.root)
        self._jf = None  # journal.bin open for appending
        self._gen = None  # current generation; None: recovery has to run first
        self._jsize = 0  # bytes of journal.bin up to the end of the last good record
        self._count = 0
        self._ssize = 0

    def _path(self, name):
        return (self.root if self.root == "/" else self.root + "/") + name

    def _step(self, name):
        """Called between the steps of compaction and truncation; a test raises here to crash."""

    def _open_append(self, path):
        return open(path, "ab", buffering=0)

    # --- reading --------------------------------------------------------------
    def load(self):
        """(snapshot bytes or None, [journal payloads in order]); repairs the files on the way."""
        return self._recover(True)

    def _recover(self, keep):
        try:
            return self._recover_files(keep)
        except OSError as exc:
            if _errno(exc) == _ENOSPC:
                raise StoreFull("store recovery: no space left to repair the journal")
            raise

    def _recover_files(self, keep):
        self.close()
        self._gen = None
        jpath = self._path(JOURNAL)
        self._settle_tmp(JOURNAL_TMP, JOURNAL, self._journal_tmp_ok)
        self._settle_tmp(SNAPSHOT_TMP, SNAPSHOT, self._snapshot_tmp_ok)
        gen, snapshot = self._read_snapshot()
        records = []
        size = _size(jpath)
        good = count = 0
        jgen = None
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
                    payload = _read_record(f, size - good, head)
                    if payload is None:
                        break
                    good += RECORD_HEAD + len(payload)
                    count += 1
                    if keep:
                        records.append(payload)
                    payload = None
        if jgen != gen:  # no journal yet, or one from before the last compaction
            self._new_journal(gen)
            good = HEADER_SIZE
        elif good < size:  # torn or corrupt tail: cut it off so appends follow good data
            self._truncate_journal(good)
        self._jsize = good
        self._count = count
        self._gen = gen
        return snapshot, records

    def _read_snapshot(self):
        path = self._path(SNAPSHOT)
        size = _size(path)
        self._ssize = size or 0
        if size is None:
            return 0, None
        with open(path, "rb") as f:
            gen = _read_header(f, SNAPSHOT, SNAPSHOT_MAGIC)
            payload = _read_record(f, size - HEADER_SIZE, bytearray(RECORD_HEAD))
        if payload is None:
            raise StoreError("snapshot.bin: record torn or CRC mismatch (%d bytes)" % size)
        if HEADER_SIZE + RECORD_HEAD + len(payload) != size:
            extra = size - HEADER_SIZE - RECORD_HEAD - len(payload)
            raise StoreError("snapshot.bin: %d bytes after its record" % extra)
        return gen, payload

    def _journal_tmp_ok(self, path):
        try:
            with open(path, "rb") as f:
                _read_header(f, JOURNAL_TMP, JOURNAL_MAGIC)
            return True
        except (OSError, StoreError):
            return False

    def _snapshot_tmp_ok(self, path):
        # Only once a snapshot existed can snapshot.bin be missing mid-rename: the journal
        # then still names that generation (>= 1) and the tmp must be the next one.
        try:
            jpath = self._path(JOURNAL)
            with open(jpath, "rb") as f:
                jgen = _read_header(f, JOURNAL, JOURNAL_MAGIC)
            size = _size(path)
            with open(path, "rb") as f:
                gen = _read_header(f, SNAPSHOT_TMP, SNAPSHOT_MAGIC)
                payload = _read_record(f, size - HEADER_SIZE, bytearray(RECORD_HEAD))
        except (OSError, StoreError):
            return False
        if payload is None or HEADER_SIZE + RECORD_HEAD + len(payload) != size:
            return False
        return jgen >= 1 and gen == jgen + 1

    def _settle_tmp(self, tmp, final, complete):
        tpath = self._path(tmp)
        if not _exists(tpath):
            return
        fpath = self._path(final)
        if not _exists(fpath) and complete(tpath):
            os.rename(tpath, fpath)
            self._sync_dir()
        else:
            os.remove(tpath)

    # --- writing --------------------------------------------------------------
    def _ready(self):
        if self._gen is None:
            self._recover(False)
        if self._jf is None:
            try:
                self._jf = self._open_append(self._path(JOURNAL))
            except OSError as exc:
                if _errno(exc) == _ENOSPC:
                    raise StoreFull("journal.bin: no space left to open it for appending")
                raise

    def append(self, payload):
        """Add one record; it is on flash when this returns. StoreFull: not written, and the
        journal holds no partial record (if it cannot be cut back, the next call retries)."""
        self._ready()
        rec = record(payload)
        try:
            _write_all(self._jf, rec)
            _sync(self._jf)
        except OSError as exc:
            self._undo_append()
            if _errno(exc) == _ENOSPC:
                raise StoreFull("journal append: no space left for a %d-byte record" % len(rec))
            raise
        self._jsize += len(rec)
        self._count += 1

    def _undo_append(self):
        self.close()
        try:
            if _size(self._path(JOURNAL)) != self._jsize:
                self._truncate_journal(self._jsize)
        except Exception:  # noqa: BLE001 - cannot cut back now: recover before the next write
            self._gen = None

    def compact(self, snapshot_payload):
        """Make snapshot_payload (the whole current state) the snapshot and empty the journal."""
        self._ready()
        gen = self._gen + 1
        tmp = self._path(SNAPSHOT_TMP)
        try:
            head = header(SNAPSHOT_MAGIC, gen)
            self._write_file(tmp, (head, _record_head(snapshot_payload), snapshot_payload))
        except Exception as exc:  # noqa: BLE001 - the old snapshot and journal still stand
            _remove_quietly(tmp)
            if isinstance(exc, OSError) and _errno(exc) == _ENOSPC:
                n = len(snapshot_payload)
                raise StoreFull("compaction: no space left for a %d-byte snapshot" % n)
            raise
        self._step("snapshot.tmp written")
        # From the rename on, journal.bin is stale: until a fresh one is in, a failure leaves
        # recovery to the next call, which replaces it.
        self.close()
        self._gen = None
        os.rename(tmp, self._path(SNAPSHOT))
        self._sync_dir()
        self._ssize = _size(self._path(SNAPSHOT)) or 0
        self._step("snapshot renamed")
        try:
            self._new_journal(gen)
        except OSError as exc:
            if _errno(exc) == _ENOSPC:  # the new snapshot stands; recovery makes the journal
                raise StoreFull("compaction: no space left for a fresh journal")
            raise
        self._jsize = HEADER_SIZE
        self._count = 0
        self._gen = gen

    def _new_journal(self, gen):
        tmp = self._path(JOURNAL_TMP)
        try:
            self._write_file(tmp, (header(JOURNAL_MAGIC, gen),))
        except OSError:
            _remove_quietly(tmp)
            raise
        self._step("journal.tmp written")
        os.rename(tmp, self._path(JOURNAL))
        self._sync_dir()
        self._step("journal renamed")

    def _write_file(self, path, parts):
        f = open(path, "wb")
        try:
            for part in parts:
                _write_all(f, part)
            _sync(f)
        finally:
            f.close()

    def _truncate_journal(self, n):
        """Cut journal.bin to its first n bytes: in place where the runtime can, else by
        copying them to journal.tmp and renaming that over (no truncate on MicroPython)."""
        path = self._path(JOURNAL)
        if self._truncate_in_place:
            with open(path, "r+b") as f:
                if hasattr(f, "truncate"):
                    f.truncate(n)
                    _sync(f)
                    return
        tmp = self._path(JOURNAL_TMP)
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
        self._step("journal.tmp copied")
        os.rename(tmp, path)
        self._sync_dir()

    def _sync_dir(self):
        # A rename is durable once the folder is; only CPython can fsync one.
        if _fsync is None:
            return
        try:
            fd = os.open(self.root, os.O_RDONLY)
        except (OSError, AttributeError):
            return
        try:
            _fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    # --- housekeeping -----------------------------------------------------------
    def stats(self):
        self._ready()
        return {
            "journal_bytes": self._jsize,
            "journal_records": self._count,
            "snapshot_bytes": self._ssize,
            "generation": self._gen,
        }

    def should_compact(self):
        """True once the journal has grown past compact_bytes."""
        self._ready()
        return self._jsize > self.compact_bytes

    def close(self):
        f = self._jf
        self._jf = None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass
