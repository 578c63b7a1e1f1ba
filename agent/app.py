"""Assembles one agent from a config: tree, standard objects, store, dispatcher.

State on flash wins over config: config seeds the tree on first boot only, so a
value a server changed is not reset by a reboot. Links are made with new_link().
"""

import sys

import agent
from agent import cbor
from agent import frame
from agent import proto as P
from agent.dispatch import Dispatcher
from agent import mo
from agent.session import Session
from agent.tree import Tree

FEATURES = ("get", "add", "replace", "delete", "exec", "acl", "check", "list", "atomic", "props")


def _log(msg):
    # stderr: stdout may be the very link being served (a board's console, --stdio)
    print("dmagent: " + msg, file=sys.stderr)


class App:
    def __init__(self, config=None, state_dir=None, insecure=False, log=None):
        self.config = config or {}
        self.insecure = insecure or bool(self.config.get("insecure"))
        self.log = log or _log
        self.tree = Tree(self.config.get("limits"))
        self.store = None
        if state_dir:
            from agent.store import Store

            self.store = Store(state_dir)
        self._boot()
        self.dispatcher = Dispatcher(
            self.tree,
            self.store,
            cbor.dumps,
            self._info(),
            self.config.get("open_reads", ()),
        )
        self.links = []
        if self.insecure:
            self.log("WARNING: --insecure: any link may name any principal in hello. Development only!")

    def _boot(self):
        tree = self.tree
        snapshot, records = (None, [])
        if self.store is not None:
            snapshot, records = self.store.load()
        if snapshot is None and not records:
            mo.seed(tree, self.config)
            mo.bind(tree)
            if self.store is not None:
                self.store.compact(cbor.dumps(tree.dump()))
            return
        if snapshot is not None:
            tree.restore(cbor.loads(snapshot, 64))
        for payload in records:
            for record in cbor.loads(payload, 64):
                tree.apply(record)
        mo.bind(tree)
        self.log("state loaded: %d nodes, %d journal entries" % (tree.node_count(), len(records)))

    def _info(self):
        try:
            devid = self.tree.value("./DevInfo/DevId")
        except Exception:
            devid = None
        return {
            "proto": P.PROTOCOL_VERSION,
            "agent": agent.__version__,
            "runtime": sys.implementation.name,
            "devid": devid,
            "max_frame": P.MAX_FRAME,
            "max_depth": P.MAX_DEPTH,
            "features": list(FEATURES),
            "insecure": self.insecure,
        }

    def new_link(self, name):
        return Link(self, name)


class Link:
    """Bytes in, reply frames out: knows nothing of the transport it serves."""

    def __init__(self, app, name):
        self.name = name
        self.decoder = frame.FrameDecoder(P.MAX_FRAME)
        self.session = Session(app.dispatcher, name, app.insecure, app.log)

    def receive(self, data):
        replies = []
        for kind, body in self.decoder.feed(data):
            reply = self.session.on_frame(kind, body)
            if reply is not None:
                replies.append(reply)
        return replies
