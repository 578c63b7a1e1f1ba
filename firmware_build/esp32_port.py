"""ESP32 firmware with the agent frozen: the MicroPython esp32 port's own build (ESP-IDF).

Runs only where ESP-IDF is installed (idf.py on PATH, or IDF_PATH) and a MicroPython 1.25
checkout with its submodules is named by MICROPY_DIR: Debian's "+ds" source lacks the
berkeley-db and micropython-lib submodules the esp32 port needs, and ESP-IDF is in no
package registry. Where either is missing, missing_tools() says so in one line.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

from dmagent.firmware_build.mpy import BuildError
from dmagent.firmware_build.source import checkout_problem

IDF_VERSION = "v5.2.2"  # the ESP-IDF MicroPython 1.25's esp32 port is built and tested with
FIRMWARE = "firmware.bin"


def _idf_py():
    found = shutil.which("idf.py")
    if found:
        return found
    idf = os.environ.get("IDF_PATH")
    if idf and (Path(idf) / "tools" / "idf.py").is_file():
        return str(Path(idf) / "tools" / "idf.py")
    return None


def missing_tools():
    """One line naming what is missing for an esp32 firmware build, or None."""
    if not _idf_py():
        return ("esp32 firmware needs ESP-IDF %s: no idf.py on PATH and no IDF_PATH set "
                "(install ESP-IDF and source its export.sh)" % IDF_VERSION)
    return checkout_problem("esp32", "lib/berkeley-db-1.xx")


def build(board, manifest_py, work, log=print):
    """make -C $MICROPY_DIR/ports/esp32 BOARD=... FROZEN_MANIFEST=...; returns firmware.bin."""
    problem = missing_tools()
    if problem:
        raise BuildError(problem)
    start = time.monotonic()
    port_board = (board.get("firmware") or {}).get("board", "ESP32_GENERIC")
    out = Path(work) / "esp32-build"
    argv = ["make", "-C", str(Path(os.environ["MICROPY_DIR"]) / "ports" / "esp32"), "BOARD=%s" % port_board,
            "BUILD=%s" % out, "FROZEN_MANIFEST=%s" % Path(manifest_py).resolve()]
    log("firmware: [  0.0 s] building the esp32 port (%s) with %s frozen" % (port_board, Path(manifest_py).name))
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0 or not (out / FIRMWARE).is_file():
        lines = [l for l in (proc.stderr or proc.stdout).strip().splitlines() if l.strip()]
        raise BuildError("building the esp32 port failed: %s" % " | ".join(lines[-2:]))
    log("firmware: [%5.1f s] esp32 firmware ready: %d bytes" % (time.monotonic() - start, (out / FIRMWARE).stat().st_size))
    return out / FIRMWARE
