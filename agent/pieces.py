"""Replies in pieces (docs/protocol.md 3): one piece of a reply body, as the response map
that carries it. Its own module: only a client that asks for pieces loads it.
"""

from . import cbor
from . import proto as P

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


CHUNK_MIN = const(8)  # a smaller chunk is refused (400)


def asked(request):
    """(chunk, offset) the request asks for, or None if they are not valid."""
    size = request.get(P.K_CHUNK)
    offset = request.get(P.K_OFFSET, 0)
    for v in (size, offset):
        if type(v) is not int or v < 0:
            return None
    return (size, offset) if size >= CHUNK_MIN else None


def refusal(rid):
    return {P.K_ID: rid, P.K_STATUS: P.S_BAD_REQUEST,
            P.K_MSG: "chunk and offset must be integers, chunk >= %d" % CHUNK_MIN}


def piece(rid, body, chunk):
    """The encoded response that carries body[offset : offset + chunk] (the reply body)."""
    size, offset = chunk
    size = min(size, P.MAX_FRAME - 64)  # the piece and its response map fit one frame
    if offset > len(body):
        return cbor.dumps({P.K_ID: rid, P.K_STATUS: P.S_BAD_REQUEST,
                           P.K_MSG: "offset past the reply's end (%d bytes)" % len(body)})
    response = {P.K_ID: rid, P.K_STATUS: P.S_PARTIAL, P.K_OFFSET: offset,
                P.K_PART: body[offset : offset + size]}
    if offset == 0:
        response[P.K_TOTAL] = len(body)
    return cbor.dumps(response)
