"""agent.store at the edges of its claims: a record is flushed before append() returns, every
out-of-space error is StoreFull, a rename is followed by a folder sync, the stats recovery
rebuilds, and which leftover file wins at boot. Plain asserts: CPython and the device runtime.
"""

import os

from agent.store import HEADER_SIZE, RECORD_HEAD, Store, StoreError, StoreFull, header, record_head
from tests.agent.check import raises
from tests.agent.edge_helpers import cleanup as _cleanup
from tests.agent.edge_helpers import tmpdir
from tests.agent.edge_helpers import load as _load
from tests.agent.edge_helpers import read as _read
from tests.agent.edge_helpers import write as _write
from tests.agent.store_stats import stats


def record(payload):
    """The on-disk bytes of one record: its head, then the payload."""
    return bytes(record_head(payload)) + payload


def _tmpdir():
    return tmpdir("sedge")



class _Recorder:
    """A journal file that logs what is done to it, so a test sees the order."""

    def __init__(self, f, log, fail=None):
        self._f = f
        self._log = log
        self._fail = fail

    def write(self, data):
        if self._fail is not None:
            raise self._fail
        self._log.append("write")
        return self._f.write(data)

    def flush(self):
        self._log.append("flush")
        self._f.flush()

    def fileno(self):
        self._log.append("fsync")
        return self._f.fileno()

    def close(self):
        self._f.close()


class _RecordingStore(Store):
    fail = None

    def __init__(self, root):
        self.log = []
        Store.__init__(self, root)

    def _open_append(self, path):
        return _Recorder(Store._open_append(self, path), self.log, self.fail)

    def _rename(self, tmp, final):
        self.log.append(tmp + " written")
        Store._rename(self, tmp, final)
        self.log.append(final.replace(".bin", " renamed"))


def test_rule_record_is_flushed_and_synced_before_append_returns():
    d = _tmpdir()
    try:
        s = _RecordingStore(d)
        s.load()
        for payload in (b"one", b"two"):
            del s.log[:]
            s.append(payload)
            # the last thing append did to the file was to push it down; nothing after
            assert "write" in s.log and "write" not in s.log[s.log.index("flush"):], s.log
            if hasattr(os, "fsync"):
                assert s.log[-1] == "fsync", s.log
            else:
                assert s.log[-1] == "flush", s.log
        s.close()
        assert _load(d) == (None, [b"one", b"two"])
    finally:
        _cleanup(d)


class _NoSpace(OSError):
    errno = 28  # an errno, and args that are only text: the errno is what counts


def test_rule_every_out_of_space_error_is_store_full_and_writes_nothing():
    for exc in (OSError(28), OSError(28, "No space left on device"), _NoSpace("disk full")):
        d = _tmpdir()
        try:
            s = _RecordingStore(d)
            s.load()
            s.append(b"kept")
            s.close()
            size = len(_read(d + "/journal.bin"))
            s.fail = exc
            raises(StoreFull, s.append, b"lost")
            assert len(_read(d + "/journal.bin")) == size
            s.close()
            assert _load(d) == (None, [b"kept"])
        finally:
            _cleanup(d)


def test_rule_other_write_errors_are_not_store_full():
    d = _tmpdir()
    try:
        s = _RecordingStore(d)
        s.load()
        s.fail = OSError(5, "I/O error")
        e = raises(OSError, s.append, b"x")
        assert not isinstance(e, StoreFull)
        s.close()
        assert _load(d) == (None, [])
    finally:
        _cleanup(d)


