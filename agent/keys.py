"""Long-term keys on the device: key files read at boot, wrapped under the device's own key.

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
NEW = ".new"  # a wrapped file before it replaces the plain one (agent.keywrap)


def _files(path):
    if not os.stat(path)[0] & _DIR:
        return [path]
    names = os.listdir(path)
    for name in names:  # a wrap cut off by a power cut after the plain file went (FAT only)
        if name.endswith(".key" + NEW) and name[: -len(NEW)] not in names:
            os.rename(path + "/" + name, path + "/" + name[: -len(NEW)])
    return [path + "/" + name for name in sorted(os.listdir(path)) if name.endswith(".key")]


def has_keys(path):
    """True if path is a key file or a folder holding at least one: cheap, reads no key."""
    try:
        return bool(_files(path))
    except OSError:
        return False


def _doc(name):
    """-> (principal, key or None, wrapped blob or None) of one key file; ValueError naming
    the file (never the key)."""
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
        key = None if wrapped is not None else unhexlify(doc["key"])
        wrapped = None if wrapped is None else unhexlify(wrapped)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise ValueError("key file %s: not a dmagent key file" % name)
    # A principal names a file (keys/<principal>.key) and an ACL entry: a ServerID, no "/".
    if (not is_identifier(principal) or "/" in principal or "\\" in principal or len(principal) > 64
            or key is not None and len(key) not in (16, 32)):
        raise ValueError("key file %s: needs a principal (a ServerID) and a 16 or 32 byte key" % name)
    return principal, key, wrapped


def _unwrapped(name, principal, key, wrapped, unwrap):
    if key is None:
        key = unwrap(principal, wrapped) if unwrap is not None else None
        if key is None or len(key) not in (16, 32):
            why = "does not unwrap under this device's key" if unwrap else "wrapped by a board, for that board only"
            raise ValueError("key file %s: %s" % (name, why))
    return key


def read(name, unwrap=None):
    """-> (principal, key bytes) of one key file. A wrapped one needs unwrap(principal,
    blob) -> key or None (the board's device key); ValueError naming the file otherwise."""
    principal, key, wrapped = _doc(name)
    return principal, _unwrapped(name, principal, key, wrapped, unwrap)


class _DeviceKey:
    """The board's device key, fetched (or made) only when a file needs it."""

    def __init__(self, secrets):
        self.secrets = secrets
        self.key = None
        self.kw = None

    def _get(self, create):
        if self.kw is None:
            from . import keywrap

            self.kw = keywrap
            if callable(self.secrets):
                self.secrets = self.secrets()
        if self.key is None and self.secrets is not None:
            self.key = self.kw.device_key(self.secrets, create)
        return self.key

    def unwrap(self, principal, blob):
        dev_key = self._get(False)
        return None if dev_key is None else self.kw.unwrap(dev_key, principal, blob)

    def wrap_file(self, name, principal, key):
        dev_key = self._get(True)
        self.kw.write_wrapped(name, dev_key, principal, key)


def load(paths, each=None, secrets=None, rewrap=False):
    """-> {principal: key bytes} from files and folders; ValueError naming the file on any
    problem. each(file name): called for every key file read (the host's permission check).
    secrets: the board's secret store (its device key), or a function making it, asked for
    only when a file is wrapped or to be wrapped; rewrap: wrap plain key files in place."""
    keys = {}
    dev = _DeviceKey(secrets) if secrets is not None else None
    for path in paths:
        try:
            files = _files(path)
        except OSError:
            raise ValueError("key path %s: not found" % path)
        for name in files:
            principal, key, wrapped = _doc(name)
            key = _unwrapped(name, principal, key, wrapped, dev.unwrap if dev is not None else None)
            if each is not None:
                each(name)
            if principal in keys and keys[principal] != key:
                raise ValueError("key file %s: a second, different key for %s" % (name, principal))
            keys[principal] = key
            if rewrap and dev is not None and wrapped is None:
                dev.wrap_file(name, principal, key)
    return keys
