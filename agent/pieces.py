"""Replies in pieces (docs/protocol.md 3): one piece of a reply body, as the response map
that carries it. Its own module: only a client that asks for pieces loads it.
"""

import binascii

from agent import cbor
from agent import proto as P


def asked(request):
    """(chunk, offset) the request asks for, or None if they are not valid."""
    size = request.get(P.K_CHUNK)
    offset = request.get(P.K_OFFSET, 0)
    for v in (size, offset):
        if type(v) is not int or v < 0:
            return None
    return (size, offset) if size >= P.CHUNK_MIN else None


def refusal(rid):
    return {P.K_ID: rid, P.K_STATUS: P.S_BAD_REQUEST,
            P.K_MSG: "chunk and offset must be integers, chunk >= %d" % P.CHUNK_MIN}


def piece(rid, body, chunk):
    """The encoded response that carries body[offset : offset + chunk] (the reply body)."""
    size, offset = chunk
    if offset > len(body):
        return cbor.dumps({P.K_ID: rid, P.K_STATUS: P.S_BAD_REQUEST,
                           P.K_MSG: "offset past the reply's end (%d bytes)" % len(body)})
    response = {P.K_ID: rid, P.K_STATUS: P.S_PARTIAL, P.K_OFFSET: offset,
                P.K_PART: body[offset : offset + size]}
    if offset == 0:
        response[P.K_TOTAL] = len(body)
        response[P.K_CHECK] = binascii.crc32(body)
    return cbor.dumps(response)
