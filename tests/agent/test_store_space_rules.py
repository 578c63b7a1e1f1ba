"""agent.store's rules about room: when it asks for compaction, what counts as out of space,
what the reserve for Deletes is and when it is spent, and that a short write is finished.
Each was once left untested by tools/mutate.py. Plain asserts: CPython and the device runtime.
"""

import os

from agent.store import HEADER_SIZE, RECORD_HEAD, RESERVE_SLACK, Store, StoreError, StoreFull
from tests.agent.check import raises
from tests.agent.edge_helpers import cleanup, load, tmpdir
from tests.agent.store_stats import stats


def _tmpdir():
    return tmpdir("sroom")


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return None


def _listing(d):
    return sorted(os.listdir(d))


def _boot(d):
    """Open, load and close a store with a reserve for 2 KiB of journal, as a boot does."""
    s = Store(d, compact_bytes=2048, reserve=True)
    s.load()
    s.close()
    return s


class _Trickle:
    """A journal file that takes at most `most` bytes per write call (a raw file may write
    short), or none at all when most is 0; every byte it takes goes to the real file."""

    def __init__(self, f, most):
        self._f = f
        self._most = most

    def write(self, data):
        if not self._most:
            return 0
        return self._f.write(bytes(memoryview(data)[: self._most]))

    def flush(self):
        self._f.flush()

    def fileno(self):
        return self._f.fileno()

    def close(self):
        self._f.close()


class _TrickleStore(Store):
    most = 5

    def _open_append(self, path):
        return _Trickle(Store._open_append(self, path), self.most)


def test_rule_a_short_write_is_continued_until_the_whole_record_is_down():
    d = _tmpdir()
    try:
        s = _TrickleStore(d)
        s.load()
        s.append(b"a record of thirty-odd bytes, written five at a time")
        s.append(b"and one more")
        s.close()
        assert load(d) == (None, [b"a record of thirty-odd bytes, written five at a time", b"and one more"])
    finally:
        cleanup(d)


def test_rule_a_write_that_takes_nothing_is_out_of_space_and_leaves_no_record():
    d = _tmpdir()
    try:
        s = _TrickleStore(d)
        s.load()
        s.append(b"kept")
        s.close()
        s.most = 0
        raises(StoreFull, s.append, b"lost")
        s.most = 5
        s.append(b"after")
        s.close()
        assert load(d) == (None, [b"kept", b"after"])
    finally:
        cleanup(d)


class _FailingJournal:
    def __init__(self, exc):
        self._exc = exc

    def write(self, data):
        raise self._exc

    def flush(self):
        pass

    def fileno(self):
        raise self._exc

    def close(self):
        pass


class _ErrnoStore(Store):
    fail = None  # OSError for the journal's writes
    open_fails = None  # OSError for opening the journal

    def _open_append(self, path):
        if self.open_fails is not None:
            raise self.open_fails
        if self.fail is not None:
            Store._open_append(self, path).close()
            return _FailingJournal(self.fail)
        return Store._open_append(self, path)


def test_rule_file_too_big_and_over_quota_are_out_of_space_like_a_full_disk():
    # EFBIG (a file size limit) and EDQUOT (Linux quota) answer 420, as ENOSPC does
    for err in (27, 122, 28):
        d = _tmpdir()
        try:
            s = _ErrnoStore(d)
            s.load()
            s.fail = OSError(err, "no room")
            raises(StoreFull, s.append, b"x")
            s.close()
            assert load(d) == (None, [])
        finally:
            cleanup(d)
    e = raises(OSError, _append_failing, OSError(13, "permission denied"))
    assert not isinstance(e, StoreFull)


def _append_failing(exc):
    d = _tmpdir()
    try:
        s = _ErrnoStore(d)
        s.load()
        s.fail = exc
        s.append(b"x")
    finally:
        cleanup(d)


def test_rule_no_room_to_open_the_journal_is_store_full_and_other_open_errors_are_not():
    d = _tmpdir()
    try:
        s = _ErrnoStore(d)
        s.load()
        s.close()
        s.open_fails = OSError(28, "No space left on device")
        e = raises(StoreFull, s.append, b"x")
        assert "journal.bin" in str(e)
        s.open_fails = OSError(5, "I/O error")
        e = raises(OSError, s.append, b"x")
        assert not isinstance(e, StoreFull)
        s.open_fails = None
        s.append(b"y")
        s.close()
        assert load(d) == (None, [b"y"])
    finally:
        cleanup(d)


