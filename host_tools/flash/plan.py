"""The deploy planner: what to send, reuse, rename and remove, from hashes alone (no I/O).

Given what the board should hold and the hashes the board reported, it decides; deploy.py
does the talking. A verified temporary copy left by a cut-off flash counts as sent.
"""

import hashlib
import json

from dmagent.firmware_build.mpy import abi_from_sys_mpy, abi_text
from dmagent.host_tools.flash.errors import FlashError

JOURNAL = "/.dmflash"
RECORD = "/.dmbundle.json"  # what the last flash installed: version and every file's hash
TMP = ".dmnew"


def sha(data):
    return hashlib.sha256(data).hexdigest()


def dirs(path):
    """Every folder above a device path, outermost first: /lib/agent/mo/x.mpy -> /lib, /lib/agent, ..."""
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[:i + 1]) for i in range(len(parts))]


def parse_record(text):
    """The board's record of its last flash (a dict; {} when missing or unreadable)."""
    try:
        record = json.loads(text) if text else {}
    except ValueError:
        record = {}
    return record if isinstance(record, dict) else {}


def record_bytes(version, board, want):
    """The record this flash leaves: its version and every file's hash."""
    record = {"bundle": version, "board": board, "files": {p: s for p, _, s, _ in want}}
    return (json.dumps(record, sort_keys=True) + "\n").encode()


class Plan:
    """send: (path, data, sha256, size) to write under TMP; switch: (tmp, final) renames, boot.py
    first and main.py last; stale: paths of an older flash to remove; skipped: already right."""

    def __init__(self, send, switch, stale, skipped, nothing_to_do, expected=None):
        self.send = send
        self.expected = expected or {}  # path -> the hash it must have after the switch
        self.switch = switch
        self.stale = stale
        self.skipped = skipped
        self.nothing_to_do = nothing_to_do

    @property
    def folders(self):
        return sorted({d for path, _, _, _ in self.send for d in dirs(path)}, key=len)

    @property
    def total(self):
        return sum(size for _, _, _, size in self.send)

    @property
    def largest(self):
        return max([size for _, _, _, size in self.send] or [0])

    def journal(self, extra_switch=()):
        """The switch journal boot.py finishes: "tmp<TAB>final" renames, "<TAB>path" removes."""
        order = {"/boot.py": 0, "/main.py": 2}
        switch = sorted(list(self.switch) + list(extra_switch), key=lambda pair: order.get(pair[1], 1))
        lines = ["%s\t%s" % pair for pair in switch] + ["\t%s" % path for path in self.stale]
        return ("\n".join(lines) + "\n").encode()


def plan(want, have, record, version, keys_dir):
    """want: [(path, data or None, sha256, size)]; have: {path or path+TMP: sha256 or None} from
    the board; record: the board's parse_record. Keys are provisioned once: a key stays until a
    flash brings a new one for its principal. A board wraps the key files it boots with (agent/
    keys.py): one whose plain form the record names is that key, wrapped, and stays."""
    keys_dir = keys_dir.rstrip("/") + "/"
    installed = record.get("files", {})
    send, switch, skipped, expected = [], [], [], {}
    for path, data, digest, size in want:
        expected[path] = digest
        wrapped = path.startswith(keys_dir) and have.get(path) and installed.get(path) == digest
        if have.get(path) == digest or wrapped:
            skipped.append(path)
            expected[path] = have[path]
            continue
        if have.get(path + TMP) != digest:  # a verified copy from a cut-off flash is reused
            send.append((path, data, digest, size))
        switch.append((path + TMP, path))
    paths = {p for p, _, _, _ in want}
    stale = sorted(p for p in set(record.get("files", {})) - paths - {RECORD} if not p.startswith(keys_dir))
    nothing = not switch and not stale and record.get("bundle") == version
    return Plan(send, switch, stale, skipped, nothing, expected)


def check_runtime(port, probe, bundle):
    """FlashError unless the board runs MicroPython that loads the bundle's .mpy version."""
    if probe.get("impl") != "micropython":
        raise FlashError("%s runs %s, not MicroPython" % (port, probe.get("impl")),
                         "flash MicroPython first (--firmware FILE)")
    sys_mpy = probe.get("mpy")
    want = tuple(int(x) for x in bundle.manifest["mpy"].split("."))
    version = ".".join(map(str, probe.get("ver") or ()))
    if sys_mpy is None:
        raise FlashError("MicroPython %s on %s cannot import .mpy files" % (version, port),
                         "flash a MicroPython build with .mpy support (every stock firmware has it)")
    have = abi_from_sys_mpy(sys_mpy)
    if have[0] != want[0]:
        raise FlashError(".mpy version mismatch: MicroPython %s on %s loads .mpy v%s, the bundle is v%s"
                         % (version, port, abi_text(have), bundle.manifest["mpy"]),
                         "flash MicroPython %s firmware (--firmware FILE), or build with an mpy-cross "
                         "matching the board's MicroPython %s" % (bundle.manifest["micropython"], version))


def check_space(port, statvfs, send, extra):
    """FlashError when the files to send (whole blocks each) and extra bytes do not fit."""
    if not statvfs:
        return
    bsize = statvfs[1] or statvfs[0]
    free = bsize * statvfs[4]
    blocks = sum(-(-size // bsize) + 1 for _, _, _, size in send) + 2 + -(-extra // bsize)
    need = blocks * bsize
    if need > free:
        raise FlashError("not enough flash on %s: the new files need %d KiB, %d KiB are free"
                         % (port, need // 1024, free // 1024),
                         "remove files from the board (`mpremote rm`), or erase it and flash the "
                         "firmware again (--firmware FILE)")
