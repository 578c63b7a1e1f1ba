"""The console's escape to the REPL at boot: ESCAPE, heard in a window after a reset.

ESCAPE is no frame and in no run of frames (docs/boards.md says why), so a gateway polling
through a reset never sends it by accident. A board with keys has no window unless its
config asks (escape_window_ms); what else is heard in the window goes to the agent.
"""

import time

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# 0x00 then a chunk that is not COBS ("D" = 0x44 claims 67 bytes before the next zero, 11
# follow) then 0x00: every 0x00 on the line ends a frame, and every frame is valid COBS.
ESCAPE = b"\x00DMAGENT-REPL\x00"
ESCAPE_TEXT = "<NUL>DMAGENT-REPL<NUL>"
WINDOW_MS = const(2000)  # an unkeyed board's window when its config names none
KEEP = const(256)  # bytes heard in the window that the agent gets once it serves
_STEP_MS = const(20)


def escape_window_ms(config, keyed, default=WINDOW_MS):
    """How long the console listens for ESCAPE at boot: escape_window_ms if the config
    names it; else none on a board with keys, default on one without. (The old escape_ms
    is not read: a board provisioned with it would keep its window open.)"""
    ms = config.get("escape_window_ms")
    if ms is None:
        return 0 if keyed else default
    if type(ms) is not int or ms < 0:
        raise ValueError("escape_window_ms must be a whole number of ms >= 0")
    return ms


class Escape:
    """Finds ESCAPE in the bytes fed to it and keeps the last KEEP of the rest for the agent.
    ESCAPE's only zeros are its ends, so a mismatch restarts at a zero or at the start."""

    def __init__(self, size=KEEP):
        self.kept = bytearray(size)
        self.n = 0
        self.at = 0  # bytes of ESCAPE matched so far

    def feed(self, data, n):
        """True once data[:n] completes ESCAPE."""
        esc, kept = ESCAPE, self.kept
        for i in range(n):
            b = data[i]
            if b == esc[self.at]:
                self.at += 1
                if self.at == len(esc):
                    return True
            else:
                self.at = 1 if b == 0 else 0
            if self.n == len(kept):
                kept[: self.n - 1] = kept[1:]
                self.n -= 1
            kept[self.n] = b
            self.n += 1
        return False

    def heard(self):
        return memoryview(self.kept)[: self.n]


def listen(ms, read, buf):
    """Listen ms for ESCAPE (MicroPython's clock); read(buf) -> how many bytes it put in
    buf, without waiting. Returns (True, None) if ESCAPE came, else (False, the bytes heard)."""
    esc = Escape()
    start = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), start) < ms:
        n = read(buf)
        if n and esc.feed(buf, n):
            return True, None
        if not n:
            time.sleep_ms(_STEP_MS)
    return False, esc.heard()


def escape_window(config, keyed, read, buf, default=WINDOW_MS, say=print):
    """The window, if this board has one: (escaped, heard). say() tells the console."""
    ms = escape_window_ms(config, keyed, default)
    if not ms:
        return False, None
    say("dmagent: starting in %d ms; %s for the REPL" % (ms, ESCAPE_TEXT))
    escaped, heard = listen(ms, read, buf)
    if escaped:
        say("dmagent: not started; this is the REPL")
    return escaped, heard
