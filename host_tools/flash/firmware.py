"""MicroPython firmware onto an ESP32 through esptool (as a library), before the agent's files.

esptool logs through one process-wide logger: it is routed per thread, so that several boards
flashed at once each draw their own bar.
"""

import threading
import time
from pathlib import Path

from dmagent.host_tools.flash.errors import FlashError, no_progress
from dmagent.host_tools.flash.repl import open_error

_esptool_route = threading.local()
_esptool_lock = threading.Lock()
_esptool_ready = []


def _install_esptool_logger():
    """esptool logs through one global logger: route its progress to the calling thread's bar."""
    with _esptool_lock:
        if _esptool_ready:
            return
        from esptool.logger import TemplateLogger, log

        class Route(TemplateLogger):
            def _sink(self):
                return getattr(_esptool_route, "progress", None)

            def print(self, *args, **kwargs):
                note = getattr(_esptool_route, "note", None)
                if note:
                    note(" ".join(str(a) for a in args))

            def note(self, message):
                self.print(message)

            def warning(self, message):
                self.print("warning: " + message)

            def error(self, message):
                self.print("error: " + message)

            def stage(self, finish=False):
                pass

            def progress_bar(self, cur_iter, total_iters, prefix="", suffix="", bar_length=30):
                sink = self._sink()
                if sink:
                    sink("firmware", cur_iter, total_iters)

            def set_verbosity(self, verbosity):
                pass

        log.set_logger(Route())
        _esptool_ready.append(True)


def flash_firmware(port, firmware, chip="auto", address=0x1000, baud=460800, erase=True,
                   progress=no_progress, note=None):
    """Write MicroPython firmware with esptool (as a library), then hard-reset the board."""
    try:
        from esptool.cmds import attach_flash, detect_chip, erase_flash, reset_chip, run_stub, write_flash
        from esptool.util import FatalError
    except ImportError:
        raise FlashError("esptool is not installed", "pip install -c constraints.txt esptool") from None
    if not Path(firmware).is_file():
        raise FlashError("firmware file %s not found" % firmware,
                         "download MicroPython for the board (boards/<board>/README.md says where)")
    _install_esptool_logger()
    _esptool_route.progress = progress
    _esptool_route.note = note
    if isinstance(address, str):
        address = int(address, 0)
    try:
        with detect_chip(port) as esp:
            name = esp.CHIP_NAME.lower().replace("-", "")
            if chip not in ("auto", None) and name != chip.lower().replace("-", ""):
                raise FlashError("%s has an %s, the board wants %s" % (port, esp.CHIP_NAME, chip),
                                 "pick the right --board, or the right port")
            esp = run_stub(esp)
            if baud and baud != esp.ESP_ROM_BAUD:
                esp.change_baud(baud)
            attach_flash(esp)
            if erase:
                progress("firmware", 0, 1)
                erase_flash(esp)
            write_flash(esp, [(address, str(firmware))])
            reset_chip(esp, "hard-reset")
    except FatalError as exc:
        raise FlashError("esptool on %s: %s" % (port, exc),
                         "hold BOOT (GPIO0) and tap EN to enter the bootloader if auto-reset fails; "
                         "close other programs using the port") from None
    except OSError as exc:
        raise open_error(port, exc) from None
    finally:
        _esptool_route.progress = None
        _esptool_route.note = None
    time.sleep(2.0)  # first boot: MicroPython makes its file system
