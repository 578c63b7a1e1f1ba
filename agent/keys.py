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
from binascii import hexlify, unhexlify

_DIR = 0x4000  # S_IFDIR: MicroPython's os has no stat helpers
DEVICE_KEY = "devkey"  # the blob's name in the board's secret store
_NONCE = 13
_TAG = 16
NEW = ".new"  # a wrapped file before it replaces the plain one


class FileSecrets:
    """esp32.NVS's blob calls (get_blob, set_blob, commit) over one file, for runtimes
    without NVS. The file is the agent's alone only if its folder is (the state folder:
    mode 0700, made so by whoever starts the agent)."""

    def __init__(self, path):
        self.path = path
        self.blobs = None

    def _load(self):
        if self.blobs is None:
            try:
                with open(self.path) as f:
                    self.blobs = json.load(f)
            except (OSError, ValueError):
                self.blobs = {}
        return self.blobs

    def get_blob(self, name, buf):
        value = self._load().get(name)
        if value is None:
            raise OSError(2)  # ENOENT, as NVS raises for a missing key
        data = unhexlify(value)
        buf[: len(data)] = data
        return len(data)

    def set_blob(self, name, data):
        self._load()[name] = hexlify(bytes(data)).decode()

    def commit(self):
        _write(self.path, json.dumps(self._load()))


def _write(path, text):
    """Write text to path by a temporary file and a rename (a power cut leaves one or the other)."""
    tmp = path + NEW
    if hasattr(os, "open"):  # CPython: 0600 from the start
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
    else:
        with open(tmp, "w") as f:
            f.write(text)
    try:
        os.rename(tmp, path)
    except OSError:  # a file system whose rename does not replace (FAT)
        os.remove(path)
        os.rename(tmp, path)


def device_key(secrets, create=True):
    """The device's own 16-byte key from secrets; made from the RNG and stored on first use
    (create), else None if there is none."""
    buf = bytearray(16)
    try:
        if secrets.get_blob(DEVICE_KEY, buf) == 16:
            return bytes(buf)
    except OSError:
        pass
    if not create:
        return None
    from . import hal

    key = hal.random_bytes(16)
    secrets.set_blob(DEVICE_KEY, key)
    secrets.commit()
    return key


def wrap(dev_key, principal, key):
    """nonce || AES-CCM(key) || tag under the device key, bound to principal."""
    from . import ccm, hal

    nonce = hal.random_bytes(_NONCE)
    return nonce + ccm.encrypt(hal.aes_block(dev_key), nonce, principal.encode(), key, _TAG)


def unwrap(dev_key, principal, blob):
    """The key wrap() wrapped, or None if blob is not that (another device, another principal)."""
    from . import ccm, hal

    if len(blob) < _NONCE + _TAG:
        return None
    return ccm.decrypt(hal.aes_block(dev_key), blob[:_NONCE], principal.encode(), blob[_NONCE:], _TAG)


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
    board's secret store (device key); rewrap: replace plain key files by wrapped ones."""
    keys = {}
    dev_key = None
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
            if key is None:
                if dev_key is None and secrets is not None:
                    dev_key = device_key(secrets, create=False)
                if dev_key is None:
                    raise ValueError("key file %s: wrapped, and this device has no device key" % name)
                try:
                    key = unwrap(dev_key, principal, unhexlify(wrapped))
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
                    dev_key = device_key(secrets)
                blob = hexlify(wrap(dev_key, principal, key)).decode()
                _write(name, json.dumps({"principal": principal, "wrapped": blob}))
    return keys
