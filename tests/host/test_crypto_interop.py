"""The agent's own crypto against the host's libraries on random input: agent.ccm vs
cryptography's AESCCM, agent.crypto's HKDF and HMAC vs cryptography's HKDF and Python's
hmac, agent.aes vs AES-ECB, the OSCORE derivation vs one built from cryptography and cbor2.
Tampering is rejected. CPython only (hypothesis); the published vectors are in tests/agent.
"""

import hashlib
import hmac

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import examples

from dmagent.agent import aes, ccm, crypto, hal

EXAMPLES = settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])

keys = st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n))
nonces13 = st.binary(min_size=13, max_size=13)
messages = st.binary(max_size=600)
aads = st.binary(max_size=300)


def _ecb(key):
    return Cipher(algorithms.AES(key), modes.ECB()).encryptor().update


def _block(key, kind):
    """Block functions of every shape agent.ccm meets: hal's backends (which also write
    into a buffer), a plain one-argument function, and one that ignores a second argument
    (as a JavaScript function would) and only returns its answer."""
    if kind in ("cryptography", "pure"):
        return hal.aes_block(key, kind)
    upd = _ecb(key)
    if kind == "one-arg":
        return lambda src: upd(bytes(src))
    return lambda src, *ignored: upd(bytes(src))


block_kinds = st.sampled_from(["cryptography", "pure", "one-arg", "ignores-dst"])


@EXAMPLES
@given(key=keys, nonce=nonces13, aad=aads, msg=messages, tag_len=st.sampled_from([8, 16]), kind=block_kinds)
def test_ccm_matches_aesccm_l2(key, nonce, aad, msg, tag_len, kind):
    block = _block(key, kind)
    want = AESCCM(key, tag_len).encrypt(nonce, msg, aad)
    assert ccm.encrypt(block, nonce, aad, msg, tag_len) == want
    assert ccm.decrypt(block, nonce, aad, want, tag_len) == msg


@EXAMPLES
@given(key=keys, nonce=st.integers(7, 13).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
       aad=aads, msg=messages, tag_len=st.sampled_from([4, 6, 8, 10, 12, 14, 16]))
def test_ccm_matches_aesccm_every_l_and_m(key, nonce, aad, msg, tag_len):
    block = hal.aes_block(key)
    want = AESCCM(key, tag_len).encrypt(nonce, msg, aad)
    assert ccm.encrypt(block, nonce, aad, msg, tag_len) == want
    assert ccm.decrypt(block, nonce, aad, want, tag_len) == msg


@EXAMPLES
@given(key=st.binary(min_size=16, max_size=16), nonce=nonces13, aad=aads, msg=messages)
def test_alg10_profile_matches_aesccm(key, nonce, aad, msg):
    block = hal.aes_block(key)
    want = AESCCM(key, 8).encrypt(nonce, msg, aad)  # COSE alg 10: AES-CCM-16-64-128, 8-byte tags
    assert ccm.encrypt(block, nonce, aad, msg) == want  # the agent's default is that profile
    assert ccm.decrypt(block, nonce, aad, want) == msg


@EXAMPLES
@given(key=keys, nonce=nonces13, aad=aads, msg=messages, tag_len=st.sampled_from([8, 16]),
       where=st.sampled_from(["ciphertext", "tag", "aad", "nonce"]), data=st.data())
def test_one_flipped_bit_is_rejected(key, nonce, aad, msg, tag_len, where, data):
    block = hal.aes_block(key)
    sealed = bytearray(AESCCM(key, tag_len).encrypt(nonce, msg, aad))
    aad, nonce = bytearray(aad), bytearray(nonce)
    if where == "ciphertext" and msg:
        target, lo, hi = sealed, 0, len(msg)
    elif where == "aad" and aad:
        target, lo, hi = aad, 0, len(aad)
    elif where == "nonce":
        target, lo, hi = nonce, 0, 13
    else:
        target, lo, hi = sealed, len(msg), len(sealed)
    bit = data.draw(st.integers(8 * lo, 8 * hi - 1))
    target[bit >> 3] ^= 1 << (bit & 7)
    assert ccm.decrypt(block, bytes(nonce), bytes(aad), bytes(sealed), tag_len) is None


@EXAMPLES
@given(key=keys, nonce=nonces13, aad=aads, msg=messages, tag_len=st.sampled_from([8, 16]),
       cut=st.integers(1, 16))
def test_truncated_or_retagged_is_rejected(key, nonce, aad, msg, tag_len, cut):
    block = hal.aes_block(key)
    sealed = AESCCM(key, tag_len).encrypt(nonce, msg, aad)
    assert ccm.decrypt(block, nonce, aad, sealed[:-cut], tag_len) is None
    if tag_len == 16:  # the same bytes read as a shorter tag: a different tag, so refused
        assert ccm.decrypt(block, nonce, aad, sealed, 8) is None


