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
    def load(self, restore=None, apply=None):
        """(snapshot bytes or None, [journal payloads in order]); repairs the files on the way.
        With restore and apply: restore(read) (restore(None) without a snapshot), where read(n)
        gives the snapshot's next bytes, at most n, and b"" at its end once its CRC is found
        good; then apply(payload) for each journal record in order, one at a time. A board's
        heap holds neither the whole snapshot nor all records at once."""
        return self._recover(apply or True, restore)

    def _recover(self, keep, restore=None):
        # Boot-time code, in its own module: the agent unloads it once booted (heap).
        from . import recovery

        return recovery.recover(self, keep, restore)

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

    def compact(self, snapshot):
        """Make snapshot (the whole current state) the snapshot and empty the journal.
        snapshot is bytes, or a function dump(write) that hands the payload to write() in
        pieces, the same each call: then a large state never sits whole in memory."""
        self._ready()
        gen = self._gen + 1
        tmp = self._path(SNAPSHOT_TMP)
        n = 0
        try:
            if callable(snapshot):
                n = self._write_streamed(tmp, header(SNAPSHOT_MAGIC, gen), snapshot)
            else:
                n = len(snapshot)
                self._write_file(tmp, (header(SNAPSHOT_MAGIC, gen), _record_head(snapshot), snapshot))
        except Exception as exc:  # noqa: BLE001 - the old snapshot and journal still stand
            _remove_quietly(tmp)
            if isinstance(exc, OSError) and _errno(exc) == _ENOSPC:
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

    def _write_streamed(self, path, head, dump):
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
        return len_written

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
