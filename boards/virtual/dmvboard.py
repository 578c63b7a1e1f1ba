"""The agent on the virtual board's console: the ESP32's console board (dmboard: config,
keys, the Repl node, the log ring), driven the way this build runs Python.

The WebAssembly build has no loop main.py could sit in: Python runs only when the board's
JS calls it. So main.py sets the agent up and returns, and the board calls serve() each
time bytes arrive on the console (vboard_hal.console_claim). AES and randomness come from
Node.js through vboard_hal (the build has no cryptolib and no os.urandom).
"""

import gc
import sys

import micropython
import vboard_hal

import dmboard
from agent import hal

READ_CHUNK = 256


class VirtualBoard(dmboard.Board):
    def __init__(self, config):
        dmboard.Board.__init__(self, config)
        self.link = None
        self.leaving = False

    def start(self):
        hal.set_aes_backend(lambda key: vboard_hal.aes(key).encrypt)
        hal.set_random(vboard_hal.urandom)
        cfg = self.config
        self.app = dmboard.make_app(cfg, dmboard.load_keys(), self.log)
        self.add_repl_node()
        self.link = self.app.new_link("console", False)
        self.out = sys.stdout.buffer
        gc.collect()
        used, free = vboard_hal.heap()
        print("dmagent: heap %d B in use after boot" % used)
        print(dmboard.READY + " console")
        self.echo = False  # from here on the console carries frames
        micropython.kbd_intr(-1)
        vboard_hal.console_claim(self.serve)

    def serve(self):
        """Answer every frame the bytes waiting complete; called by the board on arrival."""
        link, out = self.link, self.out
        try:
            while True:
                data = vboard_hal.uart_read(READ_CHUNK)
                if not data:
                    break
                try:
                    for reply in link.receive(data):
                        out.write(reply)
                except MemoryError:  # these bytes are lost (the peer retries)
                    gc.collect()
                    self.log("console: out of memory, input dropped")
        except Exception as exc:  # never let one bad moment end the serving
            self.log("console: %r" % (exc,))
        if self.leaving:
            self.stop()

    def _repl(self, tree, principal, data):
        self.leaving = True  # once the 200 is on the console
        return dmboard.P.S_OK, "the console goes back to the REPL"

    def stop(self):
        self.leaving = False
        self.link.close()
        self.link = None
        micropython.kbd_intr(3)
        self.echo = True
        print("\r\ndmagent: stopped; the console is the REPL again")
        vboard_hal.console_release()


def main(config=None):
    if config is None:
        try:
            config = dmboard.load_config()
        except ValueError as exc:  # refuse to start on a bad config: say why, keep the REPL
            print("dmagent: %s; not started, this is the REPL" % exc)
            return
    if not dmboard.escape_window(config.get("escape_ms", dmboard.ESCAPE_MS), vboard_hal.uart_any):
        return
    VirtualBoard(config).start()
