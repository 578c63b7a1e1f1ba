"""`dmagent flash` for a ROMFS board (rp2): the bundle's image goes to the ROMFS partition
with mpremote's own `romfs deploy`, over the raw REPL the flash has already entered.

The check comes before any file is written: a board whose firmware has no ROMFS partition
(stock MicroPython 1.25 rp2 builds set MICROPY_HW_ROMFS_BYTES to 0) or one too small for the
image is one line, and the board keeps what it had.
"""

import contextlib
import io

from dmagent.host_tools.flash.deploy import FlashError

_QUERY = ("import vfs\n"
          "d=vfs.rom_ioctl(2,0) if hasattr(vfs,'rom_ioctl') and vfs.rom_ioctl(1)>0 else None\n"
          "print(-1 if d is None else -2 if isinstance(d,int) else "
          "d.ioctl(4,0)*d.ioctl(5,0) if hasattr(d,'ioctl') else len(d))\n")


def check_partition(repl, bundle):
    """FlashError unless the board has a ROMFS partition the bundle's image fits in."""
    rom = bundle.manifest["romfs"]
    size = int(repl.call(_QUERY, what="asking the board for its ROMFS partition").strip() or -1)
    if size < 0:
        raise FlashError("%s: its MicroPython has no ROMFS partition, so the agent's image cannot go to "
                         "flash (stock MicroPython 1.25 rp2 firmware has none)" % repl.port,
                         "flash firmware built with MICROPY_HW_ROMFS_BYTES set (docs/boards.md, rp2)")
    if rom["size"] > size:
        raise FlashError("%s: the ROMFS image is %d bytes, the board's ROMFS partition holds %d"
                         % (repl.port, rom["size"], size), "cut the agent, or build firmware with a larger partition")
    return size


def deploy(repl, bundle, progress):
    """Write the image with mpremote's romfs deploy (verified there by its own checks)."""
    from mpremote.commands import CommandError, _do_romfs_deploy

    class State:  # what _do_romfs_deploy uses of mpremote's State: the entered transport
        transport = repl.t

        def ensure_raw_repl(self):
            pass

        def did_action(self):
            pass

    class Args:
        path = str(bundle.romfs_image)
        partition = 0
        mpy = False

    progress("romfs", 0, 1)
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said):
            _do_romfs_deploy(State(), Args())
    except (CommandError, repl.TransportError, repl.TransportExecError) as exc:
        raise FlashError("%s: writing the ROMFS image failed: %s" % (repl.port, exc)) from None
    except SystemExit:
        raise FlashError("%s: mpremote refused the ROMFS image: %s" % (repl.port, said.getvalue().strip()[-200:])) from None
    progress("romfs", 1, 1)
