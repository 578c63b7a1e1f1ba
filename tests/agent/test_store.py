"""agent.store: round trips, torn and corrupt tails, crash at every compaction step, full storage.

Each test works in its own folder under /tmp and removes it. A "crash" is an exception
raised from Store._rename before or after the rename that ends a step: everything before it was flushed, nothing after
it ran, which is what power loss at that point leaves.
"""

import binascii
import os
import struct

from agent.store import Store, StoreError, StoreFull
from tests.agent.check import raises, tohex
from tests.agent.store_stats import stats

STEPS = ("snapshot.tmp written", "snapshot renamed", "journal.tmp written", "journal renamed")
_serial = [0]


def _tmpdir():
    _serial[0] += 1
    return "/tmp/dmagent-store-%s-%d/store" % (tohex(os.urandom(4)), _serial[0])


def _rmtree(path):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        sub = path + "/" + name
        try:
            os.remove(sub)
        except OSError:
            _rmtree(sub)
    os.rmdir(path)


def _cleanup(d):
    _rmtree(d[: d.rindex("/")])


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def _load(d):
    s = Store(d)
    try:
        return s.load()
    finally:
        s.close()


def _append(d, *payloads):
    s = Store(d)
    try:
        s.load()
        for p in payloads:
            s.append(p)
    finally:
        s.close()


def _names(d):
    return sorted(os.listdir(d))


class Crash(Exception):
    pass


class CrashingStore(Store):
    """Crashes at crash_at, one of STEPS: "X.tmp written" just before X.tmp is renamed in,
    "X renamed" just after (every step of compaction and truncation ends in a rename)."""

    crash_at = None

    def _rename(self, tmp, final):
        if self.crash_at == tmp + " written":
            raise Crash(self.crash_at)
        Store._rename(self, tmp, final)
        if self.crash_at == final.replace(".bin", " renamed"):
            raise Crash(self.crash_at)


class CopyTruncStore(Store):
    _truncate_in_place = False  # the path MicroPython takes, tried on CPython too


