"""agent.cbor against cbor2, both ways, on random values; and random input only ever
raises CBORDecodeError. CPython only (hypothesis); the published vectors are in tests/agent.
"""

import math
import struct

import cbor2
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.fuzz import examples

from dmagent.agent import cbor, cbor_extra

EXAMPLES = settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEEP = 1000  # random values may nest past the protocol's 16; depth has its own tests

# Tags cbor2 decodes to something else (datetime, Decimal, shared refs, ...), or rejects.
CBOR2_SEMANTIC_TAGS = {0, 1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261,
                       1004, 55799}

ints = st.one_of(
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1, 2**64,
                     -1, -24, -25, -(2**64), -(2**64) - 1]),
)
floats = st.one_of(st.floats(), st.floats(width=32), st.floats(width=16))
scalars = st.one_of(
    st.none(), st.booleans(), ints, floats, st.binary(max_size=40), st.text(max_size=20),
    st.just(cbor_extra.undefined),
    st.one_of(st.integers(0, 19), st.integers(32, 255)).map(cbor_extra.CBORSimpleValue),
)
keys = st.one_of(st.text(max_size=8), st.integers())
tag_numbers = st.integers(6, 2**64 - 1).filter(lambda n: n not in CBOR2_SEMANTIC_TAGS)


def _containers(children, max_keys=8):
    return st.one_of(
        st.lists(children, max_size=5),
        st.tuples(children, children),
        st.dictionaries(keys, children, max_size=max_keys),
        st.builds(cbor_extra.CBORTag, tag_numbers, children),
    )


values = st.recursive(scalars, _containers, max_leaves=20)
# At most one key a map: cbor2's canonical mode sorts keys, agent.cbor keeps their order.
orderless = st.recursive(scalars, lambda c: _containers(c, max_keys=1), max_leaves=20)


def norm(obj):
    """A form that compares by CBOR meaning: bool is not int, -0.0 is not 0.0, NaN is NaN,
    either library's tag, simple value and undefined are the same thing, and a map's key
    order does not count (cbor2's canonical mode sorts keys)."""
    if isinstance(obj, bool):
        return ("bool", obj)
    if isinstance(obj, float):
        return ("nan",) if math.isnan(obj) else ("float", struct.pack(">d", obj))
    if isinstance(obj, (list, tuple)):
        return [norm(x) for x in obj]
    if isinstance(obj, (dict, cbor2.frozendict)):  # cbor2 freezes maps inside tags
        return ("map", sorted(((norm(k), norm(v)) for k, v in obj.items()), key=repr))
    if isinstance(obj, (cbor_extra.CBORTag, cbor2.CBORTag)):
        return ("tag", obj.tag, norm(obj.value))
    if isinstance(obj, (cbor_extra.CBORSimpleValue, cbor2.CBORSimpleValue)):
        return ("simple", obj.value)
    if obj is cbor_extra.undefined or obj is cbor2.undefined:
        return ("undefined",)
    if isinstance(obj, bytes):
        return ("bytes", obj)
    return obj


def to_cbor2(obj):
    """The same value built from cbor2's own types, for cbor2 to encode."""
    if isinstance(obj, (list, tuple)):
        return [to_cbor2(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_cbor2(v) for k, v in obj.items()}
    if isinstance(obj, cbor_extra.CBORTag):
        return cbor2.CBORTag(obj.tag, to_cbor2(obj.value))
    if isinstance(obj, cbor_extra.CBORSimpleValue):
        return cbor2.CBORSimpleValue(obj.value)
    if obj is cbor_extra.undefined:
        return cbor2.undefined
    return obj


@EXAMPLES
@given(values)
def test_agent_encodes_what_cbor2_decodes(value):
    assert norm(cbor2.loads(cbor.dumps(value))) == norm(value)


@EXAMPLES
@given(values, st.booleans())
def test_agent_decodes_what_cbor2_encodes(value, canonical):
    assert norm(cbor.loads(cbor2.dumps(to_cbor2(value), canonical=canonical), DEEP)) == norm(value)


@EXAMPLES
@given(orderless)
def test_agent_encoding_is_cbor2_canonical_byte_for_byte(value):
    # Shortest heads, shortest exact floats, NaN as f97e00: the same bytes as cbor2's.
    assert cbor.dumps(value) == cbor2.dumps(to_cbor2(value), canonical=True)


@EXAMPLES
@given(values)
def test_agent_roundtrip_and_every_prefix_truncated(value):
    data = cbor.dumps(value)
    assert norm(cbor.loads(data, DEEP)) == norm(value)
    for n in range(len(data)):
        try:
            cbor.loads(data[:n], DEEP)
        except cbor.CBORDecodeError as exc:
            assert str(exc) == "truncated"
        else:
            raise AssertionError("prefix %r decoded" % data[:n])


def _only_decode_errors(data):
    """Decode; a result must be one cbor2 reads alike. Any failure must be CBORDecodeError."""
    try:
        got = cbor.loads(data)
    except cbor.CBORDecodeError:
        return
    if "tag" not in repr(norm(got)):  # cbor2 gives some tags meanings and checks them
        assert norm(cbor2.loads(data)) == norm(got), data.hex()


@settings(max_examples=examples(1000), deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_only_raise_decode_errors(data):
    _only_decode_errors(data)


@EXAMPLES
@given(values, st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
       st.sampled_from(["set", "insert", "delete"]))
def test_mutated_encodings_only_raise_decode_errors(value, edits, how):
    # Random bytes are rarely deep; a damaged real encoding reaches every branch.
    data = bytearray(cbor.dumps(value))
    for pos, byte in edits:
        pos %= len(data) + 1
        if how == "insert":
            data[pos:pos] = bytes([byte])
        elif pos < len(data):
            if how == "set":
                data[pos] = byte
            else:
                del data[pos]
    _only_decode_errors(bytes(data))


def _strict_utf8(data):
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


# The byte-by-byte UTF-8 check is what refuses overlong forms and surrogates on MicroPython
# (whose decoder accepts them); here it is held to CPython's strict decoder.
utf8ish = st.lists(st.one_of(st.integers(0, 255), st.integers(0x80, 0xBF), st.sampled_from(
    [0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF])), max_size=12).map(bytes)


@settings(max_examples=examples(2000), deadline=None)
@given(st.one_of(utf8ish, st.text(max_size=10).map(lambda s: s.encode())))
def test_utf8_check_agrees_with_cpython(data):
    assert cbor_extra.utf8_ok(data) == _strict_utf8(data)


def test_lone_surrogate_is_an_encode_error():
    exc = cbor.CBOREncodeError
    try:
        cbor.dumps("\ud800")
    except exc:
        return
    raise AssertionError("no CBOREncodeError")
