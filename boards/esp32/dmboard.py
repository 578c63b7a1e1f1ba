"""The agent on a MicroPython board's console, which it shares with the REPL.

Frames on the console may hold 0x03, so Ctrl-C is off while it is served; the ways back to
the REPL are main.py's escape window at boot and the Exec node ./DevDetail/Ext/Repl. Nothing
may print on the console once it carries frames: the log then goes to a ring in RAM.
Paths are relative to the working folder (the file system's root on a board). The UART and
TCP links are in dmlinks, imported only when the config asks for them (heap is scarce).
"""

import asyncio
import gc
import select
import sys
import time

import micropython

from agent import proto as P
from agent import server
from agent.app import App

CONFIG = "dmagent.json"
KEYS = "keys"
STATE = "state"
ESCAPE_MS = 2000
READY = "dmagent: serving"  # the last line on the console before it carries frames
LOG_LINES = 16


def load_config(path=CONFIG):
    """The device config `dmagent flash` writes, checked (agent.config); {} if there is none.
    ConfigError (one line: file and key) if it is bad."""
    import agent
    from agent import config

    try:
        return config.load(path, missing_ok=True)
    finally:
        agent.unload("agent.config")  # before boot: its code leaves the heap


def load_keys(path=KEYS):
    """{principal: key} from the keys folder `dmagent flash` fills; {} without one."""
    try:
        from agent import keys
    except ImportError:
        return {}
    try:
        return keys.load([path])
    except ValueError as exc:
        if "not found" in str(exc):
            return {}
        raise


def make_app(config, keys, log):
    """App with the keys if this agent's App takes them (the security layer), else without."""
    insecure = bool(config.get("insecure"))
    if keys:
        try:
            return App(config, STATE, insecure, log, keys=keys)
        except TypeError as exc:
            if "keyword" not in str(exc) and "argument" not in str(exc):
                raise
            log("keys found, but this agent takes none: ignored")
    return App(config, STATE, insecure, log)


class Console:
    """The console as one stream for serve_stream: reads what has arrived, writes through,
    and is never closed (the REPL needs it afterwards).

    A console's read(n) blocks until all n bytes came, so read() waits for the first byte
    through asyncio's poller, then takes only what select says is there."""

    def __init__(self, inp, out, chunk=256):
        self.s = inp
        self.out = out
        self.poller = select.poll()
        self.poller.register(inp, select.POLLIN)
        self.buf = bytearray(chunk)
        self.one = bytearray(1)

    def _take(self, n):
        buf, one, got = self.buf, self.one, 0
        n = min(n, len(buf))
        while got < n and self.poller.poll(0):
            if not self.s.readinto(one):
                break
            buf[got] = one[0]
            got += 1
        return bytes(buf[:got])

    async def read(self, n=256):
        while True:
            data = self._take(n)
            if data:
                return data
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
        agent's rule, see agent/mo/ext.py)."""
        from agent.mo import ext

        guard = self.app.guard
        ext.add_repl(self.app.tree, self._repl, guard.owners if guard is not None else ())

    def _repl(self, tree, principal, data):
        asyncio.create_task(self._stop_soon())  # after the 200 has left on the console
        return P.S_OK, "the console goes back to the REPL"

    async def _stop_soon(self):
        await asyncio.sleep_ms(100)
        self.stopped.set()

    async def run(self):
        cfg = self.config
        self.app = make_app(cfg, load_keys(), self.log)
        self.add_repl_node()
        links = []
        if cfg.get("uart") or cfg.get("tcp"):
            import dmlinks

            links = dmlinks.start(self, cfg)
        console = cfg.get("console", True)
        if console:
            links.insert(0, "console")
        gc.collect()
        print(READY + " " + " ".join(links))
        if console:
            self.echo = False  # from here on the console carries frames
            micropython.kbd_intr(-1)
            con = Console(sys.stdin.buffer, sys.stdout.buffer)
            self.tasks.append(asyncio.create_task(server.serve_stream(self.app, con, con, "console")))
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


def escape_window(ms, poll=None):
    """True to serve; False if Ctrl-C came during the window (the REPL then stays).
    poll: called every 20 ms, on a board that delivers Ctrl-C only when Python calls out."""
    if not ms:
        return True
    print("dmagent: starting in %d ms; Ctrl-C for the REPL" % ms)
    try:
        if poll is None:
            time.sleep_ms(ms)
        else:
            for _ in range(ms // 20):
                time.sleep_ms(20)
                poll()
    except KeyboardInterrupt:
        print("dmagent: not started; this is the REPL")
        return False
    return True


def main(config=None):
    if config is None:
        try:
            config = load_config()
        except ValueError as exc:  # refuse to start on a bad config: say why, keep the REPL
            print("dmagent: %s; not started, this is the REPL" % exc)
            return
    if not escape_window(config.get("escape_ms", ESCAPE_MS)):
        return
    try:
        asyncio.run(Board(config).run())
    finally:
        micropython.kbd_intr(3)
        asyncio.new_event_loop()  # a clean loop for whatever runs next in the REPL
