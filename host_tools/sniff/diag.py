"""CBOR diagnostic notation (RFC 8949 section 8) of what cbor2 decoded: h'..' for bytes,
quoted text, [..], {k: v} in the order the map came, tags as N(..), simple(n), undefined.
The one thing a reader gets wrong: maps keep their wire order here, so a reader can see it.
"""

import math

import cbor2


def diag(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is cbor2.undefined:
        return "undefined"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, str):
        return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "h'%s'" % bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return "[%s]" % ", ".join(diag(v) for v in value)
    if isinstance(value, dict):
        return "{%s}" % ", ".join("%s: %s" % (diag(k), diag(v)) for k, v in value.items())
    if isinstance(value, cbor2.CBORTag):
        return "%d(%s)" % (value.tag, diag(value.value))
    if isinstance(value, cbor2.CBORSimpleValue):
        return "simple(%d)" % value.value
    return repr(value)
