"""%XX escapes in a URI's segments, decoded: agent.uri loads this on the first segment that
holds one (most requests hold none) and keeps it. A decoded name may hold any character but
'/' (agent.uri.is_name): `%2F` is refused there, not here.
"""

from . import proto as P
from .errors import DMError

_HEX = "0123456789abcdefABCDEF"


def decode(seg):
    """seg with its %XX escapes decoded; 400 if one is malformed or the bytes are not UTF-8."""
    out = bytearray()
    i = 0
    n = len(seg)
    while i < n:
        c = seg[i]
        if c == "%":
            h = seg[i + 1 : i + 3]
            if len(h) != 2 or h[0] not in _HEX or h[1] not in _HEX:
                raise DMError(P.S_BAD_REQUEST, "bad %XX escape in URI")
            out.append(int(h, 16))
            i += 3
        else:
            out.extend(c.encode())
            i += 1
    try:
        return bytes(out).decode()
    except UnicodeError:
        raise DMError(P.S_BAD_REQUEST, "%XX escapes are not UTF-8")
