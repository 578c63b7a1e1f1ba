"""The running agent: its tree, store, dispatcher and security guard, and the links it
serves (new_link(): a Session each). Most of boot, which makes them from a config, is
agent.assemble: loaded for App() and dropped before the security code comes in.
"""

import gc
import sys

from . import frame, unload
from . import proto as P
from . import dispatch  # noqa: F401  the running agent's code: loaded with this module,
# before config, keys and the tree (code first, then data: docs/memory.md)
from .session import Session
from .tree import BOOT_SLACK, heap_room


def _log(msg):
    # stderr: stdout may be the very link being served (a board's console, --stdio)
    print("dmagent: " + msg, file=sys.stderr)


class App:
    def __init__(self, config=None, state_dir=None, insecure=False, log=None, keys=None):
        """keys: {principal: long-term key}, e.g. from agent.keys.load(), or a function
        returning them, called after boot (its peak is past). With no keys and no
        "security" config the security code is not even imported (heap). config: a map
        that agent.config checked (load or check): App does not check it again (heap).
        Made: tree, store, replies, guard (or None), dispatcher, dump_state(write),
        link_limits, insecure, log."""
        from . import assemble

        self.log = log or _log
        boot_use, keys, policy = assemble.boot(self, config, state_dir, insecure, keys)
        assemble = config = None  # seeded and read: its heap is worth more to the links now
        unload(".assemble")
        unload(".mo")  # seed() and bind() are boot's too; agent.mo.ext, bound in the tree, stays
        gc.collect()
        # After boot, with its code gone: its peak is past (a boot's peak is then its own code
        # and the tree, not the security code as well, so it needs less than the running agent
        # does), and the security code has the room boot's code leaves (loaded beside it, a
        # .mpy agent with a key at 110k found no 776 bytes in one piece for it).
        self.guard = None
        if keys or policy is not None:  # all of it now: at the first handshake the heap is in pieces
            from . import ccm, hal  # noqa: F401
            from .boots import count_boot
            from .secure import Guard

            hal.aes_block(bytes(16))  # loads the AES backend too
            # Counted and synced before the first handshake: in every device nonce of this boot.
            boot = count_boot(self.store.root if self.store is not None else None)
            unload(".boots")
            self.guard = self.dispatcher.guard = Guard(keys or {}, policy, self.log, boot)
        keys = None
        if boot_use is not None:
            # A next boot needs what this one needed beyond the running agent (boot_use -
            # running), for a tree as large as the one there will be: room(), docs/memory.md.
            gc.collect()
            margin = max(boot_use - gc.mem_alloc(), 0) + BOOT_SLACK
            self.tree.room = heap_room(margin)
            self.log("the tree grows while %d bytes of heap stay free (what a boot needs)" % margin)
        if self.insecure:
            self.log("WARNING: --insecure: any link may name any principal in hello. Development only!")

    def new_link(self, name, stream=True, source=None):
        """A link (an agent.session.Session): bytes in, reply frames out (receive()), knowing
        nothing of the transport it serves. stream: a TCP connection, which keeps order
        (replay: strictly increasing seq); False for a serial line or pty, where a window
        lets retransmissions through. source: the peer's address, whom its failed
        handshakes count against (default: the link itself)."""
        source = source or name
        channel = None
        if self.guard is not None:
            from .secure import Channel

            channel = Channel(self.guard, stream, source)
        link = Session(self.dispatcher, name, self.insecure, self.log, channel, self.replies)
        link.source = source
        link.decoder = frame.FrameDecoder(P.MAX_FRAME)
        link.workspace = link.decoder.workspace()  # replies are built in its receive buffer
        return link
