"""Provisioning: the device config (identity over the board's defaults) and the key files a
flash puts on a board.

The config sent is the one given over the board's defaults, else what the board already has:
a reflash without --config keeps the board's identity and settings.
"""

import json
import os
from pathlib import Path

from dmagent.host_tools.flash.errors import FlashError


def _merge(base, over):
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(config):
    """None, a dict, or a JSON file path -> dict or None, checked by the agent's own loader
    (host_tools/config.py): a config the board would refuse is refused here, before flashing."""
    from dmagent.host_tools.config import ConfigError, check_device_config, read_device_config

    try:
        if config is None or isinstance(config, dict):
            return check_device_config(config) if config is not None else None
        return read_device_config(config)
    except ConfigError as exc:
        raise FlashError(str(exc)) from None


def load_key(path):
    """A key file from `dmagent keys new`, read by the one key-file reader (client/keys.py), and
    its bytes as they go onto the board: (principal, raw file)."""
    from dmagent.host_tools.client.keys import KeyFileError, load_key_file

    try:
        principal, _ = load_key_file(path)
        raw = Path(path).read_bytes()
    except (KeyFileError, OSError) as exc:
        raise FlashError(str(exc), 'a key file is JSON {"principal", "key"}: '
                                   "make one with `dmagent keys new`") from None
    if "/" in principal or "\\" in principal:  # it names the key's file on the board
        raise FlashError("key file %s: the principal %r cannot name a file on the board" % (path, principal))
    return principal, raw


def device_config(bundle, existing, config=None, devid=None, uid=None):
    """The config file for the device: the given config over the board's defaults, else what
    the device has, else the board's defaults; DevId from devid, else kept, else made from
    the board's unique id."""
    base = bundle.manifest.get("config") or {}
    current = None
    if existing:
        try:
            current = json.loads(existing)
        except ValueError:
            current = None
    if config is not None:
        cfg = _merge(base, config)
    elif current is not None:
        cfg = current
    else:
        cfg = _merge(base, {})
    dev = dict(cfg.get("device") or {})
    old = (current or {}).get("device", {}).get("devid")
    if devid:
        dev["devid"] = devid
    elif not dev.get("devid"):
        dev["devid"] = old or "urn:dmagent:%s-%s" % (bundle.board, uid or os.urandom(4).hex())
    cfg["device"] = dev
    return cfg


def config_bytes(cfg):
    return (json.dumps(cfg, indent=1, sort_keys=True) + "\n").encode()


def key_of(principal, key_files):
    """principal's key: from the key files being provisioned, else the user's key store."""
    if principal is None:
        return None
    from dmagent.host_tools.client.keys import KeyFileError, find_key, load_key_file

    for name, raw in key_files:
        if name == principal:
            return bytes.fromhex(json.loads(raw)["key"])
    path = find_key(principal)
    if path is None:
        return None
    try:
        return load_key_file(path)[1]
    except KeyFileError as exc:
        raise FlashError(str(exc)) from None
