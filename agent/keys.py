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


def load(paths, secrets=None, rewrap=False):
    """-> {principal: key bytes}; ValueError naming the file on any problem. secrets: the
    board's secret store (device key), or a function making it, asked for only when a file
    is wrapped or to be wrapped; rewrap: replace plain key files by wrapped ones."""
    keys = {}
    dev_key = None
    kw = None  # agent.keywrap, once needed
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
                wrapped = doc.get("wrapped")
                key = unhexlify(doc["key"]) if wrapped is None else None
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                raise ValueError("key file %s: not a dmagent key file" % name)
            if type(principal) is not str or not principal:
                raise ValueError("key file %s: needs a principal" % name)
            if key is None or rewrap and secrets is not None:
                if kw is None:
                    from . import keywrap as kw
                if callable(secrets):
                    secrets = secrets()
            if key is None:
                if dev_key is None and secrets is not None:
                    dev_key = kw.device_key(secrets, create=False)
                if dev_key is None:
                    raise ValueError("key file %s: wrapped, and this device has no device key" % name)
                try:
                    key = kw.unwrap(dev_key, principal, unhexlify(wrapped))
                except (ValueError, TypeError):
                    key = None
                if key is None:
                    raise ValueError("key file %s: does not unwrap under this device's key" % name)
            if len(key) not in (16, 32):
                raise ValueError("key file %s: needs a 16 or 32 byte key" % name)
            if principal in keys and keys[principal] != key:
                raise ValueError("key file %s: a second, different key for %s" % (name, principal))
            keys[principal] = key
            if rewrap and secrets is not None and wrapped is None:
                if dev_key is None:
                    dev_key = kw.device_key(secrets)
                kw.write_wrapped(name, dev_key, principal, key)
    return keys
