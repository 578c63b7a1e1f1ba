"""The host's own codec for frames: the `cobs` package, zlib's CRC-32 and cbor2.

Deliberately independent of agent/frame.py and agent/cbor.py (only the constants in
agent/proto are shared), so an interop bug between the two shows up as a failing test.
"""

import struct
import zlib

import cbor2
from cobs import cobs

from dmagent.agent import proto as P


class FrameError(ValueError):
    """A frame that fails COBS, its CRC, or is too short."""


def encode_frame(kind, body):
    content = bytes([kind]) + body
    content += struct.pack("<I", zlib.crc32(content) & 0xFFFFFFFF)
    return cobs.encode(content) + b"\x00"


def decode_frame(encoded):
    """One frame without its 0x00 delimiter -> (kind, body)."""
    try:
        content = cobs.decode(encoded)
    except cobs.DecodeError as exc:
        raise FrameError("bad COBS: %s" % exc) from None
    if len(content) < 5:
        raise FrameError("frame too short")
    (crc,) = struct.unpack("<I", content[-4:])
    if zlib.crc32(content[:-4]) & 0xFFFFFFFF != crc:
        raise FrameError("bad CRC")
    return content[0], content[1:-4]


class FrameReader:
    """Splits a byte stream at 0x00 delimiters; counts what it had to drop."""

    def __init__(self, max_frame=P.MAX_FRAME):
        self.max_encoded = max_frame + max_frame // 254 + 2
        self._buf = bytearray()
        self.dropped = 0

    def feed(self, data):
        self._buf += data
        frames = []
        while True:
            end = self._buf.find(0)
            if end < 0:
                if len(self._buf) > self.max_encoded:
                    del self._buf[:]
                    self.dropped += 1
                return frames
            chunk = bytes(self._buf[:end])
            del self._buf[: end + 1]
            if not chunk:
                continue
            try:
                frames.append(decode_frame(chunk))
            except FrameError:
                self.dropped += 1


def encode_message(message):
    return encode_frame(P.KIND_PLAIN, cbor2.dumps(message))


def decode_message(body):
    return cbor2.loads(body)
