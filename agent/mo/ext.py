"""./DevDetail/Ext: what the agent itself exposes beyond the standard leaves.

Uptime is a live value (bound, read on every Get); Echo is an Exec node that answers with
the data it was given, so a gateway can test the Exec path end to end without side effects.
Boards register their own handlers the same way (tree.bind, tree.on_exec).
"""

import time

from .. import proto as P
from ..nodes import PERMANENT, READONLY

try:
    _ticks = time.ticks_ms
    _diff = time.ticks_diff
except AttributeError:  # CPython

    def _ticks():
        return int(time.monotonic() * 1000)

    def _diff(a, b):
        return a - b


_BOOT = _ticks()


def seed(tree, server_ids):
    tree.put("./DevDetail/Ext", fmt="node", flags=PERMANENT)
    tree.put("./DevDetail/Ext/Uptime", 0, "int", flags=PERMANENT | READONLY)
    exec_acl = "Exec=" + "+".join(server_ids) + "&Get=*" if server_ids else ""
    tree.put("./DevDetail/Ext/Echo", "", "chr", acl=exec_acl, flags=PERMANENT | READONLY)


def _uptime():
    return _diff(_ticks(), _BOOT) // 1000  # seconds: stays a small int for 34 years


def _echo(tree, principal, data):
    return P.S_OK, data


def bind(tree):
    if tree.exists("./DevDetail/Ext/Uptime"):
        tree.bind("./DevDetail/Ext/Uptime", read=_uptime)
    if tree.exists("./DevDetail/Ext/Echo"):
        tree.on_exec("./DevDetail/Ext/Echo", _echo)
