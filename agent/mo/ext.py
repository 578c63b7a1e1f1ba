"""./DevDetail/Ext's code: what the agent itself exposes beyond the standard leaves.

Uptime is a live value (read on every Get); Echo is an Exec node that answers with the data
it was given, so a gateway can test the Exec path end to end without side effects. Resident
while the agent runs (the tree holds these hooks, and their globals with them), so the
binding, and the Repl node a board adds, are agent.mo's, dropped after boot.
"""

import time

from .. import proto as P

try:
    _ticks = time.ticks_ms
    _diff = time.ticks_diff
except AttributeError:  # CPython

    def _ticks():
        return int(time.monotonic() * 1000)

    def _diff(a, b):
        return a - b


_BOOT = _ticks()
# Exec on these only for security.owners speaking for themselves (agent/dispatch.py).
OWNER_ONLY = (["DevDetail", "Ext", "Repl"],)


def uptime():
    return _diff(_ticks(), _BOOT) // 1000  # seconds: stays a small int for 34 years


def echo(tree, principal, data):
    return P.S_OK, data
