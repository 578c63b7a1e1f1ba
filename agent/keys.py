"""Long-term keys on the device: key files made by `dmagent keys new`, read at boot.

A key file is JSON {"principal": ID, "key": HEX, ...}; a path may also be a folder of
*.key files. Keys stay in this dict and in session key schedules: never logged, never in
the tree (a Get cannot reach them).
"""

import json
import os
from binascii import unhexlify

_DIR = 0x4000  # S_IFDIR: MicroPython's os has no stat helpers


def _files(path):
    if os.stat(path)[0] & _DIR:
        return [path + "/" + name for name in sorted(os.listdir(path)) if name.endswith(".key")]
    return [path]


def load(paths):
    """-> {principal: key bytes}; ValueError naming the file on any problem."""
    keys = {}
    for path in paths:
        try:
            files = _files(path)
        except OSError:
            raise ValueError("key path %s: not found" % path)
        for name in files:
            try:
                with open(name) as f:
                    doc = json.load(f)
                principal = doc["principal"]
                key = unhexlify(doc["key"])
            except (OSError, ValueError, KeyError, TypeError):
                raise ValueError("key file %s: not a dmagent key file" % name)
            if type(principal) is not str or not principal or len(key) not in (16, 32):
                raise ValueError("key file %s: needs a principal and a 16 or 32 byte key" % name)
            if principal in keys and keys[principal] != key:
                raise ValueError("key file %s: a second, different key for %s" % (name, principal))
            keys[principal] = key
    return keys
