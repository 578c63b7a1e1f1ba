"""A tty (a UART device, a pseudo-terminal, the console) made raw, for MicroPython's Unix port.

Boot-only: a board opens its links with it and unloads it (agent.unload), so its code is not
in the running agent's heap. Without termios (bare-metal ports) importing it raises ImportError.
"""

import termios

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


_VTIME = const(5)  # indices into the tty's control characters (Linux)
_VMIN = const(6)


def make_raw(fd, baud=None):
    """Raw mode, and reads that return what has arrived: the Unix port's file read(n)
    otherwise waits for all n bytes, and a 6-byte request would sit unanswered."""
    termios.setraw(fd)
    attrs = termios.tcgetattr(fd)
    speed = getattr(termios, "B%d" % baud, None) if baud else None
    if speed is not None:
        attrs[4] = speed
        attrs[5] = speed
    attrs[6][_VMIN] = 0  # with VTIME 0: read() takes what is there (asyncio polled first)
    attrs[6][_VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def open_tty(path, baud=115200):
    """Open a tty (a UART device or a pseudo-terminal) raw, for MicroPython's Unix port."""
    f = open(path, "r+b")
    make_raw(f.fileno(), baud)
    return f
