"""./DevDetail/Ext: what the agent itself exposes beyond the standard leaves.

Uptime is a live value (bound, read on every Get); Echo is an Exec node that answers with
the data it was given, so a gateway can test the Exec path end to end without side effects.
Repl exists where a board gives it a handler (add_repl): its Exec hands the console to the
REPL, which reads every key file, so it is for owners only: a rule of the dispatcher, not
of its ACL or its handler. Boards register their own handlers the same way (tree.on_exec).
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
REPL = "./DevDetail/Ext/Repl"
# Exec on these only for security.owners speaking for themselves (agent/dispatch.py).
OWNER_ONLY = (["DevDetail", "Ext", "Repl"],)


def _uptime():
    return _diff(_ticks(), _BOOT) // 1000  # seconds: stays a small int for 34 years


def _echo(tree, principal, data):
    return P.S_OK, data


def bind(tree):
    if tree.exists("./DevDetail/Ext/Uptime"):
        tree.bind("./DevDetail/Ext/Uptime", read=_uptime)
    if tree.exists("./DevDetail/Ext/Echo"):
        tree.on_exec("./DevDetail/Ext/Echo", _echo)


def add_repl(tree, handler, owners=()):
    """The Repl node, bound to the board's handler. Its ACL is made afresh at every boot from
    security.owners (not journaled): it shows the rule, the dispatcher enforces it."""
    acl = "Exec=" + "+".join(owners) + "&Get=*" if owners else "Get=*"
    if tree.exists(REPL):
        tree.set_acl(REPL, acl)
    elif tree.exists("./DevDetail/Ext"):
        tree.put(REPL, "", "chr", acl=acl, flags=PERMANENT | READONLY)
    else:
        return
    tree.on_exec(REPL, handler)
