"""Key files made by `dmagent keys new`: the one reader, for the device at boot (plain, or
wrapped under the device's own key) and for the host tools (host_tools/client/keys.py wraps it
with its permission warning).

A key file is JSON {"principal": ID, "key": HEX, ...} as `dmagent keys new` makes it, or
{"principal": ID, "wrapped": HEX} once a board has wrapped it: AES-CCM (16-byte tag, the
principal as associated data) under a device key kept outside the file system (ESP32: NVS).
Wrapping stops a copied key file or a file-system dump from giving the key; whoever can
also read the device key (a REPL user on a board without NVS encryption) can still unwrap
it (docs/security.md). Keys are never logged and never in the tree.
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


def has_keys(path):
    """True if path is a key file or a folder holding at least one: reads no key."""
    try:
        return bool(_files(path))
    except OSError:
        return False


def read(name, unwrap=None):
    """-> (principal, key bytes) of one key file; ValueError naming the file (never the key).
    A wrapped one needs unwrap(principal, blob) -> key or None: the board's device key."""
    try:
        f = open(name)
    except OSError as exc:
        why = "not found" if exc.errno == 2 else getattr(exc, "strerror", None) or "cannot be read"
        raise ValueError("key file %s: %s" % (name, why))
    try:
        with f:
            doc = json.load(f)
        principal = doc["principal"]
        wrapped = doc.get("wrapped")
        key = unhexlify(doc["key"] if wrapped is None else wrapped)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise ValueError("key file %s: not a dmagent key file" % name)
    if wrapped is not None:
        key = unwrap(principal, key) if unwrap is not None and type(principal) is str else None
        if key is None:
            raise ValueError("key file %s: wrapped, and not under this device's key" % name)
    # A principal names a file (keys/<principal>.key) and an ACL entry: a ServerID, no "/".
    if (not is_identifier(principal) or "/" in principal or "\\" in principal or len(principal) > 64
            or len(key) not in (16, 32)):
        raise ValueError("key file %s: needs a principal (a ServerID) and a 16 or 32 byte key" % name)
    return principal, key


def load(paths, each=None, secrets=None, rewrap=False):
    """-> {principal: key bytes} from files and folders; ValueError naming the file on any
    problem. each(file name): called for every key file read (the host's permission check).
    secrets: the board's secret store, or a function making it, for wrapped files;
    rewrap: wrap plain ones in place (agent.keywrap, loaded only when a file needs it)."""
    keys = {}
    dev = []  # agent.keywrap's DeviceKey, made when a file first needs it

    def device():
        if not dev:
            from .keywrap import DeviceKey

            dev.append(DeviceKey(secrets))
        return dev[0]

    unwrap = (lambda principal, blob: device().unwrap(principal, blob)) if secrets is not None else None
    for path in paths:
        try:
            files = _files(path)
        except OSError:
            raise ValueError("key path %s: not found" % path)
        for name in files:
            principal, key = read(name, unwrap)
            if each is not None:
                each(name)
            if principal in keys and keys[principal] != key:
                raise ValueError("key file %s: a second, different key for %s" % (name, principal))
            keys[principal] = key
            if rewrap and secrets is not None:
                device().wrap_file(name, principal, key)
    return keys