def _journal_of(d, last):
    """A default store whose journal is 15 records of 1023 bytes and one of `last`."""
    s = Store(d)
    s.load()
    for i in range(15):
        s.append(bytes(1023 - RECORD_HEAD))
    s.append(bytes(last - RECORD_HEAD))
    return s


def test_rule_the_default_journal_asks_for_compaction_once_past_16_kib():
    d = _tmpdir()
    try:
        s = _journal_of(d, 1023)  # 16 + 16 * 1023: exactly 16 KiB
        assert stats(s)["journal_bytes"] == 16384 and not s.should_compact()
        s.close()
    finally:
        cleanup(d)
    d = _tmpdir()
    try:
        s = _journal_of(d, 1024)  # one byte past it
        assert stats(s)["journal_bytes"] == 16385 and s.should_compact()
        s.close()
    finally:
        cleanup(d)


def test_rule_should_compact_reads_the_files_first_when_nothing_has_loaded_them():
    d = _tmpdir()
    try:
        s = Store(d, compact_bytes=100)
        s.load()
        s.append(bytes(200))
        s.close()
        assert Store(d, compact_bytes=100).should_compact()  # a fresh Store, no load() yet
    finally:
        cleanup(d)


def test_rule_a_delete_forces_compaction_only_after_space_ran_out():
    d = _tmpdir()
    try:
        s = _ErrnoStore(d)  # no reserve: only a failed append counts as pressure
        assert not s.should_compact(True)  # fresh: never ran out of space
        s.load()
        s.append(b"x")
        assert not s.should_compact(True) and not s.should_compact()
        s.close()
        s.fail = OSError(28, "No space left on device")
        raises(StoreFull, s.append, b"y" * 40)
        s.close()
        s.fail = None
        s.append(b"a delete", frees=True)
        assert not s.should_compact()  # a write that freed nothing: the journal is small
        assert s.should_compact(True)  # a write that freed something: compaction gives it back
        s.compact(b"snap")
        assert not s.should_compact(True)  # the pressure is over
        s.close()
    finally:
        cleanup(d)


def test_rule_a_short_reserve_makes_a_delete_force_compaction():
    d = _tmpdir()
    try:
        s = Store(d, compact_bytes=256, reserve=True)
        s.load()
        assert not s.should_compact(True)
        s.reserve_short = True  # as when reserve.bin cannot be made whole
        assert s.should_compact(True) and not s.should_compact()
        s.close()
    finally:
        cleanup(d)


class _FullDisk(Store):
    """A store whose compactions find no room while `full` is set, unless reserve.bin is gone
    (the room a full disk has is the reserve's); `fail_once` makes only the next one fail.
    Journal appends are not limited."""

    full = False
    fail_once = False
    journal_fails = None  # OSError for writing journal.tmp, after putting part of it down

    def _write_file(self, path, parts):
        if self.journal_fails is not None and path.endswith("journal.tmp"):
            with open(path, "wb") as f:
                f.write(b"dmJ")
            raise self.journal_fails
        if self.fail_once:
            self.fail_once = False
            raise OSError(28, "No space left on device")
        if self.full and _size(self._path("reserve.bin")) is not None:
            raise OSError(28, "No space left on device")
        Store._write_file(self, path, parts)


def test_rule_the_journal_may_grow_to_compact_bytes_plus_half_the_slack_once_compaction_found_no_room():
    d = _tmpdir()
    try:
        s = _FullDisk(d, compact_bytes=256, reserve=True)
        s.load()
        for i in range(40):  # until compaction first fails, growth is not capped
            s.append(b"g" * 100)
        assert stats(s)["journal_bytes"] == HEADER_SIZE + 40 * 108 > 256 + RESERVE_SLACK // 2
        s.compact(b"snap")
        s.full = True
        raises(StoreFull, s.compact, b"snap 2")
        taken = 0
        while True:
            try:
                s.append(b"g" * 100)
            except StoreFull as exc:
                assert "no room to compact" in str(exc)
                break
            taken += 1
        # 16 + 108 * 21 = 2284 <= 256 + 2048 = 2304 < 16 + 108 * 22
        assert taken == 21
        s.append(b"a delete", frees=True)  # a Delete still goes in
        s.full = False
        s.compact(b"snap 3")
        for i in range(30):  # room again: the cap is lifted
            s.append(b"g" * 100)
        s.close()
        assert len(load(d)[1]) == 30
    finally:
        cleanup(d)


