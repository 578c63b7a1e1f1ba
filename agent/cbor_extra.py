"""The rare half of agent.cbor: floats, tags and bignums, simple values and undefined,
indefinite-length strings, the strict UTF-8 check. agent.cbor imports it on first use,
so a board that never meets these keeps its code out of the heap; once loaded it stays.
"""

import math
import struct

from .cbor import _INT_END, CBORDecodeError, CBOREncodeError, _encode, _head

_INF = float("inf")
_NAN = float("nan")


class CBORTag:
    """A tagged item. Tags 2 and 3 (bignums) decode to int, so never appear as CBORTag."""

    def __init__(self, tag, value):
        self.tag = tag
        self.value = value

    def __eq__(self, other):
        return isinstance(other, CBORTag) and self.tag == other.tag and self.value == other.value

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):  # raises TypeError when the value is unhashable, as a tuple would
        return hash((self.tag, self.value))

    def __repr__(self):
        return "CBORTag(%r, %r)" % (self.tag, self.value)


class CBORSimpleValue:
    """A simple value other than false/true/null/undefined: 0..19 or 32..255.

    Equal only to another CBORSimpleValue (cbor2's also equals the bare int).
    """

    def __init__(self, value):
        if not isinstance(value, int) or not (0 <= value < 20 or 32 <= value < 256):
            raise ValueError("simple value must be 0..19 or 32..255")
        self.value = value

    def __eq__(self, other):
        return isinstance(other, CBORSimpleValue) and self.value == other.value

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(self.value)

    def __repr__(self):
        return "CBORSimpleValue(%d)" % self.value


class _Undefined:
    def __repr__(self):
        return "undefined"

    def __bool__(self):
        return False


undefined = _Undefined()  # simple value 23; compare with `is`


# ---------------------------------------------------------------- encoding


def encode(obj, out):
    """What agent.cbor's encoder leaves: floats, ints past 64 bits, tags, undefined, simple values."""
    if isinstance(obj, int):  # past 64 bits: a bignum, tag 2 or 3
        major = 0
        if obj < 0:
            major = 1
            obj = -1 - obj
        size = 9  # no int.bit_length in MicroPython
        while obj >> (8 * size):
            size += 1
        _head(out, 6, 2 + major)
        _head(out, 2, size)
        out.extend(obj.to_bytes(size, "big"))
    elif isinstance(obj, float):
        _encode_float(obj, out)
    elif isinstance(obj, CBORTag):
        if not isinstance(obj.tag, int) or not 0 <= obj.tag < _INT_END:
            raise CBOREncodeError("tag number must be 0..2**64-1")
        _head(out, 6, obj.tag)
        _encode(obj.value, out)
    elif obj is undefined:
        out.append(0xF7)
    elif isinstance(obj, CBORSimpleValue):
        _head(out, 7, obj.value)  # value < 24 takes one byte, else f8 nn (nn >= 32)
    else:
        raise CBOREncodeError("cannot encode %s" % type(obj).__name__)


def _encode_float(x, out):
    # Preferred serialization: the shortest of half/single/double holding x exactly, so
    # RFC 8949 Appendix A re-encodes byte for byte. Every NaN becomes f97e00.
    # On ports with single-precision floats (ESP32) x always fits a single.
    if x != x:
        out.extend(b"\xf9\x7e\x00")
        return
    half = _half_bits(x)
    if half is not None:
        out.extend(struct.pack(">BH", 0xF9, half))
        return
    try:
        single = struct.pack(">f", x)
    except OverflowError:  # CPython, for |x| beyond the single range
        single = None
    if single is not None and struct.unpack(">f", single)[0] == x:
        out.append(0xFA)
        out.extend(single)
    else:
        out.append(0xFB)
        out.extend(struct.pack(">d", x))