class _FullAfterHalf:
    """A journal file on which the next write puts half its bytes down, then runs out of space."""

    def __init__(self, f):
        self._f = f

    def write(self, data):
        self._f.write(bytes(memoryview(data)[: len(data) // 2]))
        self._f.flush()
        raise OSError(28, "No space left on device")

    def flush(self):
        self._f.flush()

    def fileno(self):
        return self._f.fileno()

    def close(self):
        self._f.close()


class FullStore(Store):
    full = False
    truncate_fails = 0

    def _open_append(self, path):
        f = Store._open_append(self, path)
        return _FullAfterHalf(f) if self.full else f

    def _truncate_journal(self, n):
        if self.truncate_fails:
            self.truncate_fails -= 1
            raise OSError(28, "No space left on device")
        Store._truncate_journal(self, n)


def test_fresh_store_is_empty_and_makes_its_folder():
    d = _tmpdir()
    try:
        assert _load(d) == (None, [])
        assert _names(d) == ["journal.bin"]
    finally:
        _cleanup(d)


def test_append_load_round_trip():
    d = _tmpdir()
    payloads = [b"one", b"", bytes(range(256)), b"\x00" * 100, b"last"]
    try:
        _append(d, *payloads)
        assert _load(d) == (None, payloads)
        _append(d, b"more")
        assert _load(d) == (None, payloads + [b"more"])
    finally:
        _cleanup(d)


def test_on_disk_format_is_exact():
    d = _tmpdir()
    try:
        _append(d, b"abc")
        head = b"dmJL\x01\x00\x00\x00" + struct.pack("<I", 0)
        head += struct.pack("<I", binascii.crc32(head))
        rec = struct.pack("<I", 3)
        rec += struct.pack("<I", binascii.crc32(rec + b"abc")) + b"abc"
        assert tohex(_read(d + "/journal.bin")) == tohex(head + rec)
        s = Store(d)
        s.load()
        s.compact(b"SNAP")
        s.close()
        head = b"dmSN\x01\x00\x00\x00" + struct.pack("<I", 1)
        head += struct.pack("<I", binascii.crc32(head))
        rec = struct.pack("<I", 4)
        rec += struct.pack("<I", binascii.crc32(rec + b"SNAP")) + b"SNAP"
        assert tohex(_read(d + "/snapshot.bin")) == tohex(head + rec)
        assert _read(d + "/journal.bin")[:12] == b"dmJL\x01\x00\x00\x00\x01\x00\x00\x00"
    finally:
        _cleanup(d)


def test_append_before_load_recovers_first():
    d = _tmpdir()
    try:
        s = Store(d)
        s.append(b"x")
        s.close()
        s = Store(d)
        s.append(b"y")
        s.close()
        assert _load(d) == (None, [b"x", b"y"])
    finally:
        _cleanup(d)


def _torn_tail_at_every_offset(store_class):
    d = _tmpdir()
    j = d + "/journal.bin"
    try:
        _append(d, b"first", b"second")
        good = _read(j)
        _append(d, b"third, the one torn")
        full = _read(j)
        for cut in range(len(good) + 1, len(full)):
            _write(j, full[:cut])
            s = store_class(d)
            assert s.load() == (None, [b"first", b"second"]), cut
            s.close()
            assert _read(j) == good, cut  # cut back, so appends follow good data
            assert _names(d) == ["journal.bin"]
            _append(d, b"after")
            assert _load(d) == (None, [b"first", b"second", b"after"]), cut
    finally:
        _cleanup(d)


def test_torn_tail_at_every_offset_discarded():
    _torn_tail_at_every_offset(Store)


def test_torn_tail_discarded_by_copy_truncation():
    _torn_tail_at_every_offset(CopyTruncStore)


def test_crash_while_cutting_a_torn_tail_by_copy():
    class CrashingCopyStore(CrashingStore):
        _truncate_in_place = False

    d = _tmpdir()
    j = d + "/journal.bin"
    try:
        _append(d, b"first", b"second")
        torn = _read(j)[:-3]
        _write(j, torn)
        s = CrashingCopyStore(d)
        s.crash_at = "journal.tmp written"  # the good records copied, not renamed in
        raises(Crash, s.load)
        s.close()
        assert _read(j) == torn  # untouched: the copy sits in journal.tmp
        assert _load(d) == (None, [b"first"])
        assert _names(d) == ["journal.bin"]
    finally:
        _cleanup(d)


def test_corrupt_record_in_the_middle_is_damage_kept_until_set_aside():
    # Rule: a bad record with good ones after it is damage, not a torn tail: the load stops
    # there, says so (store.damage), cuts nothing, refuses writes; set_aside() keeps the file.
    from agent import repair

    d = _tmpdir()
    j = d + "/journal.bin"
    try:
        _append(d, b"A" * 10)
        at = len(_read(j)) + 8 + 3  # a payload byte of the second record
        _append(d, b"B" * 10, b"C" * 10)
        data = bytearray(_read(j))
        data[at] ^= 0x40
        _write(j, data)
        s = Store(d)
        assert s.load() == (None, [b"A" * 10])
        assert "record 2" in s.damage and "1 good records follow" in s.damage, s.damage
        assert list(repair.records_after_damage(s)) == [b"C" * 10]
        raises(StoreError, s.append, b"D")
        raises(StoreError, s.compact, b"snap")
        s.close()
        assert _read(j) == data  # nothing cut, nothing created
        s = Store(d)
        s.load()
        assert repair.set_aside(s, b"A state") == "journal.damaged"
        s.append(b"D")
        s.close()
        assert _read(d + "/journal.damaged") == data
        s = Store(d)
        assert s.load() == (b"A state", [b"D"]) and s.damage is None
        s.close()
    finally:
        _cleanup(d)


def test_missing_journal_beside_a_snapshot_is_damage():
    from agent import repair

    d = _tmpdir()
    try:
        s = Store(d)
        s.load()
        s.compact(b"snap")
        s.append(b"r1")
        s.close()
        os.remove(d + "/journal.bin")
        s = Store(d)
        assert s.load() == (b"snap", [])
        assert "missing" in s.damage, s.damage
        raises(StoreError, s.append, b"x")
        assert _names(d) == ["snapshot.bin"]  # no fresh journal hides it at the next boot
        s.close()
        s = Store(d)
        s.load()
        assert repair.set_aside(s, b"snap") is None
        s.close()
        s = Store(d)
        assert s.load() == (b"snap", []) and s.damage is None
        s.close()
    finally:
        _cleanup(d)


def _damage_cases(offsets, size):
    """(name, record index, how): a byte flipped in each record's length, CRC and payload,
    the file cut at each record's start and middle, and the journal removed."""
    cases = []
    for i, at in enumerate(offsets):
        end = offsets[i + 1] if i + 1 < len(offsets) else size
        cases.append(("flip length", i, ("flip", at + 1)))
        cases.append(("flip crc", i, ("flip", at + 5)))
        cases.append(("flip payload", i, ("flip", at + 8 + (end - at - 8) // 2)))
        cases.append(("cut start", i, ("cut", at)))
        cases.append(("cut middle", i, ("cut", at + (end - at) // 2)))
    cases.append(("remove", 0, ("remove", 0)))
    return cases


def test_damage_matrix_never_loses_acknowledged_records_silently():
    # Rule: damage to acknowledged records is either reported (store.damage) or of the one
    # kind a torn append also leaves, which nothing can tell apart: the end of the file cut
    # off, or its last record spoiled. Counted per case, a snapshot and 6 records.
    payloads = [b"rec%d-" % i + b"x" * (5 + 7 * i) for i in range(6)]
    d = _tmpdir()
    j = d + "/journal.bin"
    reported = torn = 0
    try:
        s = Store(d)
        s.load()
        s.compact(b"the snapshot")
        offsets = []
        for p in payloads:
            offsets.append(stats(s)["journal_bytes"])
            s.append(p)
        s.close()
        good = _read(j)
        for name, i, (how, at) in _damage_cases(offsets, len(good)):
            if how == "remove":
                os.remove(j)
            elif how == "cut":
                _write(j, good[:at])
            else:
                data = bytearray(good)
                data[at] ^= 0x10
                _write(j, data)
            s = Store(d)
            snap, recs = s.load()
            damage = s.damage
            s.close()
            last = i == len(payloads) - 1
            assert snap == b"the snapshot", name
            if damage is not None:
                reported += 1
                assert recs == payloads[: len(recs)], (name, i)
            elif recs != payloads:
                # what a torn append leaves: a cut, or a spoiled last record
                assert how == "cut" or last, (name, i, recs)
                assert recs == payloads[:i], (name, i)
                torn += 1
            _write(j, good)
        assert reported == 6 * 3 - 3 + 1 and torn == 6 * 2 + 3, (reported, torn)
    finally:
        _cleanup(d)


def test_zero_filled_tail_is_not_read_as_records():
    d = _tmpdir()
    j = d + "/journal.bin"
    try:
        _append(d, b"kept")
        good = _read(j)
        _write(j, good + bytes(64))
        assert _load(d) == (None, [b"kept"])
        assert _read(j) == good
    finally:
        _cleanup(d)


def test_huge_length_in_tail_is_not_allocated():
    d = _tmpdir()
    j = d + "/journal.bin"
    try:
        _append(d, b"kept")
        good = _read(j)
        _write(j, good + struct.pack("<II", 0xFFFFFFF0, 0) + b"xyz")
        assert _load(d) == (None, [b"kept"])
    finally:
        _cleanup(d)


def test_compact_then_load():
    d = _tmpdir()
    try:
        s = Store(d)
        s.load()
        s.append(b"r1")
        s.append(b"r2")
        s.compact(b"state after r1 r2")
        s.append(b"r3")
        s.close()
        assert _load(d) == (b"state after r1 r2", [b"r3"])
        s = Store(d)
        s.load()
        s.compact(b"state after r3")
        s.close()
        assert _load(d) == (b"state after r3", [])
        assert _names(d) == ["journal.bin", "snapshot.bin"]
    finally:
        _cleanup(d)


class _NoRoomForCompactionCode:
    """Stands for agent.compaction when loading it finds no room in the heap."""

    def compact(self, store, snapshot, spend_reserve):
        raise MemoryError("no room to load agent.compaction")


def test_rule_compaction_code_is_loaded_for_each_run_and_a_failed_load_changes_nothing():
    # agent.compaction is in the heap only while a compaction runs. When it cannot be
    # loaded, nothing is written: the journal just grows, and the next try compacts.
    import sys

    import agent

    d = _tmpdir()
    try:
        s = Store(d)
        s.load()
        s.append(b"r1")
        s.compact(b"state after r1")
        assert "agent.compaction" not in sys.modules
        s.append(b"r2")
        files = [(name, _read(d + "/" + name)) for name in _names(d)]
        sys.modules["agent.compaction"] = agent.compaction = _NoRoomForCompactionCode()
        raises(MemoryError, s.compact, b"state after r2")
        assert "agent.compaction" not in sys.modules  # the stand-in is dropped as the module is
        assert [(name, _read(d + "/" + name)) for name in _names(d)] == files
        s.append(b"r3")
        assert _load(d) == (b"state after r1", [b"r2", b"r3"])
        s.compact(b"state after r3")
        s.close()
        assert _load(d) == (b"state after r3", [])
    finally:
        _cleanup(d)


def test_stats_and_should_compact():
    d = _tmpdir()
    try:
        s = Store(d, compact_bytes=100)
        s.load()
        want = {"journal_bytes": 16, "journal_records": 0, "snapshot_bytes": 0, "generation": 0}
        assert stats(s) == want
        s.append(bytes(50))
        assert stats(s)["journal_bytes"] == 16 + 58 and not s.should_compact()
        s.append(bytes(50))
        assert stats(s)["journal_records"] == 2 and s.should_compact()
        s.compact(b"snap")
        want = {"journal_bytes": 16, "journal_records": 0, "snapshot_bytes": 28, "generation": 1}
        assert stats(s) == want  # snapshot: header 16 + record head 8 + 4
        assert not s.should_compact()
        s.close()
        s = Store(d)
        assert stats(s)["generation"] == 1
        s.close()
    finally:
        _cleanup(d)


def _crash_compaction(start_with_snapshot, step):
    """Store with two journal records (after a snapshot or not); compaction crashes at step.
    Returns (folder, state before, state after)."""
    d = _tmpdir()
    s = Store(d)
    s.load()
    snap = None
    if start_with_snapshot:
        s.append(b"r0")
        snap = b"S1"
        s.compact(snap)
    s.append(b"r1")
    s.append(b"r2")
    s.close()
    c = CrashingStore(d)
    c.crash_at = step
    c.load()
    raises(Crash, c.compact, b"S-new")
    c.close()
    return d, (snap, [b"r1", b"r2"]), (b"S-new", [])


def test_crash_at_each_compaction_step_leaves_before_or_after():
    for start_with_snapshot in (False, True):
        for step in STEPS:
            d, before, after = _crash_compaction(start_with_snapshot, step)
            try:
                want = before if step == "snapshot.tmp written" else after
                assert _load(d) == want, step
                assert _names(d) == ["journal.bin", "snapshot.bin"] if want[0] else ["journal.bin"]
                # it goes on from there: a new record lands after the right snapshot
                _append(d, b"next")
                assert _load(d) == (want[0], want[1] + [b"next"]), step
            finally:
                _cleanup(d)


def test_torn_snapshot_tmp_is_ignored():
    d, before, after = _crash_compaction(True, "snapshot.tmp written")
    try:
        full = _read(d + "/snapshot.tmp")
        for cut in (0, 5, 16, 20, 24, len(full) - 1):
            _write(d + "/snapshot.tmp", full[:cut])
            assert _load(d) == before, cut
            assert _names(d) == ["journal.bin", "snapshot.bin"]
    finally:
        _cleanup(d)


def test_fat_style_rename_window_snapshot_adopts_complete_tmp():
    # FAT's rename onto an existing file removes it first: a crash between leaves no snapshot.bin.
    d, before, after = _crash_compaction(True, "snapshot.tmp written")
    try:
        os.remove(d + "/snapshot.bin")
        assert _load(d) == after
        assert _names(d) == ["journal.bin", "snapshot.bin"]
    finally:
        _cleanup(d)


def test_fat_style_rename_window_journal_adopts_tmp():
    d, before, after = _crash_compaction(True, "journal.tmp written")
    try:
        os.remove(d + "/journal.bin")
        assert _load(d) == after
        _append(d, b"x")
        assert _load(d) == (after[0], [b"x"])
    finally:
        _cleanup(d)


def test_leftover_snapshot_tmp_never_hides_later_records():
    # Compaction failed (not a crash) after writing snapshot.tmp; the store went on appending.
    for start_with_snapshot in (False, True):
        d = _tmpdir()
        try:
            s = CrashingStore(d)
            s.load()
            if start_with_snapshot:
                s.compact(b"S1")
            s.append(b"r1")
            s.crash_at = "snapshot.tmp written"
            raises(Crash, s.compact, b"S-failed")
            s.append(b"r2")
            s.close()
            assert _load(d) == (b"S1" if start_with_snapshot else None, [b"r1", b"r2"])
        finally:
            _cleanup(d)


def test_failed_compaction_after_rename_then_append_is_kept():
    # The exception leaves the old journal stale: the next append must not go into it.
    for step in STEPS[1:]:
        d = _tmpdir()
        try:
            s = CrashingStore(d)
            s.load()
            s.append(b"r1")
            s.crash_at = step
            raises(Crash, s.compact, b"S")
            s.crash_at = None
            s.append(b"r2")
            s.close()
            assert _load(d) == (b"S", [b"r2"]), step
        finally:
            _cleanup(d)


def test_wrong_or_damaged_header_raises():
    d = _tmpdir()
    j = d + "/journal.bin"
    try:
        _append(d, b"x")
        good = _read(j)
        for bad, why in (
            (b"NOPE" + good[4:], "magic"),
            (good[:4] + b"\x02" + good[5:], "version"),
            (good[:9] + b"\x01" + good[10:], "header CRC"),
            (good[:10], "too short"),
        ):
            _write(j, bad)
            exc = raises(StoreError, _load, d)
            assert "journal.bin" in str(exc), why
        _write(j, b"dmSN" + good[4:])  # a snapshot where the journal should be
        raises(StoreError, _load, d)
    finally:
        _cleanup(d)


def test_corrupt_snapshot_raises():
    d = _tmpdir()
    p = d + "/snapshot.bin"
    try:
        s = Store(d)
        s.load()
        s.compact(b"the whole tree")
        s.close()
        good = _read(p)
        damaged = bytearray(good)
        damaged[-3] ^= 0x01
        for bad in (bytes(damaged), good[:-1], good + b"\x00", b"dmJL" + good[4:]):
            _write(p, bad)
            exc = raises(StoreError, _load, d)
            assert "snapshot.bin" in str(exc)
        _write(p, good)
        assert _load(d) == (b"the whole tree", [])
    finally:
        _cleanup(d)


def test_journal_newer_than_snapshot_raises():
    d = _tmpdir()
    try:
        s = Store(d)
        s.load()
        s.compact(b"S1")
        s.compact(b"S2")
        s.close()
        os.remove(d + "/snapshot.bin")
        raises(StoreError, _load, d)
    finally:
        _cleanup(d)


def _store_full(store_class):
    d = _tmpdir()
    j = d + "/journal.bin"
    try:
        s = store_class(d)
        s.load()
        s.append(b"one")
        size = len(_read(j))
        s.full = True
        s.close()  # the next append reopens the journal, now short of space
        raises(StoreFull, s.append, b"x" * 40)
        assert len(_read(j)) == size
        s.full = False
        s.append(b"two")
        s.close()
        assert _load(d) == (None, [b"one", b"two"])
    finally:
        _cleanup(d)


def test_store_full_leaves_no_partial_record():
    _store_full(FullStore)


def test_store_full_with_copy_truncation():
    class CopyFullStore(FullStore):
        _truncate_in_place = False

    _store_full(CopyFullStore)


def test_store_full_and_cut_back_fails_next_append_repairs():
    d = _tmpdir()
    try:
        s = FullStore(d)
        s.load()
        s.append(b"one")
        s.full = True
        s.truncate_fails = 1
        s.close()
        raises(StoreFull, s.append, b"x" * 40)
        s.full = False
        s.append(b"two")  # recovers first: cuts off the half record, then appends
        s.close()
        assert _load(d) == (None, [b"one", b"two"])
    finally:
        _cleanup(d)


class _RamBlockDevice:
    # One bytearray per block: littlefs never reads or writes across a block edge, and small
    # pieces fit a fragmented heap where one large buffer may not.
    def __init__(self, block_size, blocks):
        self.block_size = block_size
        self.blocks = [bytearray(block_size) for _ in range(blocks)]

    def readblocks(self, n, buf, offset=0):
        buf[:] = memoryview(self.blocks[n])[offset : offset + len(buf)]

    def writeblocks(self, n, buf, offset=0):
        self.blocks[n][offset : offset + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:
            return len(self.blocks)
        if op == 5:
            return self.block_size
        if op == 6:
            return 0
        return None


def test_store_full_on_littlefs():
    if not hasattr(os, "VfsLfs2"):
        return  # only the MicroPython runtime brings littlefs to try this on
    mount = "/dmlfs" + tohex(os.urandom(3))
    bdev = _RamBlockDevice(256, 24)  # 6 KiB: littlefs runs out after a few dozen records
    os.VfsLfs2.mkfs(bdev)
    os.mount(os.VfsLfs2(bdev), mount)
    try:
        d = mount + "/store"
        s = Store(d)
        s.load()
        acked = []
        try:
            for i in range(1000):
                p = ("%d:" % i).encode() + b"x" * 60
                s.append(p)
                acked.append(p)
        except StoreFull:
            pass
        assert 10 < len(acked) < 1000
        s.close()
        assert _load(d) == (None, acked)
        s = Store(d)
        s.load()
        try:
            s.compact(b"small snapshot")
            want = (b"small snapshot", [])
        except StoreFull:
            want = (None, acked)
        s.close()
        assert _load(d) == want
        _append(d, b"after")
        assert _load(d) == (want[0], want[1] + [b"after"])
    finally:
        os.umount(mount)


def test_streamed_snapshot_equals_one_written_whole():
    # compact(dump) writes what compact(bytes) writes, in pieces, without the whole in memory
    payload = bytes(range(256)) * 3
    d1, d2 = _tmpdir(), _tmpdir()

    def dump(write):
        for i in range(0, len(payload), 100):
            write(memoryview(payload)[i : i + 100])

    try:
        s1, s2 = Store(d1), Store(d2)
        s1.load()
        s2.load()
        s1.compact(payload)
        s2.compact(dump)
        s1.close()
        s2.close()
        with open(d1 + "/snapshot.bin", "rb") as f1, open(d2 + "/snapshot.bin", "rb") as f2:
            assert f1.read() == f2.read()
        assert _load(d2) == (payload, [])
    finally:
        _cleanup(d1)
        _cleanup(d2)


def test_load_hands_snapshot_then_records_one_at_a_time():
    d = _tmpdir()
    try:
        s = Store(d)
        s.load()
        s.compact(b"snap")
        s.append(b"r1")
        s.append(b"r2")
        s.close()
        seen = []

        def restore(read):  # the snapshot streamed: read(n) at a time, b"" at its end
            got = b""
            piece = read(3)
            while piece:
                got += piece
                piece = read(3)
            seen.append(("snapshot", got))

        s = Store(d)
        assert s.load(restore, lambda rec: seen.append(rec)) == (None, [])
        s.close()
        assert seen == [("snapshot", b"snap"), b"r1", b"r2"]
    finally:
        _cleanup(d)


def test_full_littlefs_store_takes_a_delete_through_its_reserve():
    # Rule: a full device still takes a write that only deletes, and compacting it gives
    # the room back. Real littlefs (MicroPython only), a 16 KiB RAM block device.
    if not hasattr(os, "VfsLfs2"):
        return
    mount = "/dmlfs" + tohex(os.urandom(3))
    bdev = _RamBlockDevice(256, 64)
    os.VfsLfs2.mkfs(bdev)
    os.mount(os.VfsLfs2(bdev), mount)
    try:
        d = mount + "/store"
        s = Store(d, compact_bytes=1024, reserve=True)
        s.load()
        s.compact(b"s" * 1000)
        grown = 0
        try:
            for i in range(1000):
                s.append(b"x" * 60)
                grown += 1
                if s.should_compact():
                    s.compact(b"s" * (1000 + 60 * grown))
        except StoreFull:
            pass
        assert 5 < grown < 1000
        s.append(b"del", frees=True)
        assert s.should_compact(True)
        s.compact(b"after delete", spend_reserve=True)
        assert not s.reserve_short
        s.append(b"grows again")
        s.close()
        assert _load(d) == (b"after delete", [b"grows again"])
    finally:
        os.umount(mount)


class _NoRoomToCompact(Store):
    """A store whose compactions run out of space while `full` is set (journal appends not)."""

    full = False

    def _write_file(self, path, parts):
        if self.full:
            raise OSError(28, "No space left on device")
        Store._write_file(self, path, parts)


def _streamed(n):
    """A snapshot of n bytes of x as a dump(write) function, handed over 500 bytes at a time."""
    piece = b"x" * 500

    def dump(write):
        for _ in range(n // 500):
            write(piece)

    return dump


def test_reserve_is_kept_at_the_size_of_the_next_compaction():
    # Rule: reserve.bin holds room for a snapshot of the largest state this generation can
    # reach (snapshot + compact_bytes + RESERVE_SLACK, in KiB), regrown when that moves.
    d = _tmpdir()
    r = d + "/reserve.bin"
    try:
        s = Store(d, compact_bytes=2048, reserve=True)
        s.load()
        assert os.stat(r)[6] == 6144 and not s.reserve_short  # 0 + 2048 + 4096
        s.compact(b"x" * 5000)  # snapshot.bin: 16 + 8 + 5000 bytes
        assert os.stat(r)[6] == 11264
        s.compact(_streamed(20000))  # as the agent writes one: never 20 KB in one block
        assert os.stat(r)[6] == 26624
        s.compact(b"x" * 3000)  # 4 KiB too big or less is kept; this is far more
        assert os.stat(r)[6] == 9216
        s.compact(b"x" * 100)
        assert os.stat(r)[6] == 9216  # within 4 KiB of the 7 KiB wanted: not rewritten
        s.close()
    finally:
        _cleanup(d)


def test_without_room_to_compact_only_deletes_are_written_and_the_reserve_pays_for_one():
    d = _tmpdir()
    try:
        s = _NoRoomToCompact(d, compact_bytes=256, reserve=True)
        s.load()
        s.full = True
        raises(StoreFull, s.compact, b"snap")
        for i in range(100):  # the journal may grow to compact_bytes + RESERVE_SLACK / 2
            try:
                s.append(b"g" * 100)
            except StoreFull as exc:
                assert "no room to compact" in str(exc)
                break
        assert 0 < i < 100
        s.append(b"a delete", frees=True)  # still written
        assert s.should_compact(True)
        raises(StoreFull, s.compact, b"snap", True)  # even the reserve's room is not enough here
        assert _exists_file(d + "/reserve.bin")  # taken back for next time
        s.full = False
        s.compact(b"snap", True)
        s.append(b"g")  # growth again
        s.reserve_short = True  # as when reserve.bin cannot be made whole
        raises(StoreFull, s.append, b"g")
        s.append(b"del", frees=True)
        s.close()
        assert _load(d) == (b"snap", [b"g", b"del"])
    finally:
        _cleanup(d)


def _exists_file(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False
