"""Strict CBOR (RFC 8949) for the agent, with cbor2's names: dumps, loads, CBORTag, undefined.

loads() raises CBORDecodeError, and only that, for any input that is not one well-formed item.
dumps() writes maps deterministically (RFC 8949 section 4.2.1: entries in the bytewise order
of their encoded keys), so both runtimes give the same bytes whatever their dict order.
"""

import math
import struct

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


_BREAK = const(0xFF)
_INF = float("inf")
_NAN = float("nan")


class CBORDecodeError(ValueError):
    """The input is not one well-formed CBOR item, or exceeds a bound."""


class CBOREncodeError(ValueError):
    """The object (or something inside it) has no CBOR encoding here."""


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


def dumps(obj):
    """The CBOR encoding of obj: shortest heads and floats (RFC 8949 preferred serialization),
    definite lengths, map keys in bytewise order of their encodings (RFC 8949 4.2.1).
    Tuples encode as arrays, bytearray and memoryview as byte strings."""
    out = bytearray()
    _encode(obj, out)
    return bytes(out)


class _Sink:
    """A bytearray's append/extend, but sent on to write() in chunks of one small buffer:
    a large value is encoded without ever being whole in memory."""

    def __init__(self, write, size):
        self._write = write
        self._buf = bytearray(size)
        self._n = 0

    def append(self, byte):
        if self._n == len(self._buf):
            self.flush()
        self._buf[self._n] = byte
        self._n += 1

    def extend(self, data):
        mv = memoryview(data)
        i = 0
        n = len(mv)
        size = len(self._buf)
        while i < n:
            if self._n == size:
                self.flush()
            k = min(n - i, size - self._n)
            self._buf[self._n : self._n + k] = mv[i : i + k]
            self._n += k
            i += k

    def flush(self):
        if self._n:
            self._write(memoryview(self._buf)[: self._n])
            self._n = 0


class _Into:
    """append/extend into a fixed buffer from a start offset; overflow raises."""

    def __init__(self, buf, start, end):
        self.buf = buf
        self.n = start
        self.end = end

    def append(self, byte):
        n = self.n
        if n >= self.end:
            raise CBOREncodeError("encoding exceeds the buffer")
        self.buf[n] = byte
        self.n = n + 1

    def extend(self, data):
        n = self.n
        k = len(data)
        if n + k > self.end:
            raise CBOREncodeError("encoding exceeds the buffer")
        self.buf[n : n + k] = data
        self.n = n + k


def encode_into(obj, buf, start=0, end=None):
    """Encode obj into buf[start:end] (a bytearray), as dumps() would; returns the end
    offset. CBOREncodeError if it does not fit. Nothing is allocated for the output."""
    out = _Into(buf, start, len(buf) if end is None else end)
    _encode(obj, out)
    return out.n


def dump(obj, write, chunk=256):
    """Encode obj as dumps() does, handing the bytes to write() in pieces of at most chunk
    bytes (memoryviews, valid only during the call)."""
    sink = _Sink(write, chunk)
    _encode(obj, sink)
    sink.flush()


def _head(out, major, n):
    mt = major << 5
    if n < 24:
        out.append(mt | n)
    elif n < 0x100:
        out.append(mt | 24)
        out.append(n)
    elif n < 0x10000:
        out.extend(struct.pack(">BH", mt | 25, n))
    elif n < 0x100000000:
        out.extend(struct.pack(">BI", mt | 26, n))
    else:
        out.extend(struct.pack(">BQ", mt | 27, n))


def _encode_int(n, out):
    major = 0
    if n < 0:
        major = 1
        n = -1 - n
    if n < 0x10000000000000000:
        _head(out, major, n)
        return
    size = 9  # bignum (tag 2 or 3): no int.bit_length in MicroPython
    while n >> (8 * size):
        size += 1
    _head(out, 6, 2 + major)
    _head(out, 2, size)
    out.extend(n.to_bytes(size, "big"))


def _encode(obj, out):
    # Recursive, one call a level: fine for the agent's own shallow data (decoding, which
    # takes untrusted input, is iterative). A cyclic structure hits the recursion limit.
    if obj is None:
        out.append(0xF6)
    elif obj is False:
        out.append(0xF4)
    elif obj is True:
        out.append(0xF5)
    elif isinstance(obj, int):
        _encode_int(obj, out)
    elif isinstance(obj, str):
        try:
            data = obj.encode()
        except UnicodeError:  # CPython: a lone surrogate
            raise CBOREncodeError("text is not valid Unicode")
        _head(out, 3, len(data))
        out.extend(data)
    elif isinstance(obj, dict):
        _head(out, 5, len(obj))
        for key in _sorted_keys(obj):
            _encode(key, out)
            _encode(obj[key], out)
    elif isinstance(obj, (list, tuple)):
        _head(out, 4, len(obj))
        for item in obj:
            _encode(item, out)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        if isinstance(obj, memoryview):
            obj = bytes(obj)  # len() of a view counts items, not bytes
        _head(out, 2, len(obj))
        out.extend(obj)
    elif isinstance(obj, float):
        _encode_float(obj, out)
    elif isinstance(obj, CBORTag):
        if not isinstance(obj.tag, int) or not 0 <= obj.tag < 0x10000000000000000:
            raise CBOREncodeError("tag number must be 0..2**64-1")
        _head(out, 6, obj.tag)
        _encode(obj.value, out)
    elif obj is undefined:
        out.append(0xF7)
    elif isinstance(obj, CBORSimpleValue):
        _head(out, 7, obj.value)  # value < 24 takes one byte, else f8 nn (nn >= 32)
    else:
        raise CBOREncodeError("cannot encode %s" % type(obj).__name__)


