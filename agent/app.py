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
from .session import Replies, Session
from .tree import BOOT_SLACK, Tree, heap_room

_PKG = __name__[: __name__.rindex(".")]  # "agent" on a board, "dmagent.agent" on a host
FEATURES = ("get", "add", "replace", "delete", "exec", "acl", "check", "list", "atomic", "props", "chunks")


def _unload_boot_code():
    for name in (".mo.first_boot", ".recovery", ".repair", ".keys", ".keywrap", ".journal", ".device"):
        unload(name)
    gc.collect()


def _in_use():
    """Heap in use after a collection (MicroPython), or None (CPython: no heap to mind)."""
    if not hasattr(gc, "mem_alloc"):
        return None
    gc.collect()
    return gc.mem_alloc()


def _log(msg):
    # stderr: stdout may be the very link being served (a board's console, --stdio)
    print("dmagent: " + msg, file=sys.stderr)


class App:
    def __init__(self, config=None, state_dir=None, insecure=False, log=None, keys=None):
        """keys: {principal: long-term key}, e.g. from agent.keys.load(), or a function
        returning them, called after boot (its peak is past). With no keys and no
        "security" config the security code is not even imported (heap). config: a map
        that agent.config checked (load or check): App does not check it again (heap)."""
        self.config = config or {}
        self.insecure = insecure or bool(self.config.get("insecure"))
        self.log = log or _log
        self.tree = Tree(self.config.get("limits"))
        self.replies = Replies()  # write replies, device-wide: journaled with their writes
        self.store = None
        if state_dir:
            from .store import Store

            self.store = Store(state_dir, reserve=True)
        self.guard = None
        self._keys = keys
        self._boot_use = None  # no store: no next boot to keep room for
        if hasattr(gc, "threshold"):
            # MicroPython: a collection every 2 KB allocated while boot runs: the garbage of
            # each snapshot item (and of each module loaded) is freed before the next is
            # made and its holes are the next one's, not thousands between the tree's and
            # the code's blocks (largest free block after a full tree's boot: 192 bytes
            # without, 13 KB with: docs/memory.md)
            gc.threshold(2048)
        try:
            self._boot()
        finally:
            if hasattr(gc, "threshold"):
                gc.threshold(-1)  # collections when the heap runs out, as before
        boot_use = self._boot_use
        _unload_boot_code()
        if callable(self._keys):  # a board's key files, unwrapped with boot's code gone
            self._keys = self._keys()
            _unload_boot_code()
        # After boot: its peak is past, and a boot's peak is then its own code and the tree
        # (not the security code as well), so it needs less than the running agent does.
        self._load_security()
        self.dispatcher = Dispatcher(
            self.tree,
            self.store,
            cbor.dumps,
            self._info(),
            self.config.get("open_reads", ()),
            self.dump_state,
            self.guard,
        )
        self.dispatcher.replies = self.replies  # re-journaled after each compaction
        self.links = []
        self.link_limits = self.config.get("links")  # bounds on TCP links (agent/server.py)
        self.config = None  # seeded and read: its heap is worth more to the links now
        if boot_use is not None:
            # A next boot needs what this one needed beyond the running agent (boot_use -
            # running), for a tree as large as the one there will be: room(), docs/memory.md.
            margin = max(boot_use - _in_use(), 0) + BOOT_SLACK
            self.tree.room = heap_room(margin)
            self.log("the tree grows while %d bytes of heap stay free (what a boot needs)" % margin)
        if self.insecure:
            self.log("WARNING: --insecure: any link may name any principal in hello. Development only!")

    def _load_security(self):
        """All of the security code now (at the first handshake the heap is in pieces)."""
        if not (self._keys or "security" in self.config):
            return
        from . import ccm, hal  # noqa: F401
        from .boots import count_boot
        from .secure import Guard

        hal.aes_block(bytes(16))  # loads the AES backend too
        # Counted and synced before the first handshake: in every device nonce of this boot.
        boot = count_boot(self.store.root if self.store is not None else None)
        unload(".boots")
        self.guard = Guard(self._keys or {}, self.config.get("security"), self.log, boot)
        self._keys = None

    def _boot(self):
        tree = self.tree
        replies = self.replies
        found = [0, 0]  # snapshots, journal records

        def restore(read):  # the snapshot, streamed from flash an item at a time
            if read is not None:
                found[0] = 1
                tree.restore(read)

        def apply(payload):
            found[1] += 1
            for record in cbor.loads(payload, 64):
                if record[0] == "rep":
                    replies.load((record,))
                else:
                    tree.apply(record)

        store = self.store
        if store is not None:
            # Code first, into a whole heap, then the tree (loaded mid-replay, code finds no
            # room). agent.journal comes with the first snapshot or record (Tree.restore,
            # Tree.apply), still before the tree: a first boot never needs it.
            __import__(_PKG + ".device")
            store.load(restore, apply)
        damaged = store is not None and store.damage is not None
        if damaged:
            self.log("ERROR: STORAGE DAMAGED: " + store.damage)
        if not found[0] and not found[1]:
            # A first boot: the code that read the store (a reboot holds it to its end) leaves
            # before the seeding code comes in, the first boot's peak; counted back below.
            reading = _in_use()
            unload(".recovery")
            if reading is not None:
                reading -= _in_use()
            mo.seed(tree, self.config)  # its code loaded, run and gone
            mo.bind(tree)
            if store is not None and not damaged:
                if reading is not None:
                    # What a reboot of this state holds here: the tree, the config and boot's
                    # code, agent.journal too (loaded into the seeding code's room to be
                    # measured); not the seeding code, which no reboot loads (counted, it
                    # refused a 110k .mpy agent's first Add).
                    __import__(_PKG + ".journal")
                    self._boot_use = _in_use() + reading
                _unload_boot_code()  # room for the snapshot code beside the security code
                store.compact(self.dump_state)
            return
        mo.bind(tree)
        if store is not None:
            self._boot_use = _in_use()  # boot's own code and data still loaded, and the config
        self.log("state loaded: %d nodes, %d journal entries" % (tree.node_count(), found[1]))


    def dump_state(self, write):
        """The tree's snapshot, streamed to write() in small pieces (see Store.compact)."""
        self.tree.dump(write)

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

    def new_link(self, name, stream=True, source=None):
        """stream: a TCP connection, which keeps order (replay: strictly increasing seq);
        False for a serial line or pty, where a window lets retransmissions through.
        source: the peer's address, whom its failed handshakes count against (default: the
        link itself)."""
        return Link(self, name, stream, source)


class Link:
    """Bytes in, reply frames out: knows nothing of the transport it serves."""

    def __init__(self, app, name, stream=True, source=None):
        self.name = name
        self.source = source or name
        channel = None
        if app.guard is not None:
            from .secure import Channel

            channel = Channel(app.guard, stream, self.source)
        self.decoder = frame.FrameDecoder(P.MAX_FRAME)
        self.session = Session(app.dispatcher, name, app.insecure, app.log, channel, app.replies)
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
