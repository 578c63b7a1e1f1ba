"""Rule: on CPython a store file is fsynced before it is renamed into place, and the folder
is fsynced after every rename, before the next step relies on it (agent/store.py, docs/storage.md).

A real power cut cannot be made here, so this checks the order of the system calls that make
it safe. pytest-mock only wraps os.rename and fsync to RECORD the calls: every call
still goes to the real function on a real folder.
"""

import os

from dmagent.agent import store as store_mod
from dmagent.agent.store import Store


def _recorder(mocker, root):
    calls = []
    real_fsync, real_rename = store_mod._fsync, os.rename

    def fsync(fd):
        path = os.readlink("/proc/self/fd/%d" % fd)
        calls.append(("fsync", "<folder>" if path == str(root) else os.path.basename(path)))
        return real_fsync(fd)

    def rename(src, dst):
        calls.append(("rename", os.path.basename(src), os.path.basename(dst)))
        return real_rename(src, dst)

    mocker.patch.object(store_mod, "_fsync", side_effect=fsync)  # files
    mocker.patch.object(os, "fsync", side_effect=fsync)  # the folder (agent.hal.cpython.sync_dir)
    mocker.patch.object(os, "rename", side_effect=rename)
    return calls


def test_compaction_fsyncs_each_file_before_its_rename_and_the_folder_after(tmp_path, mocker):
    root = tmp_path / "state"
    s = Store(str(root))
    s.load()
    s.append(b"one")
    calls = _recorder(mocker, root)
    s.compact(b"snapshot")
    s.append(b"two")
    s.close()
    assert calls == [
        ("fsync", "snapshot.tmp"),
        ("rename", "snapshot.tmp", "snapshot.bin"),
        ("fsync", "<folder>"),
        ("fsync", "journal.tmp"),
        ("rename", "journal.tmp", "journal.bin"),
        ("fsync", "<folder>"),
        ("fsync", "journal.bin"),  # the append after it: on flash before it returns
    ]


def test_cut_by_copy_fsyncs_the_copy_before_its_rename_and_the_folder_after(tmp_path, mocker):
    class CopyTruncStore(Store):
        _truncate_in_place = False  # the path MicroPython takes

    root = tmp_path / "state"
    s = CopyTruncStore(str(root))
    s.load()
    s.append(b"one")
    s.close()
    with open(root / "journal.bin", "ab") as f:
        f.write(b"\x05\x00")  # a torn tail for the next load to cut off
    calls = _recorder(mocker, root)
    s = CopyTruncStore(str(root))
    s.load()
    s.close()
    assert calls == [
        ("fsync", "journal.tmp"),
        ("rename", "journal.tmp", "journal.bin"),
        ("fsync", "<folder>"),
    ]


def test_on_cpython_a_torn_tail_is_cut_in_place_without_a_copy(tmp_path, mocker):
    # files have truncate() here: the journal is cut where it lies, no journal.tmp, no rename
    root = tmp_path / "state"
    s = Store(str(root))
    s.load()
    s.append(b"one")
    s.close()
    with open(root / "journal.bin", "ab") as f:
        f.write(b"\x05\x00")
    inode = os.stat(root / "journal.bin").st_ino
    calls = _recorder(mocker, root)
    s = Store(str(root))
    assert s.load() == (None, [b"one"])
    s.close()
    assert calls == [("fsync", "journal.bin")]
    assert os.stat(root / "journal.bin").st_ino == inode


def test_a_streamed_snapshot_is_fsynced_before_its_rename(tmp_path, mocker):
    root = tmp_path / "state"
    s = Store(str(root))
    s.load()
    calls = _recorder(mocker, root)
    s.compact(lambda write: (write(b"part one, "), write(b"part two")))
    s.close()
    assert calls[:2] == [("fsync", "snapshot.tmp"), ("rename", "snapshot.tmp", "snapshot.bin")]


def test_the_reserve_is_fsynced_so_its_room_is_really_allocated(tmp_path, mocker):
    # delayed allocation: zeros still in the page cache hold no blocks on the disk
    root = tmp_path / "state"
    root.mkdir()
    calls = _recorder(mocker, root)
    s = Store(str(root), compact_bytes=1024, reserve=True)
    s.load()
    s.close()
    assert ("fsync", "reserve.bin") in calls
    assert os.path.getsize(root / "reserve.bin") == 5120  # 1024 + 4096


def test_a_journal_tmp_adopted_in_the_fat_rename_window_is_followed_by_a_folder_sync(tmp_path, mocker):
    root = tmp_path / "state"
    s = Store(str(root))
    s.load()
    s.append(b"one")
    s.close()
    os.rename(root / "journal.bin", root / "journal.tmp")  # "remove, then rename" cut short
    calls = _recorder(mocker, root)
    s = Store(str(root))
    assert s.load() == (None, [b"one"])
    s.close()
    assert calls == [("rename", "journal.tmp", "journal.bin"), ("fsync", "<folder>")]
