"""The device key and what it does to key files: wrap a key under it, unwrap one (AES-CCM,
16-byte tag, the principal as associated data), keep it in the board's secret store.

Loaded only when a key file is wrapped or to be wrapped (agent.keys): heap is scarce at boot.
The store is esp32.NVS, or FileSecrets where there is no NVS; whoever can read the store can
unwrap every key file (docs/security.md).
"""

import json
import os
from binascii import hexlify, unhexlify

DEVICE_KEY = "devkey"  # the blob's name in the board's secret store
NEW = ".new"  # a file before it replaces the old one
_NONCE = 13
_TAG = 16


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


def write_wrapped(path, dev_key, principal, key):
    """Replace the key file at path by its wrapped form (a power cut leaves one or the other)."""
    blob = hexlify(wrap(dev_key, principal, key)).decode()
    _write(path, json.dumps({"principal": principal, "wrapped": blob}))


class DeviceKey:
    """The board's device key, fetched (or made) only when a file needs it; wrap_file
    leaves a file that is wrapped already as it is (unwrap saw it)."""

    def __init__(self, secrets):
        self.secrets = secrets
        self.key = None
        self.unwrapped = False

    def _get(self, create):
        if callable(self.secrets):
            self.secrets = self.secrets()
        if self.key is None and self.secrets is not None:
            self.key = device_key(self.secrets, create)
        return self.key

    def unwrap(self, principal, blob):
        self.unwrapped = True
        dev_key = self._get(False)
        return None if dev_key is None else unwrap(dev_key, principal, blob)

    def wrap_file(self, name, principal, key):
        if self.unwrapped:
            self.unwrapped = False
            return
        write_wrapped(name, self._get(True), principal, key)
