"""agent.recovery: a file that is not ours is refused saying what was found (the magic and
version read, beside the ones wanted); and recovery re-opens the journal it may have replaced,
so an append after it lands in the file that loads. Plain asserts: CPython and the device
runtime.
"""

from agent.store import Store, StoreError
from tests.agent.check import raises
from tests.agent.edge_helpers import cleanup, load, read, tmpdir, write
from tests.agent.store_stats import stats


def test_rule_a_header_not_ours_is_refused_naming_what_was_read():
    d = tmpdir("rrules")
    j = d + "/journal.bin"
    try:
        s = Store(d)
        s.load()
        s.append(b"x")
        s.close()
        good = read(j)
        write(j, b"NOPE" + good[4:])
        msg = str(raises(StoreError, load, d))
        assert msg == "journal.bin: not a dmagent store file (magic %r, want %r)" % (b"NOPE", b"dmJL"), msg
        write(j, good[:4] + b"\x09" + good[5:])
        msg = str(raises(StoreError, load, d))
        assert msg == "journal.bin: format version 9, this agent reads 1", msg
    finally:
        cleanup(d)


class _CopyTruncStore(Store):
    _truncate_in_place = False  # journal.bin is replaced by a copy: the path MicroPython takes


def test_rule_an_append_after_recovery_lands_in_the_journal_recovery_left():
    d = tmpdir("rrules")
    try:
        s = _CopyTruncStore(d)
        s.load()
        s.append(b"one")  # journal.bin is open for appending now
        with open(d + "/journal.bin", "ab") as f:
            f.write(b"\x05\x00")  # a torn tail
        assert s.load() == (None, [b"one"])  # cut by a copy renamed over journal.bin
        s.append(b"two")
        s.close()
        assert load(d) == (None, [b"one", b"two"])
    finally:
        cleanup(d)


def test_rule_without_a_snapshot_restore_is_told_so_and_the_stats_say_none():
    d = tmpdir("rrules")
    try:
        s = Store(d)
        s.load()
        s.append(b"r1")
        s.close()
        seen = []
        s = Store(d)
        s.load(lambda read: seen.append(read), lambda rec: seen.append(rec))
        assert seen == [None, b"r1"]  # restore(None): the empty tree, then the records
        assert stats(s)["snapshot_bytes"] == 0
        s.close()
    finally:
        cleanup(d)


def test_rule_a_relative_store_folder_is_made_under_the_current_folder():
    import os

    d = tmpdir("rrules")
    parent = d[: d.rindex("/")]
    here = os.getcwd()
    os.mkdir(parent)
    try:
        os.chdir(parent)
        s = Store("rel/state")
        s.load()
        s.close()
        assert sorted(os.listdir(parent + "/rel/state")) == ["journal.bin"]
    finally:
        os.chdir(here)
        cleanup(d)


def test_rule_a_streamed_snapshot_ends_in_empty_reads_and_counts_its_bytes():
    d = tmpdir("rrules")
    try:
        s = Store(d)
        s.load()
        s.compact(b"a snapshot of some bytes")
        s.close()
        ends = []

        def restore(read):
            got = read(100)
            ends.append(read(100))
            ends.append(read(1))
            assert got == b"a snapshot of some bytes"

        s = Store(d)
        s.load(restore, lambda rec: None)
        assert ends == [b"", b""]
        assert stats(s)["snapshot_bytes"] == 16 + 8 + 24
        s.close()
    finally:
        cleanup(d)


def _snapshot_store(d, payload):
    s = Store(d)
    s.load()
    s.compact(payload)
    s.close()


def test_rule_a_snapshot_restore_cannot_take_is_damage_if_its_crc_fails_else_restores_own_error():
    d = tmpdir("rrules")
    try:
        _snapshot_store(d, b"x" * 600)

        def restore(read):
            read(4)
            raise ValueError("restore refused it")

        assert "restore refused it" in str(raises(ValueError, Store(d).load, restore, lambda rec: None))
        data = bytearray(read(d + "/snapshot.bin"))
        data[len(data) - 1] ^= 1  # the record's last byte: its CRC fails
        write(d + "/snapshot.bin", bytes(data))
        msg = str(raises(StoreError, Store(d).load, restore, lambda rec: None))
        assert "record torn or CRC mismatch" in msg, msg
    finally:
        cleanup(d)


def test_rule_a_snapshot_restore_leaves_unread_is_refused_saying_how_much():
    d = tmpdir("rrules")
    try:
        _snapshot_store(d, b"y" * 50)
        msg = str(raises(StoreError, Store(d).load, lambda read: read(20), lambda rec: None))
        assert msg == "snapshot.bin: 30 bytes of its record were not read", msg
    finally:
        cleanup(d)


def test_rule_a_journal_tmp_with_a_bad_header_is_never_adopted():
    import os

    d = tmpdir("rrules")
    try:
        s = Store(d)
        s.load()
        s.close()
        os.remove(d + "/journal.bin")  # as a "remove, then rename" (FAT) leaves it
        write(d + "/journal.tmp", b"not a journal header at all")
        assert load(d) == (None, [])
        assert sorted(os.listdir(d)) == ["journal.bin"] and read(d + "/journal.bin")[:4] == b"dmJL"
    finally:
        cleanup(d)