def _sorted_keys(obj):
    """obj's keys in the bytewise order of their encodings. Unsigned ints (the wire's field
    keys) encode in numeric order, so they sort as they are; anything else by its bytes."""
    keys = list(obj)
    for key in keys:
        if type(key) is not int or key < 0:
            keys.sort(key=dumps)
            return keys
    keys.sort()
    return keys


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


def _half_value(h):
    exp = (h >> 10) & 0x1F
    frac = h & 0x3FF
    if exp == 0:
        x = math.ldexp(frac, -24)
    elif exp == 31:
        x = _NAN if frac else _INF
    else:
        x = math.ldexp(frac + 1024, exp - 25)
    return -x if h & 0x8000 else x


# ---------------------------------------------------------------- decoding


def loads(data, max_depth=16, max_len=0):
    """The one item that data (bytes, bytearray or memoryview) holds, with nothing after it.
    A definite-length text or byte string longer than max_len (0: no bound) is not made: a
    CBORDecodeError whose args[1] is the outermost map or array as far as it was read (a
    request's id, if it came first), so that a board's heap need not hold it for a 413.

    Arrays, maps and tags each nest one level; more than max_depth levels is an error.
    Arrays decode to lists; a map key that is an array or map, or equals an earlier key
    as a Python value (1, 1.0 and True are one key), is an error.
    """
    dec = _Decoder(data, max_depth)
    dec.max_len = max_len
    obj = dec.decode()
    if dec.pos != dec.end:
        raise CBORDecodeError("trailing bytes")
    return obj


def _lax_utf8():
    # MicroPython's decoder checks only the byte structure: it accepts overlong forms,
    # surrogates and code points past U+10FFFF, which RFC 8949 text may not hold.
    try:
        b"\xed\xa0\x80".decode()
        return True
    except UnicodeError:
        return False


_LAX_UTF8 = _lax_utf8()


def _utf8_ok(b):
    """True if b is valid UTF-8 (RFC 3629), checked byte by byte."""
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


_OPENED = object()  # _item() began an array, map or tag; its content follows
_NO_KEY = object()


class _Open:
    """An array, map or tag still being read."""

    def __init__(self, major, count, content, tag):
        self.major = major  # 4 array, 5 map, 6 tag
        self.count = count  # items (pairs for a map) still to come; < 0: up to a break
        self.content = content  # list, dict, or for a tag a list that gets its one item
        self.key = _NO_KEY  # a map's key whose value comes next
        self.tag = tag