def test_ccm_long_aad_and_message():
    # AAD of 2^16 - 2^8 bytes and more takes the 0xFFFE + 4-byte length form (RFC 3610 2.2);
    # a counter past 255 carries into the next byte
    key = bytes(range(16))
    block = hal.aes_block(key)
    for aad_len in (0xFEFF, 0xFF00, 70000):
        aad = bytes(i & 0xFF for i in range(aad_len))
        msg = bytes(range(256)) * 20  # 320 blocks
        want = AESCCM(key, 8).encrypt(bytes(13), msg, aad)
        assert ccm.encrypt(block, bytes(13), aad, msg, 8) == want
        assert ccm.decrypt(block, bytes(13), aad, want, 8) == msg
    nonce7 = bytes(7)  # L=8
    msg = bytes(70000)
    want = AESCCM(key, 16).encrypt(nonce7, msg, b"")
    assert ccm.encrypt(block, nonce7, b"", msg, 16) == want


@EXAMPLES
@given(key=keys, blocks=st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=4))
def test_aes_matches_ecb(key, blocks):
    ecb = _ecb(key)
    mine = aes.AES(key)
    for b in blocks:
        assert mine.encrypt(b) == ecb(b)
        assert hal.aes_block(key, "pure")(b) == ecb(b)
        assert hal.aes_block(key)(b) == ecb(b)


@EXAMPLES
@given(key=st.binary(max_size=200), msg=st.binary(max_size=500), cuts=st.lists(st.integers(0, 500), max_size=4))
def test_hmac_matches_python_hmac(key, msg, cuts):
    want = hmac.new(key, msg, hashlib.sha256).digest()
    assert crypto.hmac_sha256(key, msg) == want
    parts = []
    last = 0
    for cut in sorted(c for c in cuts if c <= len(msg)) + [len(msg)]:
        parts.append(msg[last:cut])
        last = cut
    assert crypto.hmac_sha256(key, *parts) == want


@EXAMPLES
@given(ikm=st.binary(max_size=100), salt=st.binary(max_size=100), info=st.binary(max_size=100),
       length=st.integers(1, 255 * 32))
def test_hkdf_matches_cryptography(ikm, salt, info, length):
    want = HKDF(hashes.SHA256(), length, salt or None, info).derive(ikm)
    prk = crypto.hmac_sha256(salt or b"", ikm)  # HKDF-Extract, as derive() does it
    assert crypto.hkdf_expand(prk, info, length) == want
    assert prk == hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    assert crypto.hkdf_expand(prk, info, length) == HKDFExpand(hashes.SHA256(), length, info).derive(prk)


ids = st.binary(max_size=7)


@FEWER
@given(secret=st.binary(min_size=16, max_size=32), salt=st.one_of(st.none(), st.binary(max_size=32)),
       sid=ids, rid=ids, ctx=st.one_of(st.none(), st.binary(max_size=40)),
       alg_len=st.sampled_from([(10, 16, 13), (4, 32, 13), (11, 32, 7)]))
def test_oscore_derive_matches_independent_derivation(secret, salt, sid, rid, ctx, alg_len):
    alg, key_len, iv_len = alg_len

    def expand(ident, kind, n):
        info = cbor2.dumps([ident, ctx, alg, kind, n])
        return HKDF(hashes.SHA256(), n, salt or None, info).derive(secret)

    want = (expand(sid, "Key", key_len), expand(rid, "Key", key_len), expand(b"", "IV", iv_len))
    assert crypto.derive(secret, salt, sid, rid, ctx, alg, key_len, iv_len) == want


@EXAMPLES
@given(iv=st.binary(min_size=13, max_size=13), sid=ids, piv=st.integers(0, 2**40 - 1))
def test_oscore_nonce_matches_formula(iv, sid, piv):
    # RFC 8613 5.2 as one integer: S || ID_PIV (7 bytes) || PIV (5 bytes), XOR common IV
    want = ((len(sid) << 96 | int.from_bytes(sid, "big") << 40 | piv) ^ int.from_bytes(iv, "big")).to_bytes(13, "big")
    short = piv.to_bytes(max(1, (piv.bit_length() + 7) // 8), "big")
    assert crypto.nonce(iv, sid, short) == want
    assert crypto.nonce(iv, sid, piv) == want


@EXAMPLES
@given(a=st.binary(max_size=40), b=st.binary(max_size=40))
def test_equal_is_equality(a, b):
    assert crypto.equal(a, b) == (a == b)
    assert crypto.equal(a, bytearray(a))


def test_board_backend_with_ccm():
    # what the virtual board does: registers an AES whose block function returns bytes only
    hal.set_aes_backend(lambda key: _ecb(bytes(key)))
    try:
        key = bytes(range(16))
        block = hal.aes_block(key, "board")
        want = AESCCM(key, 8).encrypt(bytes(13), b"frame body", b"aad")
        assert ccm.encrypt(block, bytes(13), b"aad", b"frame body", 8) == want
        out = bytearray(16)
        assert block(bytes(16), out) is out and out == _ecb(key)(bytes(16))
    finally:
        hal.set_aes_backend(None)
