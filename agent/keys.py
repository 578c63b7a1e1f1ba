"""Key files made by `dmagent keys new`: the one reader, for the device at boot and for the
host tools (host_tools/client/keys.py wraps it with its permission warning).

A key file is JSON {"principal": ID, "key": HEX, ...}; a path may also be a folder of
*.key files. Keys stay in this dict and in session key schedules: never logged, never in
the tree (a Get cannot reach them), never in an error message.
"""

import json
import os
from binascii import unhexlify

from .acl import is_identifier

_DIR = 0x4000  # S_IFDIR: MicroPython's os has no stat helpers


def _files(path):
    if os.stat(path)[0] & _DIR:
        return [path + "/" + name for name in sorted(os.listdir(path)) if name.endswith(".key")]
    return [path]


def read(name):
    """-> (principal, key bytes) of one key file; ValueError naming the file (never the key)."""
    try:
        f = open(name)
    except OSError as exc:
        why = "not found" if exc.errno == 2 else getattr(exc, "strerror", None) or "cannot be read"
        raise ValueError("key file %s: %s" % (name, why))
    try:
        with f:
            doc = json.load(f)
        principal = doc["principal"]
        key = unhexlify(doc["key"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise ValueError("key file %s: not a dmagent key file" % name)
    # A principal names a file (keys/<principal>.key) and an ACL entry: a ServerID, no "/".
    if (not is_identifier(principal) or "/" in principal or "\\" in principal or len(principal) > 64
            or len(key) not in (16, 32)):
        raise ValueError("key file %s: needs a principal (a ServerID) and a 16 or 32 byte key" % name)
    return principal, key


def load(paths, each=None):
    """-> {principal: key bytes} from files and folders; ValueError naming the file on any
    problem. each(file name): called for every key file read (the host's permission check)."""
    keys = {}
    for path in paths:
        try:
            files = _files(path)
        except OSError:
            raise ValueError("key path %s: not found" % path)
        for name in files:
            principal, key = read(name)
            if each is not None:
                each(name)
            if principal in keys and keys[principal] != key:
                raise ValueError("key file %s: a second, different key for %s" % (name, principal))
            keys[principal] = key
    return keys