class _Decoder:
    # Iterative, not recursive: nesting costs one _Open on the heap a level, not C stack,
    # which runs out on a board (and at about 60 levels on the 32-bit unix port).

    def __init__(self, data, max_depth):
        self.mv = memoryview(data)
        self.pos = 0
        self.end = len(self.mv)
        self.max_depth = max_depth
        self.stack = []  # _Open items, innermost last

    def decode(self):
        stack = self.stack
        while True:
            top = stack[-1] if stack else None
            if top is not None and top.count < 0 and self._at_break():
                if top.key is not _NO_KEY:
                    raise CBORDecodeError("break where a map value belongs")
                value = self._close(stack.pop())
            else:
                value = self._item()
                if value is _OPENED:
                    continue
            # a complete value: it may complete the items around it in turn
            while stack and self._add(stack[-1], value):
                value = self._close(stack.pop())
            if not stack:
                return value

    def _add(self, top, value):
        """Put a complete value into top; True when that was top's last one."""
        if top.major == 5:
            if top.key is _NO_KEY:
                try:
                    hash(value)  # an empty dict's lookup would not notice an unhashable key
                except TypeError:
                    raise CBORDecodeError("map key is an array or map")
                if value in top.content:
                    raise CBORDecodeError("duplicate map key")
                top.key = value
                return False
            top.content[top.key] = value
            top.key = _NO_KEY
        else:
            top.content.append(value)
        if top.count < 0:
            return False
        top.count -= 1
        return top.count == 0

    def _close(self, top):
        if top.major != 6:
            return top.content
        tag = top.tag
        value = top.content[0]
        if tag == 2 or tag == 3:
            if not isinstance(value, bytes):
                raise CBORDecodeError("bignum tag must hold a byte string")
            n = int.from_bytes(value, "big")
            return n if tag == 2 else -1 - n
        return CBORTag(tag, value)

    def _open(self, major, count, content, tag=None):
        if len(self.stack) >= self.max_depth:
            raise CBORDecodeError("nested too deep")
        if count == 0:
            return content
        self.stack.append(_Open(major, count, content, tag))
        return _OPENED

    def _byte(self):
        p = self.pos
        if p >= self.end:
            raise CBORDecodeError("truncated")
        self.pos = p + 1
        return self.mv[p]

    def _take(self, n):
        """A view of the next n bytes; n is checked against what is left, never allocated."""
        p = self.pos
        if n > self.end - p:
            raise CBORDecodeError("truncated")
        self.pos = p + n
        return self.mv[p : p + n]

    def _arg(self, ai):
        if ai < 24:
            return ai
        if ai == 24:
            return self._byte()
        if ai == 25:
            b = self._take(2)
            return b[0] << 8 | b[1]
        if ai == 26:
            return int.from_bytes(self._take(4), "big")
        if ai == 27:
            return int.from_bytes(self._take(8), "big")
        raise CBORDecodeError("reserved additional information %d" % ai)

    def _at_break(self):
        if self.pos >= self.end:
            raise CBORDecodeError("truncated")
        if self.mv[self.pos] == _BREAK:
            self.pos += 1
            return True
        return False

    def _item(self):
        """The next item if it is a scalar or an empty container, else _OPENED."""
        ib = self._byte()
        major = ib >> 5
        ai = ib & 31
        if major == 7:
            return self._simple_or_float(ai)
        if ai == 31:
            if major == 2 or major == 3:
                return self._chunks(major)
            if major == 4:
                return self._open(4, -1, [])
            if major == 5:
                return self._open(5, -1, {})
            raise CBORDecodeError("indefinite length in major type %d" % major)
        n = self._arg(ai)
        if major == 0:
            return n
        if major == 1:
            return -1 - n
        if major < 4 and n > self.max_len > 0 and n <= self.end - self.pos:  # (a longer claim: truncated)
            raise CBORDecodeError("string too long", self.stack[0].content if self.stack else None)
        if major == 2:
            return bytes(self._take(n))
        if major == 3:
            return self._text(self._take(n))
        # Each item takes a byte at least: a count beyond the bytes left fails here,
        # before any work (an array header can claim 2**64 items in 9 bytes).
        left = self.end - self.pos
        if major == 4:
            if n > left:
                raise CBORDecodeError("truncated")
            return self._open(4, n, [])
        if major == 5:
            if n > left // 2:
                raise CBORDecodeError("truncated")
            return self._open(5, n, {})
        return self._open(6, 1, [], n)

    def _text(self, view):
        try:
            s = str(view, "utf-8")
        except UnicodeError:
            raise CBORDecodeError("invalid UTF-8")
        # len(s) == len(view) only when every byte is ASCII: nothing more to check
        if _LAX_UTF8 and len(s) != len(view) and not _utf8_ok(view):
            raise CBORDecodeError("invalid UTF-8")
        return s

    def _chunks(self, major):
        # Indefinite string: definite chunks of the same major type up to a break. A text
        # chunk must be valid UTF-8 on its own (no code point split across chunks).
        parts = []
        while True:
            ib = self._byte()
            if ib == _BREAK:
                break
            if ib >> 5 != major or ib & 31 == 31:
                raise CBORDecodeError("bad chunk in indefinite-length string")
            view = self._take(self._arg(ib & 31))
            parts.append(self._text(view) if major == 3 else bytes(view))
        return ("" if major == 3 else b"").join(parts)

    def _simple_or_float(self, ai):
        if ai < 20:
            return CBORSimpleValue(ai)
        if ai == 20:
            return False
        if ai == 21:
            return True
        if ai == 22:
            return None
        if ai == 23:
            return undefined
        if ai == 24:
            v = self._byte()
            if v < 32:  # RFC 8949 s.3.3: not well-formed
                raise CBORDecodeError("two-byte simple value below 32")
            return CBORSimpleValue(v)
        if ai == 25:
            b = self._take(2)
            return _half_value(b[0] << 8 | b[1])
        # On single-precision ports (ESP32) a double is rounded to the nearest single.
        if ai == 26:
            return struct.unpack(">f", self._take(4))[0]
        if ai == 27:
            return struct.unpack(">d", self._take(8))[0]
        if ai == 31:
            raise CBORDecodeError("break outside an indefinite-length item")
        raise CBORDecodeError("reserved additional information %d" % ai)
