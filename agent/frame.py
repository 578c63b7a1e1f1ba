"""Byte-stream framing: COBS(kind || body || CRC-32 LE), then one 0x00 (docs/protocol.md s.2).

FrameDecoder.feed() is a generator whose bodies are memoryviews into the decoder's one
buffer: each is valid only until the loop asks for the next frame, so copy what you keep.
COBS of a whole buffer each way, which the agent itself never needs, is agent.cobs.
"""

import binascii

from . import proto

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


_BLOCK = const(254)  # most data bytes one COBS code byte covers
_MIN_CONTENT = const(5)  # kind + CRC-32: a frame may have an empty body
_CRC_RESIDUE = const(0x2144DF1C)  # crc32(x || crc32(x) as 4 bytes LE), for every x


def encoded_bound(max_frame):
    """Most COBS bytes (delimiter not counted) that `max_frame` decoded bytes can take."""
    return max_frame + max_frame // _BLOCK + 1


def _findable(data):
    # bytes.find does the zero scanning in C; memoryview has no find (nor, on some
    # ports, bytearray), so those pay for one copy rather than a Python loop per byte.
    if type(data) is bytes:  # the common case, without getattr's bound-method allocation
        return data
    if getattr(data, "find", None) is None:
        return bytes(data)
    return data


def _encode_into(data, out, o, n=None):
    """COBS-encode data[:n] (default: all) into out starting at o; returns the end index.
    data must have find()."""
    mv = memoryview(data)
    if n is None:
        n = len(data)
    i = 0
    while True:
        lim = i + _BLOCK
        if lim > n:
            lim = n
        z = data.find(b"\x00", i, lim)
        if z >= 0:  # block ends in a zero, which the code byte stands for
            k = z - i
            out[o] = k + 1
            out[o + 1 : o + 1 + k] = mv[i:z]
            o += 1 + k
            i = z + 1
            continue
        k = lim - i
        if k == _BLOCK:  # full block, no implied zero
            out[o] = 0xFF
            out[o + 1 : o + 1 + k] = mv[i:lim]
            o += 1 + k
            i = lim
            if i == n:  # the data ends here: no trailing 01 block (Cheshire & Baker)
                return o
            continue
        out[o] = k + 1  # last block
        out[o + 1 : o + 1 + k] = mv[i:n]
        return o + 1 + k


def frame_into(content, n, out):
    """The wire frame of content[0:n] (kind || body), whose CRC goes into content[n:n+4]:
    COBS-encoded into out, delimiter included. -> memoryview of out. content must be a
    bytearray with 4 bytes to spare; out must hold encoded_bound(n + 4) + 1."""
    crc = binascii.crc32(memoryview(content)[:n])
    for j in range(4):
        content[n + j] = (crc >> (8 * j)) & 0xFF
    end = _encode_into(_findable(content), out, 0, n + 4)
    out[end] = 0
    return memoryview(out)[: end + 1]


def out_buffer(max_frame=proto.MAX_FRAME):
    """The buffer every reply frame is encoded into, shared so that a reply allocates
    nothing. One reply at a time: write it out before making the next."""
    if not _out:
        _out.append(bytearray(encoded_bound(max_frame) + 1))
    return _out[0]


def encode_frame(kind, body, max_frame=proto.MAX_FRAME):
    """Wire bytes of one frame, trailing 0x00 included. ValueError if the content
    (kind + body + CRC) would exceed max_frame: the peer would drop it."""
    if not 0 <= kind <= 255:
        raise ValueError("frame kind %r is not a byte" % (kind,))
    nb = len(body)
    n = nb + _MIN_CONTENT
    if n > max_frame:
        raise ValueError("frame content %d bytes > max_frame %d" % (n, max_frame))
    content = bytearray(n)
    content[0] = kind
    content[1 : 1 + nb] = body
    return bytes(frame_into(content, 1 + nb, bytearray(encoded_bound(n) + 1)))


_out = []  # see out_buffer()
_spare = []  # receive buffers set aside by reserve(), handed to decoders, given back by close()
_reserved = [0]


def reserve(count, max_frame=proto.MAX_FRAME):
    """Set aside count receive buffers now, while the heap is still whole. On a board-sized
    heap, imports and boot leave free memory in small pieces: a link opened later may find
    no max_frame bytes in one piece, though many more are free in all."""
    _reserved[0] = count
    out_buffer(max_frame)
    while len(_spare) < count:
        _spare.append(bytearray(max_frame))


