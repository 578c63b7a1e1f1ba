"""Leaf value formats: which Python type carries each one, the checks, Size and default Type.

b64 is raw bytes here, like bin (CBOR needs no base64). A bare Python value implies its
format (int int, str chr, bytes bin, bool bool, float float, None null); xml, date, time
and b64 must be named. In MicroPython bool is not an int: compare types, never isinstance.
"""

from . import proto as P
from .errors import DMError

BARE = {bool: "bool", int: "int", str: "chr", bytes: "bin", float: "float", type(None): "null"}
_CARRIER = {"chr": str, "xml": str, "date": str, "time": str, "bin": bytes, "b64": bytes,
            "int": int, "bool": bool, "float": float, "null": type(None), "node": type(None)}
_TYPES = {"bin": "application/octet-stream", "b64": "application/octet-stream", "xml": "text/xml",
          "node": ""}


def infer(value, fmt):
    """fmt, or the format value's Python type implies (415 if it implies none)."""
    if fmt is not None:
        return fmt
    if type(value) not in BARE:
        raise DMError(P.S_BAD_FORMAT, "no format for a %s value" % type(value).__name__)
    return BARE[type(value)]


def coerce(value, fmt):
    """value checked against fmt (415 if it does not match); an int given for float becomes one."""
    if fmt not in _CARRIER:
        raise DMError(P.S_BAD_FORMAT, "unknown format %r" % (fmt,))
    if type(value) is bytearray:
        value = bytes(value)
    if fmt == "float" and type(value) is int:
        value = float(value)
    ok = type(value) is _CARRIER[fmt]
    if ok and fmt == "int":
        ok = -2147483648 <= value <= 2147483647  # OMA DM int is 32-bit signed
    elif ok and (fmt == "date" or fmt == "time"):
        from . import dates  # loaded on the first date or time: most devices hold none

        ok = dates.is_date(value) if fmt == "date" else dates.is_time(value)
    if not ok:
        raise DMError(P.S_BAD_FORMAT, "value does not match format %s" % fmt)
    return value


def size(value):
    """The Size property: bytes of the value's text (UTF-8), raw length for bin/b64."""
    t = type(value)
    if t is str:
        return len(value.encode())
    if t is bytes:
        return len(value)
    if t is bool:
        return 4 if value else 5  # "true" / "false"
    return 0 if value is None else len(str(value))


def default_type(fmt):
    """Type of a node that was given none: a MIME type for leaves, "" for interior nodes."""
    return _TYPES.get(fmt, "text/plain")


def stored_type(fmt, mime):
    """What a node keeps for Type: None when mime is the default (so a leaf can stay bare)."""
    if mime is not None and type(mime) is not str:
        raise DMError(P.S_BAD_REQUEST, "type must be text")
    if mime and "syncml.dmtnds" in mime:  # application/vnd.syncml.dmtnds+xml, +wbxml: a tree
        raise DMError(P.S_BAD_FORMAT, "DMTNDS is a tree")
    return None if not mime or mime == default_type(fmt) else mime
