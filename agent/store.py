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

load(): a torn or corrupt record at the journal's end is cut off (the file is truncated to
the last good record). A bad record with a good one after it is damage (agent.recovery):
nothing is cut, `damage` says what, and writes are refused until the operator decides. A journal of an older generation than the
snapshot is stale and replaced by an empty one. A bad header or snapshot raises StoreError.

compact(S), current generation G:
  1. write snapshot.tmp (header G+1, record S), flush + fsync     crash: state before
  2. rename snapshot.tmp -> snapshot.bin, fsync the folder         crash: state after
     (journal.bin still says G: stale, ignored at load and replaced)
  3. write journal.tmp (header G+1, no records), flush + fsync     crash: state after
  4. rename journal.tmp -> journal.bin, fsync the folder           crash: state after
(Its code is agent.compaction, loaded for each run and unloaded after it.)
At load a leftover *.tmp is removed, except where the final file is missing, which only a
rename done as "remove, then rename" (FAT) can leave: then a complete tmp is renamed in
(journal.tmp: a good header; snapshot.tmp: a good record of generation J+1 where journal.bin
names J >= 1). Rename onto an existing file is atomic on POSIX and on littlefs.

Full storage (ENOSPC, EFBIG, EDQUOT) is StoreFull, whatever step hits it. With reserve=True
the store keeps reserve.bin, zeros enough for one more compaction of the largest state this
generation can reach (snapshot + compact_bytes + RESERVE_SLACK, in KiB; so, while compaction
finds no room, the journal may not grow past compact_bytes + RESERVE_SLACK / 2). Writes that
only delete may spend it (compact(..., spend_reserve=True)): so a full device can always take
a Delete and give its space back. While the reserve cannot be kept whole, other writes are
refused (StoreFull) before they are tried: the room is for Deletes. docs/storage.md has more.

Durability: CPython has os.fsync, used on files and (for renames) the folder. MicroPython
has none: flush() is what there is; it fsyncs on the unix port, and on littlefs a file's
new data is committed only by flush/close, so a failed or cut-off append leaves nothing there.
"""

import binascii
import os
import struct

from . import unload

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


SNAPSHOT = "snapshot.bin"
JOURNAL = "journal.bin"
SNAPSHOT_TMP = "snapshot.tmp"
JOURNAL_TMP = "journal.tmp"
RESERVE = "reserve.bin"
SNAPSHOT_MAGIC = b"dmSN"
JOURNAL_MAGIC = b"dmJL"
VERSION = const(1)
HEADER_SIZE = const(16)
RECORD_HEAD = const(8)
DEFAULT_COMPACT_BYTES = const(16384)
RESERVE_SLACK = const(4096)  # a Delete's record, a fresh journal, file system overhead

_ENOSPC = const(28)
_EFBIG = const(27)  # a file past its size limit (RLIMIT_FSIZE, FAT's 4 GiB)
_EDQUOT = const(122)  # Linux: over the user's quota
_FULL = (_ENOSPC, _EFBIG, _EDQUOT)
_fsync = getattr(os, "fsync", None)  # CPython only


class StoreError(Exception):
    """The store's files cannot be used as they are; the message names the file and why."""


class StoreFull(StoreError):
    """A write failed for lack of space; no partial record was left behind."""


def is_full(exc):
    """True for the OSErrors that mean "no room": they answer 420, never 500."""
    if not isinstance(exc, OSError):
        return False
    err = getattr(exc, "errno", None)
    if err is None and exc.args:
        err = exc.args[0]
    return err in _FULL


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


def header(magic, generation):
    h = bytearray(HEADER_SIZE)
    h[0:4] = magic
    h[4] = VERSION
    struct.pack_into("<I", h, 8, generation)
    struct.pack_into("<I", h, 12, binascii.crc32(memoryview(h)[:12]))
    return h


def record_head(payload):
    """The 8 bytes that go before payload on disk: its length and CRC."""
    h = bytearray(RECORD_HEAD)
    struct.pack_into("<I", h, 0, len(payload))
    struct.pack_into("<I", h, 4, binascii.crc32(payload, binascii.crc32(memoryview(h)[:4])))
    return h


