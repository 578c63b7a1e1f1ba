"""The agent on a MicroPython board's console, which it shares with the REPL.

From main.py's first line a console byte is data, never Ctrl-C (frames hold 0x03). The ways
back to the REPL: ESCAPE in the escape window (agent.escape), the Exec node
./DevDetail/Ext/Repl, a firmware erase. Nothing may print on the console once it carries
frames: the log then goes to a ring in RAM. Paths are relative to the working folder (the
file system's root on a board). The UART and TCP links are in dmlinks, imported only when
the config asks for them (heap is scarce).
"""

import asyncio
import gc
import select
import sys

import micropython

from agent import proto as P
import agent
from agent import server

READY = "dmagent: serving"  # the last line on the console before it carries frames
LOG_LINES = 16


class Console:
    """The console as one stream for serve_stream: readinto() what has arrived, straight
    into the link's buffer; writes go through; never closed (the REPL needs it after).

    On the Unix port the console is a tty made raw with reads that return what waits, so
    one readinto takes it all. A bare-metal port's stdin blocks until it has filled what it
    was given and cannot say how much waits: there each byte select reports is read alone."""

    def __init__(self, inp, out):
        self.s = inp
        self.out = out
        self.poller = select.poll()
        self.poller.register(inp, select.POLLIN)
        self.one = bytearray(1)
        self.heard = None  # what the escape window kept: the agent reads it first
        self.bulk = False
        try:
            from agent import tty  # boot-only: unloaded at once

            tty.make_raw(0)
            self.bulk = True
        except Exception:
            pass  # no termios, or not a tty: byte by byte
        agent.unload("agent.tty")

    def take(self, buf):
        """Bytes that have arrived, into buf, without waiting: how many."""
        if self.bulk:
            if not self.poller.poll(0):
                return 0
            return self.s.readinto(buf) or 0
        one, got, n = self.one, 0, len(buf)
        while got < n and self.poller.poll(0):
            if not self.s.readinto(one):
                break
            buf[got] = one[0]
            got += 1
        return got

    async def readinto(self, buf):
        heard = self.heard
        if heard:
            self.heard = None
            n = min(len(heard), len(buf))
            buf[:n] = heard[:n]
            return n
        while True:
            n = self.take(buf)
            if n:
                return n
            yield asyncio.core._io_queue.queue_read(self.s)  # wake when readable

    def write(self, data):
        view = memoryview(data)
        while view:
            n = self.out.write(view)
            view = view[n or 0:]

    async def drain(self):
        pass

    def close(self):
        pass

    async def wait_closed(self):
        pass


class Board:
    """One agent and the links its config asks for: console, uart, tcp (over Wi-Fi)."""

    def __init__(self, config):
        self.config = config
        self.lines = []  # the log's last lines
        self.echo = True  # log on the console too (only before it carries frames)
        self.app = None
        self.tasks = []
        self.tcp = None
        self.stopped = asyncio.Event()

    def log(self, msg):
        lines = self.lines
        lines.append(msg)
        if len(lines) > LOG_LINES:
            lines.pop(0)
        if self.echo:
            print("dmagent: " + msg)

    def add_repl_node(self):
        """./DevDetail/Ext/Repl: Exec hands the console back to the REPL (owners only: the
        agent's rule, see agent/mo/ext.py). agent.mo is boot code: loaded for it, dropped after."""
        from agent.mo import add_repl

        guard = self.app.guard
        try:
            add_repl(self.app.tree, self._repl, guard.owners if guard is not None else ())
        finally:
            agent.unload("agent.mo")

    def _repl(self, tree, principal, data):
        asyncio.create_task(self._stop_soon())  # after the 200 has left on the console
        return P.S_OK, "the console goes back to the REPL"

    async def _stop_soon(self):
        await asyncio.sleep_ms(100)
        self.stopped.set()

    def ready(self, links):
        """The last lines the console shows before it carries frames; the 0x00 after them
        ends that text for a frame decoder, so the first frame that follows is whole."""
        gc.collect()
        self.log("heap %d bytes in use, %d free after boot" % (gc.mem_alloc(), gc.mem_free()))
        print(READY + " " + " ".join(links))
        sys.stdout.buffer.write(b"\x00")

    async def run(self, app, console):
        """Serve the console (if given) and the links the config asks for, until Exec on
        the Repl node stops it."""
        cfg = self.config
        self.app = app
        self.add_repl_node()
        links = []
        if cfg.get("uart") or cfg.get("tcp"):
            import dmlinks

            links = dmlinks.start(self, cfg)
        if console is not None:
            links.insert(0, "console")
        self.config = cfg = None  # read: its heap is worth more to the links now (App drops its own)
        self.ready(links)
        if console is not None:
            self.echo = False  # from here on the console carries frames
            self.tasks.append(asyncio.create_task(server.serve_stream(self.app, console, console, "console")))
        try:
            await self.stopped.wait()
        finally:
            for task in self.tasks:
                task.cancel()
            if self.tcp is not None:
                self.tcp.close()
            micropython.kbd_intr(3)
        await asyncio.sleep_ms(0)
        self.echo = True
        print("\r\ndmagent: stopped; the console is the REPL again")


def _boot(startup, keyed):
    """Config, the escape window (if this board has one), keys, agent: (board, app,
    console), or None if the escape came."""
    config = startup.load_config()
    serves_console = startup.console_wanted(config)
    extra = (1 if config.get("uart") else 0) + (1 if config.get("tcp") else 0)
    if extra:  # main.py reserved the console's; now, before keys and agent, the others'
        startup.reserve(serves_console + extra)
    console = None
    if serves_console:
        from agent import escape

        console = Console(sys.stdin.buffer, sys.stdout.buffer)
        escaped, console.heard = escape.escape_window(config, keyed, console.take, bytearray(64))
        escape = None
        agent.unload("agent.escape")
        if escaped:
            return None
    board = Board(config)
    return board, startup.board_app(config, board.log, startup.secrets()), console


def main():
    """After main.py has turned Ctrl-C off and reserved the buffers: boot, then serve. A
    board with keys that cannot boot halts, saying why, rather than leave the REPL open."""
    from agent import startup

    keyed = startup.has_keys()
    booted = startup.boot_or_halt(lambda: _boot(startup, keyed), keyed)
    startup = None
    agent.unload("agent.startup")  # boot is over: its code leaves the heap
    if booted is None:
        micropython.kbd_intr(3)
        return
    board, app, console = booted
    try:
        asyncio.run(board.run(app, console))
    finally:
        micropython.kbd_intr(3)
        asyncio.new_event_loop()  # a clean loop for whatever runs next in the REPL
