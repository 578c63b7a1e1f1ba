"""The device config (docs/config.md): the one loader and validator, for `dmagent serve`, the
boards' main.py and `dmagent flash`. Checked at start-up, before anything is seeded.

A wrong type or an unknown key is refused with one line naming the file and the key: a
misspelt key ignored would be a policy silently off (`securty`), and a string where a list
belongs would be searched as text. App does not check again: a board unloads this module
once its config is read (agent.unload), so that its code leaves the heap before boot.
"""

import json

from . import acl as A
from . import uri as U
from .tree import DEFAULT_LIMITS

class ConfigError(ValueError):
    pass


# The schema, as one string: on MicroPython every short string and name of a module stays
# in the heap for good once loaded (qstrs), one long string leaves with the module. Read by
# _read() into maps of key -> type. {..} a map with these keys only (a key alone is text),
# [T] a list of T, <K V> a map with free keys of type K, ?T a T or null (a board's link
# left off); types: t text, d int >= 0, b bool, i ServerID, u URI, n node name, a any.
_SPEC = ("{device{devid man mod dmv lang devtyp oem fwv swv hwv}"
         " accounts[{server_id:i name:n display addr addr_type auth{type name secret level data}}]"
         # nodes: what `dmagent ddf import` writes (access, occurrence, scope: from the DDF)
         " nodes[{uri:u value:a format acl title type scope access[t] occurrence"
         " placeholder{format access[t] occurrence scope}}]"
         " acls<u t> open_reads[u] limits{%s}"
         " security{gateways<i [i]> integrity_only[i] confidential[u] owners[i]} insecure:b"
         # the boards' own (boards/esp32/README.md); escape_ms: the old window, known so an
         # upgraded board still boots, and never read (docs/config.md)
         " escape_window_ms:d escape_ms:d console:b uart?{id:d tx:d rx:d baud:d} wifi?{ssid password timeout:d}"
         " tcp?{host port:d}"
         # bounds on TCP links (agent/server.py LinkTable, docs/protocol.md s.2)
         " links{max:d per_source:d idle_ms:d half_open_ms:d}}")
_TYPES = "tdbiuna"
_WHAT = ("text", "an int >= 0", "true or false", "a ServerID", "a URI", "a node name")
_NULL = "?"
_MAP = "<"


def _schema():
    limits = " ".join([k + ":d" for k in DEFAULT_LIMITS])
    return _read(_SPEC % limits, 0)[0]


def _read(spec, i):
    """-> (schema, index after it) of the spec item at i."""
    c = spec[i]
    if c == "?":
        inner, i = _read(spec, i + 1)
        return (_NULL, inner), i
    if c == "[":
        inner, i = _read(spec, i + 1)
        return [inner], i + 1
    if c == "<":
        key, i = _read(spec, i + 1)
        value, i = _read(spec, i + 1)
        return (_MAP, key, value), i + 1
    if c != "{":
        return _TYPES.index(c), i + 1
    out = {}
    i += 1
    while True:
        while spec[i] == " ":
            i += 1
        if spec[i] == "}":
            return out, i + 1
        j = i
        while spec[j] not in " :{[<?}":
            j += 1
        if spec[j] == ":":
            out[spec[i:j]], i = _read(spec, j + 1)
        elif spec[j] in "{[<?":
            out[spec[i:j]], i = _read(spec, j)
        else:
            out[spec[i:j]], i = 0, j


def load(path, missing_ok=False):
    """The config in the JSON file at path, checked. {} if path is None, or if the file does
    not exist and missing_ok (a board without one). ConfigError: one line, file and key."""
    if path is None:
        return {}
    try:
        f = open(path)
    except OSError as exc:
        if missing_ok:
            return {}
        raise ConfigError("config %s: cannot be read (%s)" % (path, getattr(exc, "strerror", None) or exc))
    try:
        with f:
            config = json.load(f)
    except ValueError as exc:
        raise ConfigError("config %s: not valid JSON (%s)" % (path, exc))
    return check(config, path)


def check(config, name="config"):
    """config itself if every key is known and of its type; else ConfigError naming the key."""
    if config is None:
        return {}
    problem = _check(config, _schema(), "")
    if problem:
        raise ConfigError("config %s: %s" % (name, problem))
    return config


def _check(value, schema, path):
    """None if value fits schema, else the problem as "key.path: what it must be"."""
    kind = type(schema)
    if kind is tuple and schema[0] == _NULL:
        return None if value is None else _check(value, schema[1], path)
    if kind is dict or kind is tuple:
        if type(value) is not dict:
            return "%s: must be a map" % (path or "the config")
        for key in value:
            where = path + "." + key if path else key
            if kind is tuple:  # free keys of one type
                problem = _check(key, schema[1], where + " (the key)") or _check(value[key], schema[2], where)
            elif key not in schema:
                problem = "%s: unknown key (known here: %s)" % (where, ", ".join(sorted(schema)))
            else:
                problem = _check(value[key], schema[key], where)
            if problem:
                return problem
        return None
    if kind is list:
        if type(value) is not list:
            return "%s: must be a list" % path
        need = "server_id" if path == "accounts" else "uri" if path == "nodes" else None
        for i in range(len(value)):
            where = "%s[%d]" % (path, i)
            problem = _check(value[i], schema[0], where)
            if not problem and need and need not in value[i]:
                problem = "%s: needs %s" % (where, need)
            if problem:
                return problem
        return None
    return None if _fits(value, schema) else "%s: must be %s" % (path, _WHAT[schema])


def _fits(value, kind):
    if kind == 6:  # any
        return True
    if kind == 2:
        return type(value) is bool
    if kind == 1:
        return type(value) is int and value >= 0
    if type(value) is not str:
        return False
    if kind == 3:
        return A.is_identifier(value)
    if kind == 5:
        return U.is_name(value)
    if kind == 4:
        try:
            U.parse(value)
        except Exception:
            return False
    return True