def _half_bits(x):
    """The binary16 bits of x if a half float holds it exactly, else None (struct has no 'e')."""
    sign = 0x8000 if math.copysign(1.0, x) < 0 else 0
    x = abs(x)
    if x == _INF:
        return sign | 0x7C00
    if x == 0:
        return sign
    m, e = math.frexp(x)  # x = m * 2**e, 0.5 <= m < 1
    if e > 16:  # 65536 and up
        return None
    if e >= -13:  # normal: x = (2m) * 2**(e-1), biased exponent e + 14 in 1..30
        frac = (m * 2 - 1) * 1024  # exact: scaling by powers of two
        if frac != int(frac):
            return None
        return sign | (e + 14) << 10 | int(frac)
    steps = math.ldexp(x, 24)  # subnormal: x = steps * 2**-24, steps < 1024
    if steps != int(steps):
        return None
    return sign | int(steps)


# ---------------------------------------------------------------- decoding


def simple_or_float(dec, ai):
    """Major type 7 but false, true, null and break, whose head byte dec has read (ai: its low 5 bits)."""
    if ai < 20:
        return CBORSimpleValue(ai)
    if ai == 23:
        return undefined
    if ai == 24:
        v = dec._byte()
        if v < 32:  # RFC 8949 s.3.3: not well-formed
            raise CBORDecodeError("two-byte simple value below 32")
        return CBORSimpleValue(v)
    if ai == 25:
        b = dec._take(2)
        h = b[0] << 8 | b[1]
        exp = (h >> 10) & 0x1F
        frac = h & 0x3FF
        if exp == 0:
            x = math.ldexp(frac, -24)
        elif exp == 31:
            x = _NAN if frac else _INF
        else:
            x = math.ldexp(frac + 1024, exp - 25)
        return -x if h & 0x8000 else x
    # On single-precision ports (ESP32) a double is rounded to the nearest single.
    if ai == 26:
        return struct.unpack(">f", dec._take(4))[0]
    if ai == 27:
        return struct.unpack(">d", dec._take(8))[0]
    raise CBORDecodeError("reserved additional information %d" % ai)


def tagged(tag, value):
    """The item that tag number tag makes of its complete content value."""
    if tag == 2 or tag == 3:
        if not isinstance(value, bytes):
            raise CBORDecodeError("bignum tag must hold a byte string")
        n = int.from_bytes(value, "big")
        return n if tag == 2 else -1 - n
    return CBORTag(tag, value)


def chunks(dec, major):
    """An indefinite-length string (major 2 or 3), its head byte read: definite chunks of
    the same major type up to a break. A text chunk must be valid UTF-8 on its own (no code
    point split across chunks)."""
    parts = []
    while True:
        ib = dec._byte()
        if ib == 0xFF:  # break
            break
        if ib >> 5 != major or ib & 31 == 31:
            raise CBORDecodeError("bad chunk in indefinite-length string")
        view = dec._take(dec._arg(ib & 31))
        parts.append(dec._text(view) if major == 3 else bytes(view))
    return ("" if major == 3 else b"").join(parts)


def utf8_ok(b):
    """True if b is valid UTF-8 (RFC 3629), checked byte by byte. MicroPython's decoder checks
    only the byte structure: it accepts overlong forms, surrogates and code points past
    U+10FFFF, which RFC 8949 text may not hold (CPython's refuses them: the check agrees)."""
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c < 0x80:
            i += 1
            continue
        lo, hi = 0x80, 0xBF  # the range of the second byte
        if 0xC2 <= c <= 0xDF:
            k = 1
        elif 0xE0 <= c <= 0xEF:
            k = 2
            if c == 0xE0:
                lo = 0xA0  # overlong
            elif c == 0xED:
                hi = 0x9F  # surrogates
        elif 0xF0 <= c <= 0xF4:
            k = 3
            if c == 0xF0:
                lo = 0x90  # overlong
            elif c == 0xF4:
                hi = 0x8F  # past U+10FFFF
        else:
            return False
        if i + k >= n or not lo <= b[i + 1] <= hi:
            return False
        for j in range(i + 2, i + k + 1):
            if not 0x80 <= b[j] <= 0xBF:
                return False
        i += k + 1
    return True
