"""Key files on the host: made with mode 0600, listed by fingerprint, never printed.

A key file is JSON {"principal": ID, "key": HEX} (what agent/keys.py reads on the device).
The user's key store is a folder of them in the user's config folder
(click.get_app_dir("dmagent")/keys/<principal>.key); client commands find a principal's
key there when no key file is given.

A key read here is a `Secret`: bytes whose repr and str show only its fingerprint, so a
log line, an error message or a traceback with locals cannot leak it by accident.
"""

import hashlib
import json
import os
import sys
from pathlib import Path

import click

from dmagent.host_tools.client.errors import UsageError

KEY_LENGTHS = (16, 32)
SUFFIX = ".key"


class KeyFileError(UsageError):
    """A key file cannot be made or read; the message says which and why (never the key)."""


KeyError_ = KeyFileError  # the name host_tools.cli.main used first


def fingerprint(key):
    """First 8 hex digits of the key's SHA-256: enough to tell keys apart, nothing to reuse."""
    return hashlib.sha256(bytes(key)).hexdigest()[:8]


class Secret(bytes):
    """Key bytes that do not print themselves."""

    def __repr__(self):
        return "<key %s, %d bytes>" % (fingerprint(self), len(self))

    __str__ = __repr__

    def hex(self, *args):  # the one way to the digits: writing a key file
        raise TypeError("a key is not printed; use keys.key_to_hex to write a key file")


def key_to_hex(key):
    return bytes(key).hex()


def store_dir():
    """The user's key store: <config folder>/dmagent/keys (honours XDG_CONFIG_HOME)."""
    return Path(click.get_app_dir("dmagent")) / "keys"


def store_path(principal):
    _check_principal(principal)
    return store_dir() / (principal + SUFFIX)


def _check_principal(principal):
    from dmagent.agent.acl import is_identifier

    if not is_identifier(principal) or "/" in principal or "\\" in principal or len(principal) > 64:
        raise KeyFileError("%r is not a valid principal (a ServerID: printable ASCII, no spaces,"
                           " = & * + / \\, at most 64 characters)" % (principal,))


def write_key_file(principal, key, out, force=False):
    """Write key for principal to out, readable by its owner only; refuses to overwrite
    unless force. The file is 0600 from its first byte (never chmod after the fact)."""
    _check_principal(principal)
    if len(key) not in KEY_LENGTHS:
        raise KeyFileError("key length must be 16 or 32 bytes")
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileError("cannot make folder %s: %s" % (out.parent, exc.strerror)) from None
    if out.is_dir():
        raise KeyFileError("%s is a folder: give a file name" % out)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    flags |= getattr(os, "O_NOFOLLOW", 0)  # never write a key through a planted symlink
    try:
        fd = os.open(str(out), flags, 0o600)
    except FileExistsError:
        raise KeyFileError("%s exists (--force replaces it)" % out) from None
    except OSError as exc:
        raise KeyFileError("cannot write %s: %s" % (out, exc.strerror)) from None
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)  # an existing file replaced with force: 0600 too
        json.dump({"principal": principal, "key": key_to_hex(key)}, f)
        f.write("\n")
    return out


def new_key_file(principal, out, length=16, force=False):
    """A fresh random key for principal, written to out (mode 0600). -> its fingerprint."""
    if length not in KEY_LENGTHS:
        raise KeyFileError("key length must be 16 or 32 bytes")
    key = Secret(os.urandom(length))
    write_key_file(principal, key, out, force)
    return fingerprint(key)


def load_key_file(path, warn=True):
    """(principal, key) from a key file, read by the agent's own reader (agent.keys: one
    format, one set of checks); KeyFileError naming the file (not the key) if bad. Warns on
    stderr, once per file, when others than its owner may read it (warn=False: quiet)."""
    from dmagent.agent import keys as reader

    try:
        principal, key = reader.read(str(path))
    except ValueError as exc:
        raise KeyFileError(str(exc)) from None
    if warn:
        warn_if_exposed(path)
    return principal, Secret(key)


def load_keys(paths):
    """{principal: key} from key files and folders (what `serve --keys` takes), through the
    same reader, with the same warning; KeyFileError naming the file if one is bad."""
    from dmagent.agent import keys as reader

    try:
        found = reader.load([str(p) for p in paths], warn_if_exposed)
    except ValueError as exc:
        raise KeyFileError(str(exc)) from None
    return dict((principal, Secret(key)) for principal, key in found.items())


_warned = set()


def exposed(path):
    """The file's mode if its group or others may read or write it, else None."""
    try:
        mode = os.stat(str(path)).st_mode
    except OSError:
        return None
    return mode & 0o777 if mode & 0o077 else None


def warn_if_exposed(path):
    """One line on stderr (once per file and process) for a key file others may read."""
    mode = exposed(path)
    key = os.path.abspath(str(path))
    if mode is None or key in _warned:
        return
    _warned.add(key)
    sys.stderr.write("dmagent: warning: key file %s can be read by others than its owner (mode %04o): chmod 600 %s\n"
                     % (path, mode, path))
    sys.stderr.flush()


def _key_files(path):
    path = Path(path)
    if path.is_dir():
        return sorted(path.glob("*" + SUFFIX))
    return [path] if path.exists() else []


def list_keys(paths=None):
    """[(principal, path, fingerprint, length)] of the key files in paths (files or folders;
    default: the key store). Files that are not key files are skipped."""
    found = []
    for path in paths or [store_dir()]:
        for name in _key_files(path):
            try:
                principal, key = load_key_file(name, warn=False)
            except KeyFileError:
                continue
            found.append((principal, name, fingerprint(key), len(key)))
    return found


def find_key(principal, paths=None):
    """The key file for principal in paths (default: the user's store), or None."""
    if paths is None:
        try:
            direct = store_path(principal)
        except KeyFileError:
            return None
        if direct.exists():
            try:
                if load_key_file(direct, warn=False)[0] == principal:
                    return direct
            except KeyFileError:
                pass
    for found_principal, path, _fp, _n in list_keys(paths):
        if found_principal == principal:
            return path
    return None


def key_for(principal, paths=None):
    """principal's key from the store (or paths); KeyFileError if there is none."""
    path = find_key(principal, paths)
    if path is None:
        raise KeyFileError("no key for %s in %s" % (principal, ", ".join(map(str, paths or [store_dir()]))))
    return load_key_file(path)[1]