class FrameDecoder:
    """Streaming receiver: feed() any chunks, iterate the (kind, body) frames they complete.

    COBS is undone as bytes arrive, straight into one preallocated buffer of max_frame
    bytes, so nothing grows whatever the line carries. Counters: frames (good), bad_crc,
    bad_cobs (malformed COBS, or content shorter than kind + CRC), oversized (decoded
    content would pass max_frame, which also caps the encoded run at encoded_bound();
    the rest is skipped up to the next 0x00, unbuffered).
    """

    def __init__(self, max_frame=proto.MAX_FRAME):
        if max_frame < _MIN_CONTENT:
            raise ValueError("max_frame < %d" % _MIN_CONTENT)
        self.max_frame = max_frame
        buf = None
        for i in range(len(_spare)):
            if len(_spare[i]) == max_frame:
                buf = _spare.pop(i)
                break
        self._buf = buf if buf is not None else bytearray(max_frame)
        self._mv = memoryview(self._buf)
        self.frames = 0
        self.bad_crc = 0
        self.bad_cobs = 0
        self.oversized = 0
        self._good = 0  # content bytes of a good frame _scan completed, not yet yielded
        self._reset()

    def _reset(self, overflow=False):
        """Start on the next frame; overflow: this one would pass max_frame, drop it up to its
        0x00, unbuffered."""
        if overflow:
            self.oversized += 1
        self._skip = overflow  # dropping an oversized frame up to its 0x00
        self.buffered = 0  # decoded bytes of the frame in progress (never more than max_frame)
        self._left = 0  # data bytes still due in this COBS block; 0: a code byte is next
        self._zero = False  # the next code byte stands for a zero first (previous code < FF)
        self._open = False  # a code byte of this frame was seen: 0x00 now ends a frame

    def workspace(self):
        """The receive buffer, lent out: between a yielded frame's last use and the next
        step of feed() it holds nothing the decoder needs (a reply is built in it)."""
        return self._buf

    def close(self):
        """Give the buffer back for the next link (up to the reserved count)."""
        if self._buf is not None and len(_spare) < _reserved[0]:
            _spare.append(self._buf)
        self._buf = self._mv = None

    def feed(self, data, end=None):
        """Yield (kind, body) for each good frame that data completes; body is a memoryview
        into the decoder's buffer, valid until the next iteration. Iterate to the end: bytes
        after the point where a loop stops are lost. One feed at a time per decoder.
        end: use only data[:end] (a reused read buffer, without slicing a copy off it)."""
        # The generator keeps few locals (its state is heap-allocated on each call);
        # _scan, an ordinary call, does the work.
        data = _findable(data)
        mv = memoryview(data)
        i = 0
        if end is None:
            end = len(data)
        while i < end:
            i = self._scan(data, mv, i, end)
            n = self._good
            if n:
                self._good = 0
                yield self._buf[0], self._mv[1 : n - 4]

    def _scan(self, data, mv, i, end):
        """Take data from i on until a good frame is complete (sets _good) or data ends;
        returns where it stopped."""
        buf = self._buf
        while i < end:
            if self._skip:
                z = data.find(b"\x00", i, end)
                if z < 0:
                    return end
                self._skip = False
                i = z + 1
                continue
            left = self._left
            if left:
                k = end - i
                if k > left:
                    k = left
                z = data.find(b"\x00", i, i + k)
                if z >= 0:  # the frame ended inside a block: truncated, resync here
                    self.bad_cobs += 1
                    self._reset()
                    i = z + 1
                    continue
                n = self.buffered
                if n + k > len(buf):
                    self._reset(True)
                    i += k
                    continue
                buf[n : n + k] = mv[i : i + k]
                self.buffered = n + k
                self._left = left - k
                i += k
                continue
            b = data[i]
            i += 1
            if b == 0:
                if not self._open:
                    continue  # an empty frame (a sender's flush)
                n = self.buffered
                self._reset()
                if n < _MIN_CONTENT:
                    self.bad_cobs += 1
                # The CRC-32 of content that ends in its own CRC (LE) is a fixed residue: one
                # pass, and no big ints on a 32-bit port (the residue is a small int).
                elif binascii.crc32(self._mv[:n]) != _CRC_RESIDUE:
                    self.bad_crc += 1
                else:
                    self.frames += 1
                    self._good = n
                    return i
                continue
            if self._zero:
                n = self.buffered
                if n >= len(buf):
                    self._reset(True)
                    continue
                buf[n] = 0
                self.buffered = n + 1
            self._open = True
            self._zero = b != 0xFF
            self._left = b - 1
        return i