def test_rule_each_compaction_rename_is_followed_by_a_folder_sync():
    d = _tmpdir()
    try:
        s = _RecordingStore(d)
        s.load()
        s.append(b"r")
        del s.log[:]
        synced = hasattr(os, "fsync")  # MicroPython cannot sync a folder: flush is all it has
        if synced:
            from agent.hal import cpython

            sync_dir = cpython.sync_dir
            cpython.sync_dir = lambda path: (s.log.append("sync folder"), sync_dir(path))
        try:
            s.compact(b"S")
        finally:
            if synced:
                cpython.sync_dir = sync_dir
        steps = [e for e in s.log if e not in ("write", "flush", "fsync")]
        sync = ["sync folder"] if synced else []
        assert steps == ["snapshot.tmp written"] + sync + ["snapshot renamed",
                         "journal.tmp written"] + sync + ["journal renamed"], steps
        s.close()
    finally:
        _cleanup(d)


def test_rule_failed_streamed_compaction_leaves_the_old_state_and_no_tmp():
    d = _tmpdir()
    try:
        s = Store(d)
        s.load()
        s.compact(b"S1")
        s.append(b"r1")
        calls = [0]

        def broken(write):
            calls[0] += 1
            write(b"abc")
            if calls[0] == 2:
                raise ValueError("dump failed half way")

        raises(ValueError, s.compact, broken)
        assert sorted(os.listdir(d)) == ["journal.bin", "snapshot.bin"]

        def growing(write):
            calls[0] += 1
            write(b"x" * calls[0])

        raises(StoreError, s.compact, growing)  # a snapshot that changes under the write
        assert sorted(os.listdir(d)) == ["journal.bin", "snapshot.bin"]
        s.append(b"r2")
        s.close()
        assert _load(d) == (b"S1", [b"r1", b"r2"])
    finally:
        _cleanup(d)


def test_rule_stats_are_exact_and_rebuilt_by_recovery():
    d = _tmpdir()
    try:
        s = Store(d, compact_bytes=HEADER_SIZE + RECORD_HEAD + 4)
        assert stats(s) == {"journal_bytes": HEADER_SIZE, "journal_records": 0, "snapshot_bytes": 0,
                             "generation": 0}
        s.append(b"abcd")
        want = {"journal_bytes": HEADER_SIZE + RECORD_HEAD + 4, "journal_records": 1, "snapshot_bytes": 0,
                "generation": 0}
        assert stats(s) == want
        assert not s.should_compact()  # at the bound, not past it
        s.append(b"e")
        assert s.should_compact()
        s.close()
        s = Store(d)
        assert stats(s)["journal_records"] == 2
        s.compact(b"snap")
        want = {"journal_bytes": HEADER_SIZE, "journal_records": 0,
                "snapshot_bytes": HEADER_SIZE + RECORD_HEAD + 4, "generation": 1}
        assert stats(s) == want
        s.close()
        s = Store(d)
        s.load()
        assert stats(s) == want
        s.close()
    finally:
        _cleanup(d)


def test_rule_record_that_fills_the_file_exactly_is_kept_one_byte_short_is_cut():
    d = _tmpdir()
    j = d + "/journal.bin"
    try:
        s = Store(d)
        s.load()
        s.append(b"first")
        s.append(b"last")
        s.close()
        good = _read(j)
        assert _load(d) == (None, [b"first", b"last"])
        _write(j, good[:-1])
        assert _load(d) == (None, [b"first"])
        assert len(_read(j)) == HEADER_SIZE + RECORD_HEAD + 5  # cut back to the last good record
        # a length field one past the end is torn, not read short
        rec = bytearray(record(b"last"))
        rec[0] += 1
        _write(j, good[: HEADER_SIZE + RECORD_HEAD + 5] + rec)
        assert _load(d) == (None, [b"first"])
    finally:
        _cleanup(d)


def test_rule_a_journal_of_an_older_generation_is_stale_and_replaced():
    d = _tmpdir()
    j = d + "/journal.bin"
    try:
        s = Store(d)
        s.load()
        s.append(b"old")
        s.close()
        stale = _read(j)
        s = Store(d)
        s.compact(b"S1")
        s.close()
        _write(j, stale)  # generation 0's journal beside generation 1's snapshot
        assert _load(d) == (b"S1", [])
        assert _read(j) == bytes(header(b"dmJL", 1))
    finally:
        _cleanup(d)


