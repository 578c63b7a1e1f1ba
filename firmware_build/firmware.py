"""`dmagent build --firmware`: a board's bundle plus MicroPython firmware with it frozen in.

The port comes from board.json ("firmware": {"port": "unix" | "esp32" | "rp2"}). Everything is built
in a staging folder and only then put where the bundle goes, so a build that fails (a tool
missing, a download or checksum that fails, a compiler error) leaves the last one in place.
"""

import json
import shutil
from pathlib import Path

from dmagent.firmware_build import esp32_port, rp2_port, unix_port
from dmagent.firmware_build.bundle import Bundle, build, load_board, sha256
from dmagent.firmware_build.mpy import ROOT, BuildError

PORTS = {"unix": unix_port, "esp32": esp32_port, "rp2": rp2_port}
FIRMWARE_DIR = "firmware"


def port_of(board):
    """The MicroPython port whose build a board's firmware comes from; BuildError if none."""
    port = (board.get("firmware") or {}).get("port")
    if port not in PORTS:
        raise BuildError("board %s has no firmware manifest (board.json \"firmware\" names no port of %s)"
                         % (board["name"], ", ".join(sorted(PORTS))))
    return port


def build_firmware(name, out=None, log=print):
    """Build board name's bundle and its firmware into out (default build/NAME): a Bundle
    whose manifest names the firmware file, its size and sha256."""
    board = load_board(name)
    port = port_of(board)
    problem = PORTS[port].missing_tools()
    if problem:
        raise BuildError(problem)
    out = Path(out) if out else ROOT / "build" / board["name"]
    stage = out.with_name(out.name + ".firmware")
    shutil.rmtree(stage, ignore_errors=True)
    try:
        bundle = build(name, stage)
        manifest_py = bundle.dir / "manifest.py"
        if port == "unix":
            binary = unix_port.build(board, manifest_py, log)
        else:
            binary = PORTS[port].build(board, manifest_py, unix_port.cache_root(), log)
        target = bundle.dir / FIRMWARE_DIR / binary.name
        target.parent.mkdir()
        shutil.copy2(binary, target)
        data = target.read_bytes()
        bundle.manifest["firmware_file"] = {"path": "%s/%s" % (FIRMWARE_DIR, binary.name), "port": port,
                                            "size": len(data), "sha256": sha256(data)}
        (bundle.dir / "manifest.json").write_text(json.dumps(bundle.manifest, indent=1) + "\n")
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    stage.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return Bundle.load(out)


def frozen_unix_binary(log=print, build_missing=True):
    """The frozen Unix binary for this checkout's agent (built and cached when it is not):
    what `--runtime micropython-frozen` runs."""
    board = load_board("unix")
    found = unix_port.built_binary(board)
    if found or not build_missing:
        return found
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dmagent-frozen-") as tmp:
        bundle = build("unix", Path(tmp) / "unix")
        return unix_port.build(board, bundle.dir / "manifest.py", log)
