"""Rule: the store leaves no file or folder handle open, whatever path it takes (a board has
a handful of them, and CPython's refcounting would hide a leak a board then hits). Checked
on CPython by the ResourceWarning an unclosed file gives when it is collected, and by the
process's open descriptors before and after. Real files in a real folder.
"""

import gc
import os
import warnings

from dmagent.agent.store import Store, StoreFull


class _NoRoomForSnapshots(Store):
    def _write_file(self, path, parts):
        if path.endswith("snapshot.tmp"):
            raise OSError(28, "No space left on device")
        Store._write_file(self, path, parts)


def _fds():
    return sorted(os.listdir("/proc/self/fd"))


def test_a_stores_whole_life_leaves_no_handle_open_and_no_warning(tmp_path):
    root = str(tmp_path / "state")
    gc.collect()
    before = _fds()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        s = Store(root, compact_bytes=256, reserve=True)
        s.load()
        s.append(b"one")
        s.compact(b"snapshot")
        s.append(b"two")
        s.compact(lambda write: (write(b"streamed "), write(b"snapshot")))
        s.append(b"three")
        s.close()
        with open(os.path.join(root, "journal.bin"), "ab") as f:
            f.write(b"\x05\x00")  # a torn tail for the next load to cut off
        s = _NoRoomForSnapshots(root, compact_bytes=256, reserve=True)
        assert s.load() == (b"streamed snapshot", [b"three"])
        try:
            s.compact(b"no room")
        except StoreFull:
            pass
        s.close()
        del s
        gc.collect()
    assert [str(w.message) for w in seen] == []
    assert _fds() == before
