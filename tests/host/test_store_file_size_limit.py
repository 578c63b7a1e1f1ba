"""Rule: a store on a disk that is really full keeps serving Deletes: when reserve.bin cannot
be made whole, other writes are refused (StoreFull) before they are tried, and a Delete still
goes in. The disk is made full for real: a child process under a file size limit
(RLIMIT_FSIZE), where writing past it fails with EFBIG, as on a FAT volume at 4 GiB.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_CHILD = r"""
import json, resource, signal, sys
from dmagent.agent.store import Store, StoreFull
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))
s = Store(sys.argv[1], compact_bytes=2048, reserve=True)  # reserve.bin wants 6 KiB
s.load()
out = {"short": s.reserve_short}
try:
    s.append(b"a write that grows the tree")
    out["grow"] = "written"
except StoreFull as exc:
    out["grow"] = str(exc)
s.append(b"a delete", frees=True)
out["delete"] = "written"
out["compact"] = s.should_compact(True)
s.close()
print(json.dumps(out))
"""


def test_without_room_for_the_whole_reserve_only_deletes_are_written(tmp_path):
    root = tmp_path / "state"
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(root)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"short": True, "grow": "room kept for Deletes", "delete": "written",
                                       "compact": True}
    assert os.path.getsize(root / "reserve.bin") == 3000  # what the limit let it write stays
    from dmagent.agent.store import Store

    s = Store(str(root))
    assert s.load() == (None, [b"a delete"])
    s.close()


_REPAIR = r"""
import json, resource, signal, sys
from dmagent.agent.store import Store, StoreFull

class CopyTrunc(Store):
    _truncate_in_place = False  # cut by copying to journal.tmp, as MicroPython does

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
try:
    CopyTrunc(sys.argv[1]).load()
    print(json.dumps("loaded"))
except StoreFull as exc:
    print(json.dumps(str(exc)))
"""


def test_a_repair_that_finds_no_room_leaves_the_journal_as_it_was_and_no_copy(tmp_path):
    from dmagent.agent.store import Store

    root = tmp_path / "state"
    s = Store(str(root))
    s.load()
    for i in range(30):
        s.append(b"record %02d " % i + b"x" * 60)
    s.close()
    with open(root / "journal.bin", "ab") as f:
        f.write(b"\x05\x00")  # a torn tail: the copy of the 2 KB before it meets the limit
    before = (root / "journal.bin").read_bytes()
    proc = subprocess.run([sys.executable, "-c", _REPAIR, str(root)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == "store recovery: no space left to repair the journal"
    assert sorted(os.listdir(root)) == ["journal.bin"]  # the part copied is gone
    assert (root / "journal.bin").read_bytes() == before
    s = Store(str(root))
    assert len(s.load()[1]) == 30  # with room, the repair runs
    s.close()
