"""`dmagent keys`: make and list long-term key files (docs/security.md, "Provisioning").

    dmagent keys new --principal ServerA --out serverA.key [--length 16|32] [--store] [--force]
    dmagent keys list [PATH]...

A key is never printed: `new` and `list` show its fingerprint (the first 8 hex digits of
its SHA-256). A mistake gets one line on stderr and exit status 2, never a traceback.
Registered in host_tools/cli/main.py as `main.add_command(keys_group)`.
"""

import os
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dmagent.host_tools.cli.common import emit_json, fail, json_option, options
from dmagent.host_tools.client import keys as keyfiles

EXIT_USAGE = 2

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)


def _fail(message):
    fail(message)


@click.group(name="keys")
def keys_group():
    """Long-term keys: one per DM server (its ServerID) or gateway, shared with the device."""


@keys_group.command(name="new")
@click.option("--principal", required=True, metavar="ID", help="the ServerID or gateway the key is for")
@click.option("--out", metavar="FILE", type=click.Path(dir_okay=False),
              help="the key file to write (give the same file to the device: serve --keys, flash)")
@click.option("--length", type=click.Choice(["16", "32"]), default="16", show_default=True,
              help="key bytes (16 or 32; the session keys are derived from it either way)")
@click.option("--store", "to_store", is_flag=True,
              help="also keep it in your key store, where client commands find it by --as ID"
                   " (the default when there is no --out)")
@click.option("--force", is_flag=True, help="replace an existing key file")
def keys_new(principal, out, length, to_store, force):
    """Make a fresh random key for one principal, in a file readable only by you (0600)."""
    length = int(length)
    targets = []
    try:
        if out:
            targets.append(out)
        if to_store or not out:
            targets.append(keyfiles.store_path(principal))
        for target in targets:  # refuse before writing anything, not halfway through
            if not force and _exists(target):
                raise keyfiles.KeyFileError("%s exists (--force replaces it)" % target)
        key = keyfiles.Secret(os.urandom(length))
        for target in targets:
            keyfiles.write_key_file(principal, key, target, force)
    except keyfiles.KeyFileError as exc:
        _fail(str(exc))
    fp = keyfiles.fingerprint(key)
    for target in targets:
        _out.print("wrote %s: %d-byte key for %s, fingerprint %s" % (target, length, principal, fp),
                   markup=False, soft_wrap=True)


def _exists(path):
    return Path(path).exists()


@keys_group.command(name="list")
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@json_option
def keys_list(paths):
    """Key files in PATHs (files or folders; default: your key store) by principal and
    fingerprint. Never the key."""
    where = list(paths) or [keyfiles.store_dir()]
    missing = [p for p in paths if not _exists(p)]
    if missing:
        _fail("no such file or folder: %s" % ", ".join(missing))
    found = keyfiles.list_keys(where)
    if options().json:
        emit_json(200, None, **{"keys": [
            {"principal": principal, "file": str(path), "fingerprint": fp, "bytes": n}
            for principal, path, fp, n in found]})
        return
    if not found:
        _out.print("no key files in %s" % ", ".join(map(str, where)), markup=False, soft_wrap=True)
        return
    table = Table("principal", "file", "fingerprint", "bytes")
    for principal, path, fp, n in found:
        table.add_row(escape(principal), escape(str(path)), fp, str(n))
    _out.print(table)
