"""Which files win at boot after a crash in a window the other tests do not reach: mid
truncation by copy (the MicroPython path) with a FAT-style rename, a damaged tmp beside a
missing final file, and a repair that runs out of space. Through Store.load(). Plain asserts.
"""

import os

from agent.store import Store, StoreError, StoreFull, header, record_head
from tests.agent.check import raises
from tests.agent.edge_helpers import cleanup as _cleanup
from tests.agent.edge_helpers import load as _load
from tests.agent.edge_helpers import read as _read
from tests.agent.edge_helpers import tmpdir
from tests.agent.edge_helpers import write as _write


def record(payload):
    """The on-disk bytes of one record: its head, then the payload."""
    return bytes(record_head(payload)) + payload


def _tmpdir():
    return tmpdir("rcw")



class Crash(Exception):
    pass


class _CopyCrashStore(Store):
    _truncate_in_place = False  # cut a torn tail by copying, as MicroPython does

    def _rename(self, tmp, final):
        if tmp == "journal.tmp":  # the good records are copied, not yet renamed in
            raise Crash(tmp)
        Store._rename(self, tmp, final)


def _torn(d):
    """Two good records and half a third in journal.bin."""
    s = Store(d)
    s.load()
    s.append(b"one")
    s.append(b"two")
    s.close()
    with open(d + "/journal.bin", "ab") as f:
        f.write(bytes(record(b"three"))[:7])


def test_rule_crash_after_copying_the_good_records_keeps_them():
    d = _tmpdir()
    try:
        _torn(d)
        raises(Crash, _CopyCrashStore(d).load)
        assert "journal.tmp" in os.listdir(d)
        assert _load(d) == (None, [b"one", b"two"])  # journal.bin still there: tmp dropped
        assert sorted(os.listdir(d)) == ["journal.bin"]
    finally:
        _cleanup(d)


def test_rule_fat_rename_window_in_copy_truncation_adopts_the_copied_records():
    d = _tmpdir()
    try:
        _torn(d)
        raises(Crash, _CopyCrashStore(d).load)
        os.remove(d + "/journal.bin")  # FAT's rename: the old file went, the new one not yet in
        assert _load(d) == (None, [b"one", b"two"])
        assert sorted(os.listdir(d)) == ["journal.bin"]
    finally:
        _cleanup(d)


def test_rule_snapshot_tmp_without_a_journal_is_never_adopted():
    d = _tmpdir()
    try:
        os.mkdir(d[: d.rindex("/")])
        os.mkdir(d)
        _write(d + "/snapshot.tmp", bytes(header(b"dmSN", 1)) + bytes(record(b"NEW")))
        assert _load(d) == (None, [])
        assert sorted(os.listdir(d)) == ["journal.bin"]
    finally:
        _cleanup(d)


def test_rule_snapshot_with_bytes_after_its_record_is_refused_and_says_how_many():
    d = _tmpdir()
    try:
        s = Store(d)
        s.load()
        s.compact(b"S")
        s.close()
        with open(d + "/snapshot.bin", "ab") as f:
            f.write(b"\x00\x00\x00")
        e = raises(StoreError, _load, d)
        assert "3 bytes after" in str(e), e
    finally:
        _cleanup(d)


class _NoRoomToRepair(Store):
    def _truncate_journal(self, n):
        raise OSError(28, "No space left on device")


def test_rule_a_repair_without_space_is_store_full_and_loses_nothing():
    d = _tmpdir()
    try:
        _torn(d)
        size = len(_read(d + "/journal.bin"))
        e = raises(StoreFull, _NoRoomToRepair(d).load)
        assert "recovery" in str(e)
        assert len(_read(d + "/journal.bin")) == size
        assert _load(d) == (None, [b"one", b"two"])  # with room, the repair runs
    finally:
        _cleanup(d)


class _BrokenDisk(Store):
    def _truncate_journal(self, n):
        raise OSError(5, "I/O error")


def test_rule_a_repair_failing_otherwise_is_not_store_full():
    d = _tmpdir()
    try:
        _torn(d)
        e = raises(OSError, _BrokenDisk(d).load)
        assert not isinstance(e, StoreFull)
    finally:
        _cleanup(d)
