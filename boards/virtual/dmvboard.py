"""The agent on the virtual board's console: the ESP32's console board (dmboard: the Repl
node, the log ring) and the shared start-up (agent.startup), driven as this build runs Python.

The WebAssembly build has no loop main.py could sit in: Python runs only when the board's
JS calls it. So main.py sets the agent up and returns, and the board calls serve() each
time bytes arrive on the console (vboard_hal.console_claim). AES, randomness and the NVS
that holds the device key come from Node.js through vboard_hal (the build has none).
"""

import gc
import sys

import micropython
import vboard_hal

import dmboard
import agent
from agent import hal
from agent import proto as P

READ_CHUNK = 256


class VirtualBoard(dmboard.Board):
    def __init__(self, config):
        dmboard.Board.__init__(self, config)
        self.link = None
        self.leaving = False

    def start(self, app, heard):
        self.app = app
        self.add_repl_node()
        self.config = None  # read: its heap is worth more to the link now (App drops its own)
        self.link = app.new_link("console", False)
        self.out = sys.stdout.buffer
        gc.collect()
        used, free = vboard_hal.heap()
        print("dmagent: heap %d B in use after boot" % used)
        print(dmboard.READY + " console")
        self.out.write(b"\x00")  # ends the text above for a frame decoder
        self.echo = False  # from here on the console carries frames
        if heard:
            self._answer(heard)  # what came during the escape window, answered first
        vboard_hal.console_claim(self.serve)

    def _answer(self, data):
        try:
            for reply in self.link.receive(data):
                self.out.write(reply)
        except MemoryError:  # these bytes are lost (the peer retries)
            gc.collect()
            self.log("console: out of memory, input dropped")

    def serve(self):
        """Answer every frame the bytes waiting complete; called by the board on arrival."""
        try:
            while True:
                data = vboard_hal.uart_read(READ_CHUNK)
                if not data:
                    break
                self._answer(data)
        except Exception as exc:  # never let one bad moment end the serving
            self.log("console: %r" % (exc,))
        if self.leaving:
            self.stop()

    def _repl(self, tree, principal, data):
        self.leaving = True  # once the 200 is on the console
        return P.S_OK, "the console goes back to the REPL"

    def stop(self):
        self.leaving = False
        self.link.close()
        self.link = None
        micropython.kbd_intr(3)
        self.echo = True
        print("\r\ndmagent: stopped; the console is the REPL again")
        vboard_hal.console_release()


def _read(buf):
    data = vboard_hal.uart_read(len(buf))
    buf[: len(data)] = data
    return len(data)


def _boot(startup, keyed):
    config = startup.load_config()
    heard = None
    if startup.console_wanted(config):
        from agent import escape

        escaped, heard = escape.escape_window(config, keyed, _read, bytearray(64), 1000)
        escape = None
        agent.unload("agent.escape")
        if escaped:
            return None
    board = VirtualBoard(config)
    return board, startup.board_app(config, board.log, vboard_hal.NVS("dmagent")), heard


def main():
    """As dmboard.main: boot, then serve; a board with keys that cannot boot halts."""
    from agent import startup

    hal.set_aes_backend(lambda key: vboard_hal.aes(key).encrypt)
    hal.set_random(vboard_hal.urandom)
    keyed = startup.has_keys()
    booted = startup.boot_or_halt(lambda: _boot(startup, keyed), keyed)
    startup = None
    agent.unload("agent.startup")  # boot is over: its code leaves the heap
    if booted is not None:
        board, app, heard = booted
        board.start(app, heard)
