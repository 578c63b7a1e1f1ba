"""Standard COBS of a whole buffer, each way, for tools and tests: the agent frames with
agent.frame (encoding into its shared buffer, decoding as bytes arrive), so a board never
loads this.
"""

from .frame import _encode_into, _findable, encoded_bound


def cobs_encode(data):
    """Standard COBS: the result holds no 0x00 and has no delimiter."""
    data = _findable(data)
    out = bytearray(encoded_bound(len(data)))
    end = _encode_into(data, out, 0)
    return bytes(memoryview(out)[:end])


def cobs_decode(data):
    """Inverse of cobs_encode (input without delimiter); ValueError if malformed. Accepts one
    non-canonical form: a final 01 after a full FF block, which means the same data."""
    data = _findable(data)
    n = len(data)
    if n == 0:
        raise ValueError("COBS: empty input (the encoding of nothing is 01)")
    z = data.find(b"\x00")
    if z >= 0:
        raise ValueError("COBS: zero byte at offset %d" % z)
    mv = memoryview(data)
    out = bytearray(n)  # decoded is always shorter than encoded
    i = o = 0
    while i < n:
        code = data[i]
        k = code - 1
        if i + 1 + k > n:
            raise ValueError("COBS: code byte %d at offset %d runs past the end" % (code, i))
        out[o : o + k] = mv[i + 1 : i + 1 + k]
        o += k
        i += 1 + k
        if code != 0xFF and i < n:
            out[o] = 0
            o += 1
    return bytes(memoryview(out)[:o])
