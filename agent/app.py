"""Assembles one agent from a config: tree, standard objects, store, dispatcher.

State on flash wins over config: config seeds the tree on first boot only, so a
value a server changed is not reset by a reboot. Links are made with new_link().
"""

import gc
import sys

from . import __version__, unload
from . import cbor
from . import frame
from . import proto as P
from .dispatch import Dispatcher
from . import mo
from .session import Session
from .tree import Tree

FEATURES = ("get", "add", "replace", "delete", "exec", "acl", "check", "list", "atomic", "props")


def _log(msg):
    # stderr: stdout may be the very link being served (a board's console, --stdio)
    print("dmagent: " + msg, file=sys.stderr)


class App:
    def __init__(self, config=None, state_dir=None, insecure=False, log=None, keys=None):
        """keys: {principal: long-term key}, e.g. from agent.keys.load(), or a function
        returning them, called after boot (its peak is past). With no keys and no
        "security" config the security code is not even imported (heap)."""
        self.config = config or {}
        self.insecure = insecure or bool(self.config.get("insecure"))
        self.log = log or _log
        self.tree = Tree(self.config.get("limits"))
        self.store = None
        if state_dir:
            from .store import Store

            self.store = Store(state_dir)
        self._boot()
        if callable(keys):  # a board's key files, unwrapped past boot's peak, its code gone
            unload(".mo.first_boot")
            unload(".recovery")
            gc.collect()
            keys = keys()
        for name in (".mo.first_boot", ".recovery", ".keys", ".keywrap"):
            unload(name)
        self.guard = None
        if keys or "security" in self.config:
            # After boot (its peak is past), and all of it now rather than at the first
            # handshake, when the heap is in smaller pieces.
            from . import ccm, hal  # noqa: F401
            from .secure import Guard

            hal.aes_block(bytes(16))  # loads the AES backend too
            self.guard = Guard(keys or {}, self.config.get("security"), self.log)
        self.dispatcher = Dispatcher(
            self.tree,
            self.store,
            cbor.dumps,
            self._info(),
            self.config.get("open_reads", ()),
            self.dump_state,
        )
        self.links = []
        self.config = None  # seeded and read: its heap is worth more to the links now
        if self.insecure:
            self.log("WARNING: --insecure: any link may name any principal in hello. Development only!")

    def _boot(self):
        tree = self.tree
        found = [0, 0]  # snapshots, journal records

        def restore(snapshot):
            if snapshot is not None:
                found[0] = 1
                tree.restore(cbor.loads(snapshot, 64))

        def apply(payload):
            found[1] += 1
            for record in cbor.loads(payload, 64):
                tree.apply(record)

        if self.store is not None:
            self.store.load(restore, apply)
        if not found[0] and not found[1]:
            mo.seed(tree, self.config)
            mo.bind(tree)
            if self.store is not None:
                self.store.compact(self.dump_state)
            return
        mo.bind(tree)
        self.log("state loaded: %d nodes, %d journal entries" % (tree.node_count(), found[1]))

    def dump_state(self, write):
        """The tree's snapshot, streamed to write() in small pieces (see Store.compact)."""
        cbor.dump(self.tree.dump(), write)

    def _info(self):
        try:
            devid = self.tree.value("./DevInfo/DevId")
        except Exception:
            devid = None
        return {
            "proto": P.PROTOCOL_VERSION,
            "agent": __version__,
            "runtime": sys.implementation.name,
            "devid": devid,
            "max_frame": P.MAX_FRAME,
            "max_depth": P.MAX_DEPTH,
            "features": list(FEATURES),
            "insecure": self.insecure,
        }

    def new_link(self, name, stream=True):
        """stream: a TCP connection, which keeps order (replay: strictly increasing seq);
        False for a serial line or pty, where a window lets retransmissions through."""
        return Link(self, name, stream)


class Link:
    """Bytes in, reply frames out: knows nothing of the transport it serves."""

    def __init__(self, app, name, stream=True):
        self.name = name
        channel = None
        if app.guard is not None:
            from .secure import Channel

            channel = Channel(app.guard, stream)
        self.decoder = frame.FrameDecoder(P.MAX_FRAME)
        self.session = Session(app.dispatcher, name, app.insecure, app.log, channel)
        self.session.workspace = self.decoder.workspace()

    def close(self):
        self.session.close()
        self.decoder.close()

    def receive(self, data, end=None):
        """Yield the reply frames to what data (data[:end]) completes. Each is a view of a
        shared buffer: write it out (or copy it) before taking the next."""
        for kind, body in self.decoder.feed(data, end):
            reply = self.session.on_frame(kind, body)
            if reply is not None:
                yield reply
