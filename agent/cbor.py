"""Strict CBOR (RFC 8949) for the agent, with cbor2's names: dumps, loads, CBORDecodeError.

loads() raises CBORDecodeError, and only that, for any input that is not one well-formed item.
dumps() writes maps deterministically (RFC 8949 section 4.2.1: entries in the bytewise order
of their encoded keys), so both runtimes give the same bytes whatever their dict order.
Floats, tags, simple values and other rare items are agent.cbor_extra's (CBORTag,
CBORSimpleValue and undefined are there), imported the first time one is met.
"""

import struct

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


_BREAK = const(0xFF)
_INT_END = 0x10000000000000000  # ints in _INT_MIN.._INT_END-1 have a head of their own
_INT_MIN = -_INT_END  # (beyond: bignums, tags 2 and 3)


class CBORDecodeError(ValueError):
    """The input is not one well-formed CBOR item, or exceeds a bound."""


class CBOREncodeError(ValueError):
    """The object (or something inside it) has no CBOR encoding here."""


# ---------------------------------------------------------------- encoding


def dumps(obj):
    """The CBOR encoding of obj: shortest heads and floats (RFC 8949 preferred serialization),
    definite lengths, map keys in bytewise order of their encodings (RFC 8949 4.2.1).
    Tuples encode as arrays, bytearray and memoryview as byte strings."""
    out = bytearray()
    _encode(obj, out)
    return bytes(out)


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


def _encode(obj, out):
    # Recursive, one call a level: fine for the agent's own shallow data (decoding, which
    # takes untrusted input, is iterative). A cyclic structure hits the recursion limit.
    if obj is None:
        out.append(0xF6)
    elif obj is False:
        out.append(0xF4)
    elif obj is True:
        out.append(0xF5)
    elif isinstance(obj, int) and _INT_MIN <= obj < _INT_END:
        if obj < 0:
            _head(out, 1, -1 - obj)
        else:
            _head(out, 0, obj)
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
    else:  # floats, bignums, tags, simple values: rare on a board
        from . import cbor_extra

        cbor_extra.encode(obj, out)


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
    dec = _Decoder(data, max_depth, max_len)
    obj = dec.decode()
    if dec.pos != dec.end:
        raise CBORDecodeError("trailing bytes")
    return obj


_OPENED = object()  # _item() began an array, map or tag; its content follows
_STOP = object()  # _item() read a break
_NO_KEY = object()


# An array, map or tag still being read is a list [major, count, content, key, tag]:
_MAJOR = const(0)  # 4 array, 5 map, 6 tag
_COUNT = const(1)  # items (pairs for a map) still to come; < 0: up to a break
_CONTENT = const(2)  # list, dict, or for a tag a list that gets its one item
_KEY = const(3)  # a map's key whose value comes next, or _NO_KEY
_TAG = const(4)  # a tag's number


class _Decoder:
    # Iterative, not recursive: nesting costs one list on the heap a level, not C stack,
    # which runs out on a board (and at about 60 levels on the 32-bit unix port).

    def __init__(self, data, max_depth, max_len):
        self.mv = memoryview(data)
        self.pos = 0
        self.end = len(self.mv)
        self.max_depth = max_depth
        self.max_len = max_len
        self.stack = []  # what is open, innermost last

    def decode(self):
        stack = self.stack
        while True:
            value = self._item()
            if value is _OPENED:
                continue
            top = stack[-1] if stack else None
            if value is _STOP:
                if top is None or top[_COUNT] >= 0:
                    raise CBORDecodeError("break outside an indefinite-length item")
                if top[_KEY] is not _NO_KEY:
                    raise CBORDecodeError("break where a map value belongs")
            # a complete value goes into top, and may complete it and the items around it in
            # turn; a break completes top
            while top is not None:
                if value is not _STOP:
                    if top[_MAJOR] == 5:
                        if top[_KEY] is _NO_KEY:
                            try:
                                hash(value)  # an empty dict's lookup would not notice an unhashable key
                            except TypeError:
                                raise CBORDecodeError("map key is an array or map")
                            if value in top[_CONTENT]:
                                raise CBORDecodeError("duplicate map key")
                            top[_KEY] = value
                            break
                        top[_CONTENT][top[_KEY]] = value
                        top[_KEY] = _NO_KEY
                    else:
                        top[_CONTENT].append(value)
                    if top[_COUNT] < 0:
                        break
                    top[_COUNT] -= 1
                    if top[_COUNT]:
                        break
                stack.pop()
                value = top[_CONTENT]
                if top[_MAJOR] == 6:
                    from . import cbor_extra

                    value = cbor_extra.tagged(top[_TAG], value[0])
                top = stack[-1] if stack else None
            if top is None:
                return value

    def _open(self, major, count, content, tag=None):
        if len(self.stack) >= self.max_depth:
            raise CBORDecodeError("nested too deep")
        if count == 0:
            return content
        self.stack.append([major, count, content, _NO_KEY, tag])
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

    def _item(self):
        """The next item if it is a scalar or an empty container, else _OPENED (its content
        follows) or _STOP (a break)."""
        ib = self._byte()
        major = ib >> 5
        ai = ib & 31
        if major == 7:
            if ib == _BREAK:
                return _STOP
            if ai == 20:
                return False
            if ai == 21:
                return True
            if ai == 22:
                return None
            from . import cbor_extra  # floats, simple values, undefined

            return cbor_extra.simple_or_float(self, ai)
        if ai == 31:
            if major == 2 or major == 3:
                from . import cbor_extra

                return cbor_extra.chunks(self, major)
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
            raise CBORDecodeError("string too long", self.stack[0][_CONTENT] if self.stack else None)
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
        # len(s) == len(view) only when every byte is ASCII: nothing more to check; else
        # MicroPython's str() took overlong forms and surrogates too
        if len(s) != len(view):
            from . import cbor_extra

            if not cbor_extra.utf8_ok(view):
                raise CBORDecodeError("invalid UTF-8")
        return s
