# dmagent boot.py: finish a `dmagent flash` that was cut off while it switched files in.
# The flash tool writes every file under a temporary name, checks it, then lists the
# switch in /.dmflash ("temporary<TAB>final" to rename, "<TAB>path" to remove) before doing
# it; finishing the list here makes the switch all-or-nothing across a power cut.
# Ctrl-C is off first: on an ESP32 an exception in boot.py skips main.py (the REPL stays),
# and a byte on the console at boot is a client's, not an operator's.
import micropython

micropython.kbd_intr(-1)
import os  # noqa: E402


def _finish_flash(journal="/.dmflash"):
    try:
        with open(journal) as f:
            lines = f.read().split("\n")
    except OSError:
        return
    for line in lines:
        tmp, _, final = line.partition("\t")
        if not final:
            continue
        try:
            if tmp:
                os.stat(tmp)
                os.rename(tmp, final)
            else:
                os.remove(final)
        except OSError:
            pass  # already done before the cut
    os.remove(journal)


_finish_flash()
del _finish_flash, micropython
