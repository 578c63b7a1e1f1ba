"""Key files on the host: made with mode 0600, listed by fingerprint, never printed.

A key file is JSON {"principal": ID, "key": HEX} (what agent/keys.py reads on the device).
The user's key store is a folder of them in the user's config folder; client commands
find a principal's key there when no --key is given.
"""

import hashlib
import json
import os
from pathlib import Path

import click

from host_tools.secure import read_key_file


class KeyError_(ValueError):
    """A key file cannot be made or read; the message says which and why."""


def store_dir():
    return Path(click.get_app_dir("dmagent")) / "keys"


def fingerprint(key):
    """First 8 hex digits of the key's SHA-256: enough to tell keys apart, nothing to reuse."""
    return hashlib.sha256(key).hexdigest()[:8]


def new_key_file(principal, out, length=16, force=False):
    """Write a fresh random key for principal to out, readable by its owner only."""
    from agent.acl import is_identifier

    if not is_identifier(principal):
        raise KeyError_("%r is not a valid principal (a ServerID: letters, digits, - _ .)" % principal)
    if length not in (16, 32):
        raise KeyError_("key length must be 16 or 32 bytes")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(str(out), flags, 0o600)  # 0600 from the first byte, not chmod after
    except FileExistsError:
        raise KeyError_("%s exists (--force replaces it)" % out) from None
    except OSError as exc:
        raise KeyError_("cannot write %s: %s" % (out, exc.strerror)) from None
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        json.dump({"principal": principal, "key": os.urandom(length).hex()}, f)
        f.write("\n")
    return out


def list_keys(paths=None):
    """[(principal, path, fingerprint, length)] of the key files in paths (default: the store)."""
    found = []
    for path in paths or [store_dir()]:
        path = Path(path)
        files = sorted(path.glob("*.key")) if path.is_dir() else [path] if path.exists() else []
        for name in files:
            try:
                principal, key = read_key_file(name)
            except ValueError:
                continue
            found.append((principal, name, fingerprint(key), len(key)))
    return found


def find_key(principal):
    """The key file for principal in the user's store, or None."""
    for found_principal, path, _fp, _n in list_keys():
        if found_principal == principal:
            return path
    return None