def test_rule_the_reserve_is_spent_only_when_the_caller_says_the_state_only_deleted():
    d = _tmpdir()
    r = d + "/reserve.bin"
    try:
        s = _FullDisk(d, compact_bytes=256, reserve=True)
        s.load()
        size = _size(r)
        s.fail_once = True  # the retry would find room: it must not be tried
        raises(StoreFull, s.compact, b"grown")
        assert _size(r) == size and not s.reserve_short
        s.full = True  # room only once reserve.bin is gone
        raises(StoreFull, s.compact, b"grown")
        assert _size(r) == size
        s.compact(b"after a delete", True)
        assert not s.reserve_short and _size(r) == size  # rebuilt afterwards
        s.close()
        assert load(d) == (b"after a delete", [])
    finally:
        cleanup(d)


def test_rule_a_store_without_a_reserve_has_nothing_to_spend():
    d = _tmpdir()
    try:
        s = _FullDisk(d, compact_bytes=256)
        s.load()
        s.fail_once = True
        raises(StoreFull, s.compact, b"snap", True)
        assert "reserve.bin" not in _listing(d)
        s.close()
    finally:
        cleanup(d)


def test_rule_the_reserve_is_rounded_up_to_whole_kib():
    d = _tmpdir()
    r = d + "/reserve.bin"
    try:
        s = Store(d, compact_bytes=2048, reserve=True)
        s.load()
        s.compact(b"x" * (2049 - HEADER_SIZE - RECORD_HEAD))  # snapshot.bin: 2 KiB + 1 byte
        assert _size(r) == 9216  # 2049 + 2048 + 4096 bytes, rounded up: 9 KiB
        s.close()
    finally:
        cleanup(d)


def test_rule_a_reserve_up_to_4_kib_too_big_is_kept_and_more_is_rewritten():
    d = _tmpdir()
    r = d + "/reserve.bin"
    try:
        _boot(d)
        assert _size(r) == 6144
        with open(r, "ab") as f:
            f.write(bytes(4096))
        _boot(d)
        assert _size(r) == 6144 + 4096  # kept: within 4 KiB
        with open(r, "ab") as f:
            f.write(b"\0")
        assert not _boot(d).reserve_short
        assert _size(r) == 6144
    finally:
        cleanup(d)


def test_rule_a_reserve_cut_short_is_completed_to_its_exact_size():
    d = _tmpdir()
    r = d + "/reserve.bin"
    try:
        os.mkdir(d[: d.rindex("/")])
        os.mkdir(d)
        with open(r, "wb") as f:
            f.write(bytes(1000))  # what a full disk let an earlier boot write
        assert not _boot(d).reserve_short
        assert _size(r) == 6144
    finally:
        cleanup(d)


def test_rule_no_room_for_a_fresh_journal_is_store_full_and_the_new_snapshot_stands():
    d = _tmpdir()
    try:
        s = _FullDisk(d)
        s.load()
        s.append(b"r1")
        s.journal_fails = OSError(28, "No space left on device")
        e = raises(StoreFull, s.compact, b"snap")
        assert "fresh journal" in str(e)
        assert "journal.tmp" not in _listing(d)  # the part written is removed
        s.journal_fails = None
        s.append(b"r2")  # recovery makes the journal first
        s.close()
        assert load(d) == (b"snap", [b"r2"])
    finally:
        cleanup(d)


def test_rule_a_fresh_journal_failing_otherwise_is_not_store_full():
    d = _tmpdir()
    try:
        s = _FullDisk(d)
        s.load()
        s.journal_fails = OSError(5, "I/O error")
        e = raises(OSError, s.compact, b"snap")
        assert not isinstance(e, StoreFull) and not isinstance(e, StoreError)
        assert "journal.tmp" not in _listing(d)
        s.journal_fails = None
        s.close()
        assert load(d) == (b"snap", [])
    finally:
        cleanup(d)


def test_rule_the_store_folder_is_the_agents_alone():
    if not hasattr(os, "chmod"):
        return  # MicroPython: no file modes
    d = _tmpdir()
    try:
        os.mkdir(d[: d.rindex("/")])
        os.mkdir(d)
        os.chmod(d, 0o755)
        Store(d).close()
        assert os.stat(d)[0] & 0o777 == 0o700
    finally:
        cleanup(d)