def _fat_window(d, tmp_gen, journal_gen):
    """snapshot.bin gone mid-rename; snapshot.tmp of tmp_gen; journal.bin of journal_gen."""
    os.mkdir(d[: d.rindex("/")])
    os.mkdir(d)
    _write(d + "/journal.bin", header(b"dmJL", journal_gen))
    rec = record(b"NEW")
    _write(d + "/snapshot.tmp", bytes(header(b"dmSN", tmp_gen)) + bytes(rec))


def test_rule_snapshot_tmp_is_adopted_only_as_the_next_generation_of_a_real_snapshot():
    for tmp_gen, journal_gen, adopted in ((2, 1, True), (3, 1, False), (1, 1, False), (1, 0, False)):
        d = _tmpdir()
        try:
            _fat_window(d, tmp_gen, journal_gen)
            if adopted:
                assert _load(d) == (b"NEW", [])
                assert sorted(os.listdir(d)) == ["journal.bin", "snapshot.bin"]
            else:
                try:
                    got = _load(d)
                except StoreError:
                    got = "refused"  # journal names a snapshot that is gone: loud, not silent
                assert got in ((None, []), "refused"), (tmp_gen, journal_gen, got)
                assert "snapshot.tmp" not in os.listdir(d), (tmp_gen, journal_gen)
        finally:
            _cleanup(d)


def test_rule_snapshot_tmp_with_bytes_after_its_record_is_not_adopted():
    d = _tmpdir()
    try:
        _fat_window(d, 2, 1)
        with open(d + "/snapshot.tmp", "ab") as f:
            f.write(b"\x00")
        e = raises(StoreError, _load, d)  # journal of gen 1 and no snapshot: refused, tmp gone
        assert "bytes after" not in str(e), e  # it was not taken in as snapshot.bin
        assert os.listdir(d) == ["journal.bin"]
    finally:
        _cleanup(d)


def test_rule_load_with_restore_and_apply_hands_each_record_once_in_order():
    d = _tmpdir()
    try:
        s = Store(d)
        s.load()
        s.compact(b"S")
        for p in (b"a", b"b", b"c"):
            s.append(p)
        s.close()
        seen = []
        s = Store(d)
        def restore(read):
            data = b""
            while True:
                chunk = read(2)
                if not chunk:
                    break
                data += chunk
            seen.append(("restore", data))

        got = s.load(restore, lambda p: seen.append(("apply", p)))
        assert seen == [("restore", b"S"), ("apply", b"a"), ("apply", b"b"), ("apply", b"c")]
        assert got == (None, [])
        s.append(b"d")
        s.close()
        assert _load(d) == (b"S", [b"a", b"b", b"c", b"d"])
    finally:
        _cleanup(d)


def test_rule_store_folder_is_made_through_existing_folders_and_refuses_a_file_on_the_path():
    base = _tmpdir()
    base = base[: base.rindex("/")]
    made = [base]
    os.mkdir(base)
    try:
        for i in range(10):  # many existing folders: each must be seen as a folder
            made.append(made[-1] + "/f%d" % i)
            os.mkdir(made[-1])
        d = made[-1] + "/store"
        s = Store(d)
        s.append(b"x")
        s.close()
        assert _load(d) == (None, [b"x"])
        for name in os.listdir(d):
            os.remove(d + "/" + name)
        os.rmdir(d)
        plain = base + "/plain"
        _write(plain, b"")
        raises(StoreError, Store(plain + "/store").load)  # load() makes the folder
        if hasattr(os, "chmod"):
            os.chmod(plain, 0o755)  # an executable file is no folder either
            raises(StoreError, Store(plain + "/store").load)  # load() makes the folder
        os.remove(plain)
    finally:
        for sub in reversed(made):
            try:
                os.rmdir(sub)
            except OSError:
                pass
