"""Boot: assembles one agent (agent.app.App) from a config: tree, standard objects, store,
dispatcher. Loaded for boot only and dropped after it (App, which then loads the security
code into its room), so its code is not in the running agent's heap.

State on flash wins over config: config seeds the tree on first boot only, so a
value a server changed is not reset by a reboot.
"""

import gc
import sys

from . import __version__, unload
from . import cbor
from . import proto as P
from .dispatch import Dispatcher
from . import mo
from .session import Replies
from .tree import Tree

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


def boot(app, config, state_dir, insecure, keys):
    """What App() does (see there) but the security code and the boot margin; app.log is
    set. -> (the heap a boot holds, or None; the keys, unwrapped; the security policy, or
    None where config has none)."""
    config = config or {}
    app.insecure = insecure or bool(config.get("insecure"))
    tree = app.tree = Tree(config.get("limits"))
    app.dump_state = tree.dump  # the tree's snapshot, streamed to write() in small pieces (see Store.compact)
    app.replies = Replies()  # write replies, device-wide: journaled with their writes
    app.store = None
    if state_dir:
        from .store import Store

        app.store = Store(state_dir, reserve=True)
    if hasattr(gc, "threshold"):
        # MicroPython: a collection every 2 KB allocated while boot runs: the garbage of
        # each snapshot item (and of each module loaded) is freed before the next is
        # made and its holes are the next one's, not thousands between the tree's and
        # the code's blocks (largest free block after a full tree's boot: 192 bytes
        # without, 13 KB with: docs/memory.md)
        gc.threshold(2048)
    try:
        boot_use = _boot(app, config)
    finally:
        if hasattr(gc, "threshold"):
            gc.threshold(-1)  # collections when the heap runs out, as before
    _unload_boot_code()
    if callable(keys):  # a board's key files, unwrapped with boot's code gone
        keys = keys()
        _unload_boot_code()
    try:
        devid = tree.value("./DevInfo/DevId")
    except Exception:
        devid = None
    info = {
        "proto": P.PROTOCOL_VERSION,
        "agent": __version__,
        "runtime": sys.implementation.name,
        "devid": devid,
        "max_frame": P.MAX_FRAME,
        "max_depth": P.MAX_DEPTH,
        "features": FEATURES,  # encoded as an array all the same
        "insecure": app.insecure,
    }
    app.dispatcher = Dispatcher(tree, app.store, cbor.dumps, info, config.get("open_reads", ()),
                                app.dump_state)  # its guard: App's, once the security code is in
    app.dispatcher.replies = app.replies  # re-journaled after each compaction
    app.link_limits = config.get("links")  # bounds on TCP links (agent/server.py)
    return boot_use, keys, config["security"] if "security" in config else None


def _boot(app, config):
    """The tree from flash, or seeded from config on a first boot. -> the heap a boot
    holds (its code, the config and the tree), or None without a store (no next boot)."""
    tree = app.tree
    replies = app.replies
    found = [0, 0]  # snapshots, journal records

    def restore(read):  # the snapshot, streamed from flash an item at a time
        if read is not None:
            found[0] = 1
            from . import journal

            journal.restore(tree, read)

    def apply(payload):
        found[1] += 1
        for record in cbor.loads(payload, 64):
            if record[0] == "rep":
                replies.put(record[1], record[2], record[3], record[4])
            else:
                from . import journal

                journal.apply(tree, record)

    store = app.store
    if store is not None:
        # Code first, into a whole heap, then the tree (loaded mid-replay, code finds no
        # room). agent.journal comes with the first snapshot or tree record (restore,
        # apply), still before the tree: a first boot never needs it.
        __import__(_PKG + ".device")
        store.load(restore, apply)
    damaged = store is not None and store.damage is not None
    if damaged:
        app.log("ERROR: STORAGE DAMAGED: " + store.damage)
    if not found[0] and not found[1]:
        # A first boot: the code that read the store (a reboot holds it to its end) leaves
        # before the seeding code comes in, the first boot's peak; counted back below.
        reading = _in_use()
        unload(".recovery")
        if reading is not None:
            reading -= _in_use()
        mo.seed(tree, config)  # its code loaded, run and gone
        mo.bind(tree)
        boot_use = None
        if store is not None and not damaged:
            if reading is not None:
                # What a reboot of this state holds here: the tree, the config and boot's
                # code, agent.journal too (loaded into the seeding code's room to be
                # measured); not the seeding code, which no reboot loads (counted, it
                # refused a 110k .mpy agent's first Add).
                __import__(_PKG + ".journal")
                boot_use = _in_use() + reading
            _unload_boot_code()  # room for the snapshot code beside the security code
            store.compact(app.dump_state)
        return boot_use
    mo.bind(tree)
    boot_use = None
    if store is not None:
        boot_use = _in_use()  # boot's own code and data still loaded, and the config
    app.log("state loaded: %d nodes, %d journal entries" % (tree.node_count(), found[1]))
    return boot_use
