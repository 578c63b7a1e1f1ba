"""The boot count in the state folder: counted, and on flash, before the first handshake.

It goes into every device handshake nonce (agent/secure.py): a board whose RNG repeats
after a reset still never repeats a nonce, so a recorded session cannot be replayed.
"""

import os

from . import hal

_FILE = "boots"


def count_boot(state_dir):
    """This boot's number (1, 2, ...), synced to state_dir/boots before it returns. Without
    a folder, or one that cannot be written: a random number (the RNG is all there is)."""
    if not state_dir:
        return int.from_bytes(hal.random_bytes(4), "big")
    path = state_dir.rstrip("/") + "/" + _FILE
    try:
        with open(path, "rb") as f:
            count = int(f.read(16))
    except OSError:
        count = 0  # the first boot
    except ValueError:  # damaged: a count from the RNG rather than one that may repeat
        count = int.from_bytes(hal.random_bytes(3), "big")
    count = (count + 1) & 0x3FFFFFFF
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(("%d" % count).encode())
            f.flush()
            if hasattr(os, "fsync"):
                os.fsync(f.fileno())
        os.rename(tmp, path)  # a crash leaves the old count or the new, never a torn one
    except OSError:
        return int.from_bytes(hal.random_bytes(4), "big")
    return count