class Store:
    """Snapshot + journal in root_dir (created if missing). Call load() first; append(),
    compact() and should_compact() run the same recovery themselves if it has not run yet."""

    _truncate_in_place = True  # where files have truncate(); tests turn it off for the copy path

    def __init__(self, root_dir, compact_bytes=DEFAULT_COMPACT_BYTES, reserve=False):
        self.root = root_dir.rstrip("/") or "/"
        self.compact_bytes = compact_bytes
        self.reserve = reserve
        self.reserve_short = False  # reserve.bin is not whole: only Deletes are written
        self._pressed = False  # an append ran out of space since the last compaction
        self._no_room = False  # the last compaction ran out of space
        self.damage = None  # text: what load() found damaged; writes are refused while set
        self.damage_at = None  # (offset, good records before, next good offset, good after)
        try:  # CPython: the tree holds secrets (AAuthSecret), the folder is the agent's alone
            os.chmod(self.root, 0o700)  # a new one is made by load(), under serve's umask 077
        except (AttributeError, OSError):
            pass  # MicroPython has no file modes; or no folder yet
        self._jf = None  # journal.bin open for appending
        self._gen = None  # current generation; None: recovery has to run first
        # Bytes of journal.bin up to the end of the last good record, its records, snapshot.bin's
        # size: recovery sets all three, and everything that reads them runs it first.
        self._jsize = 0  # pragma: no mutate (recovery sets it before any use)
        self._count = 0  # pragma: no mutate (recovery sets it before any use)
        self._ssize = 0  # pragma: no mutate (recovery sets it before any use)

    def _path(self, name):
        return (self.root if self.root == "/" else self.root + "/") + name

    def _open_append(self, path):
        return open(path, "ab", buffering=0)

    # --- reading --------------------------------------------------------------
    def load(self, restore=None, apply=None):
        """(snapshot bytes or None, [journal payloads in order]); repairs the files on the way.
        With restore and apply: restore(read) (restore(None) without a snapshot), where read(n)
        gives the snapshot's next bytes, at most n, and b"" at its end once its CRC is found
        good; then apply(payload) for each journal record in order, one at a time. A board's
        heap holds neither the whole snapshot nor all records at once."""
        from . import recovery  # boot-time code, in its own module: the agent unloads it once booted

        return recovery.recover(self, apply or True, restore)

    # --- writing --------------------------------------------------------------
    def _ready(self):
        if self._gen is None:  # after a failed write, or before load()
            from . import recovery

            recovery.recover(self, False)  # pragma: no mutate (True would only hold the payloads too: none is returned here)
        if self._jf is None and self.damage is None:  # damaged: not even created or opened
            try:
                self._jf = self._open_append(self._path(JOURNAL))
            except OSError as exc:
                if is_full(exc):
                    raise StoreFull("journal.bin: no space left to open it for appending")
                raise

    def append(self, payload, frees=False):
        """Add one record; it is on flash when this returns. StoreFull: not written, and the
        journal holds no partial record (if it cannot be cut back, the next call retries).
        frees: the record only deletes, so it may be written while the reserve is short."""
        self._ready()
        if self.damage is not None:  # the operator resolves it first (agent.repair)
            raise StoreError(self.damage)
        rec = bytearray(RECORD_HEAD + len(payload))  # one buffer: append writes it in one call
        rec[0:RECORD_HEAD] = record_head(payload)
        rec[RECORD_HEAD:] = payload
        if self.reserve and not frees:
            if self.reserve_short:
                raise StoreFull("room kept for Deletes")
            if self._no_room and self._jsize + len(rec) > self.compact_bytes + RESERVE_SLACK // 2:
                # Compaction found no room: past this the reserve would not cover the next one.
                raise StoreFull("no room to compact")
        try:
            _write_all(self._jf, rec)
            _sync(self._jf)
        except OSError as exc:
            self.close()
            try:  # no partial record may stay: cut the journal back
                if _size(self._path(JOURNAL)) != self._jsize:
                    self._truncate_journal(self._jsize)
            except Exception:  # noqa: BLE001 - cannot cut back now: recover before the next write
                self._gen = None
            if is_full(exc):
                self._pressed = True
                raise StoreFull("journal append: no space left for a %d-byte record" % len(rec))
            raise
        self._jsize += len(rec)
        self._count += 1

    def compact(self, snapshot, spend_reserve=False):
        """Make snapshot (the whole current state) the snapshot and empty the journal.
        snapshot is bytes, or a function dump(write) that hands the payload to write() in
        pieces, the same each call: then a large state never sits whole in memory.
        spend_reserve: out of space, give reserve.bin's room to this compaction and try once
        more (for a state that only deleted since the last one); rebuilt afterwards.
        Its code (agent.compaction) is in the heap only while it runs: MemoryError if it
        finds no room to load, with nothing changed (the journal waits for the next try)."""
        from . import compaction

        try:
            compaction.compact(self, snapshot, spend_reserve)
        finally:
            unload(".compaction")

    def _keep_reserve(self):
        """reserve.bin at its size for this generation; reserve_short if there is no room."""
        if self.reserve:
            want = (self._ssize + self.compact_bytes + RESERVE_SLACK + 1023) // 1024 * 1024
            have = _size(self._path(RESERVE)) or 0
            if want <= have <= want + 4096:
                self.reserve_short = False
                return
            # rare: the first boot, or the tree's size moved
            path = self._path(RESERVE)
            if have > want:
                os.remove(path)
                have = 0
            self.reserve_short = True
            # small: at boot the heap is at its most cut up
            zeros = bytes(64)  # pragma: no mutate (a longer one: only its first 64 bytes are written)
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
            self.reserve_short = False

    def _new_journal(self, gen):
        tmp = self._path(JOURNAL_TMP)
        try:
            self._write_file(tmp, (header(JOURNAL_MAGIC, gen),))
        except OSError:
            _remove_quietly(tmp)
            raise
        self._rename(JOURNAL_TMP, JOURNAL)

    def _write_file(self, path, parts):
        f = open(path, "wb")
        try:
            for part in parts:
                _write_all(f, part)
            _sync(f)
        finally:
            f.close()

    def _truncate_journal(self, n):
        """Cut journal.bin to its first n bytes (agent.recovery does it: a rare path)."""
        from . import recovery

        recovery.truncate_journal(self, n)

    def _rename(self, tmp, final):
        """Rename tmp over final. Every step of compaction and truncation ends in one, and it
        is where a test crashes the store: before the rename or after it."""
        os.rename(self._path(tmp), self._path(final))
        if _fsync is not None:  # a rename is durable once its folder is: only CPython can fsync one
            from .hal.cpython import sync_dir

            sync_dir(self.root)

    # --- housekeeping -----------------------------------------------------------
    def should_compact(self, freed=False):
        """True once the journal has grown past compact_bytes, or when a write that freed
        something follows a lack of space (compaction is what gives the space back)."""
        self._ready()
        return self._jsize > self.compact_bytes or (freed and (self._pressed or self.reserve_short))

    def close(self):
        f = self._jf
        self._jf = None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass
