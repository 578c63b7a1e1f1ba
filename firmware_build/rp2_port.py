"""Pico W firmware with a ROMFS partition: the MicroPython rp2 port's own build, one change.

Stock MicroPython 1.25 rp2 firmware reserves no ROMFS partition (MICROPY_HW_ROMFS_BYTES is
0 for every rp2 board), so the agent's image has nowhere to go. This builds the board's
stock definition with the partition carved out of the file system's end of flash (the code
space keeps its size; the board's file system is made anew on first boot). Needs the Arm
toolchain, cmake and a MicroPython 1.25 checkout with the pico-sdk submodule (MICROPY_DIR).
"""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from dmagent.firmware_build.mpy import BuildError
from dmagent.firmware_build.source import checkout_problem

FIRMWARE = "firmware.uf2"


def missing_tools():
    """One line naming what is missing for an rp2 firmware build, or None."""
    for tool, hint in (("arm-none-eabi-gcc", "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"),
                       ("cmake", "apt-get install cmake")):
        if not shutil.which(tool):
            return "rp2 firmware needs %s, which is not on PATH (%s)" % (tool, hint)
    return checkout_problem("rp2", "lib/pico-sdk")


def board_definition(stock, dest, romfs_bytes):
    """Copy the port's board folder to dest with the ROMFS partition taken from its file system."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(stock, dest)
    header = dest / "mpconfigboard.h"
    text = header.read_text()
    match = re.search(r"#define MICROPY_HW_FLASH_STORAGE_BYTES\s+\((\d+) \* 1024\)", text)
    if not match or romfs_bytes % 4096:
        raise BuildError("cannot make room for ROMFS in %s (a multiple of 4096 bytes taken from "
                         "MICROPY_HW_FLASH_STORAGE_BYTES)" % header)
    storage = int(match.group(1)) * 1024 - romfs_bytes
    text = text.replace(match.group(0), "#define MICROPY_HW_FLASH_STORAGE_BYTES (%d)" % storage)
    header.write_text(text + "\n// dmagent: the agent's ROMFS image, mounted at /rom\n"
                             "#define MICROPY_HW_ROMFS_BYTES (%d)\n" % romfs_bytes)


def build(board, manifest_py, work, log=print):
    """make -C $MICROPY_DIR/ports/rp2 BOARD_DIR=<the board with ROMFS>; returns firmware.uf2.
    (manifest_py is unused: on rp2 the agent goes to ROMFS, not into the firmware.)"""
    problem = missing_tools()
    if problem:
        raise BuildError(problem)
    start = time.monotonic()
    port = Path(os.environ["MICROPY_DIR"]) / "ports" / "rp2"
    name = (board.get("firmware") or {}).get("board", "RPI_PICO_W")
    defn = Path(work) / "rp2-board" / (name + "_ROMFS")
    board_definition(port / "boards" / name, defn, int(board["romfs"]["bytes"]))
    out = Path(work) / "rp2-build"
    log("firmware: [  0.0 s] building the rp2 port (%s with a %d-byte ROMFS partition)"
        % (name, board["romfs"]["bytes"]))
    proc = subprocess.run(["make", "-C", str(port), "BOARD_DIR=%s" % defn, "BUILD=%s" % out],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not (out / FIRMWARE).is_file():
        lines = [l for l in (proc.stderr or proc.stdout).strip().splitlines() if l.strip()]
        raise BuildError("building the rp2 port failed: %s" % " | ".join(lines[-2:]))
    log("firmware: [%5.1f s] rp2 firmware ready: %d bytes" % (time.monotonic() - start, (out / FIRMWARE).stat().st_size))
    return out / FIRMWARE
