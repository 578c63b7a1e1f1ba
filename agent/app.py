"""The running agent: its tree, store, dispatcher and security guard, and the links it
serves (new_link(): a Session each). Boot, which makes them from a config, is agent.assemble: loaded for
App() and dropped after it.
"""

import sys

from . import frame, unload
from . import proto as P
from . import dispatch, tree  # noqa: F401  the running agent's code: loaded with this
# module, before config, keys and the tree (code first, then data: docs/memory.md)
from .session import Session


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
        assemble.boot(self, config, state_dir, insecure, keys)
        assemble = None
        unload(".assemble")
        unload(".mo")  # seed() and bind() are boot's too; agent.mo.ext, bound in the tree, stays

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
