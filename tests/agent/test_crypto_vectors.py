"""agent.crypto against the published vectors: RFC 4231 (HMAC-SHA256), RFC 5869 (HKDF),
RFC 8613 Appendix C (OSCORE key derivation, nonces, and the protected messages C.4-C.8).
RFC 3610 (AES-CCM) is in test_crypto_ccm.py, FIPS-197 (AES) in test_aes.py.
"""

from agent import cbor, ccm, crypto, hal
from tests.agent.check import raises, unhex

# RFC 4231 section 4, test cases 1-7: key, data, HMAC-SHA256 (case 5: its first 128 bits).
_LONG_KEY = b"\xaa" * 131
RFC4231 = (
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (_LONG_KEY, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (_LONG_KEY, b"This is a test using a larger than block-size key and a larger than block-size data."
     b" The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
)

# RFC 5869 Appendix A.1-A.3 (SHA-256): IKM, salt, info, L, PRK, OKM.
RFC5869 = (
    (b"\x0b" * 22, bytes(range(13)), bytes(range(0xF0, 0xFA)), 42,
     "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
     "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"),
    (bytes(range(0x50)), bytes(range(0x60, 0xB0)), bytes(range(0xB0, 0x100)), 82,
     "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
     "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09"
     "da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"),
    (b"\x0b" * 22, b"", b"", 42,
     "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
     "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"),
)

# RFC 8613 Appendix C.1-C.3, the client's side (the server's is the same with Sender and
# Recipient swapped). Master Secret 0102...10 throughout; alg 10. Fields: Master Salt,
# ID Context, Sender ID, Recipient ID, Sender Key, Recipient Key, Common IV, and the
# nonces for Partial IV 0 with the Sender ID and with the Recipient ID.
SECRET = bytes(range(1, 17))
SALT = "9e7ca92223786340"
RFC8613 = (
    (SALT, None, "", "01", "f0910ed7295e6ad4b54fc793154302ff", "ffb14e093c94c9cac9471648b4f98710",
     "4622d4dd6d944168eefb54987c", "4622d4dd6d944168eefb54987c", "4722d4dd6d944169eefb54987c"),
    (None, None, "00", "01", "321b26943253c7ffb6003b0b64d74041", "e57b5635815177cd679ab4bcec9d7dda",
     "be35ae297d2dace910c52e99f9", "bf35ae297d2dace910c52e99f9", "bf35ae297d2dace810c52e99f9"),
    (SALT, "37cbf3210017a2d3", "", "01", "af2a1300a5e95788b356336eeecd2b92", "e39a0c7c77b43f03b4b39ab9a268699f",
     "2ca58fb85ff1b81c0b7181b85e", "2ca58fb85ff1b81c0b7181b85e", "2da58fb85ff1b81d0b7181b85e"),
)
# Their info arrays (section 3.2.1) for the Sender Key, the Recipient Key and the Common IV.
RFC8613_INFO = (
    ("8540f60a634b657910", "854101f60a634b657910", "8540f60a6249560d"),
    ("854100f60a634b657910", "854101f60a634b657910", "8540f60a6249560d"),
    ("85404837cbf3210017a2d30a634b657910", "8541014837cbf3210017a2d30a634b657910", "85404837cbf3210017a2d30a6249560d"),
)

# RFC 8613 Appendix C.4-C.8: context (index above), protecting side ("c"lient or
# "s"erver key), the Partial IV's generator ID and value (the nonce), the request's kid and
# Partial IV (the AAD), the nonce, plaintext, ciphertext (with the 8-byte tag).
_HELLO = "45ff48656c6c6f20576f726c6421"
RFC8613_MESSAGES = (
    (0, "c", "", 20, "", "4622d4dd6d944168eefb549868", "01b3747631", "612f1092f1776f1c1668b3825e"),  # C.4
    (1, "c", "00", 20, "00", "bf35ae297d2dace910c52e99ed", "01b3747631", "4ed339a5a379b0b8bc731fffb0"),  # C.5
    (2, "c", "", 20, "", "2ca58fb85ff1b81c0b7181b84a", "01b3747631", "72cd7273fd331ac45cffbe55c3"),  # C.6
    (0, "s", "", 20, "", "4622d4dd6d944168eefb549868", _HELLO, "dbaad1e9a7e7b2a813d3c31524378303cdafae119106"),  # C.7
    (0, "s", "01", 0, "", "4722d4dd6d944169eefb54987c", _HELLO, "4d4c13669384b67354b2b6175ff4b8658c666a6cf88e"),  # C.8
)


def _ctx(row):
    salt, ctx, sid, rid = row[:4]
    return crypto.derive(SECRET, salt and unhex(salt), unhex(sid), unhex(rid), ctx and unhex(ctx))


def test_rfc4231_hmac_sha256():
    for key, data, mac in RFC4231:
        assert crypto.hmac_sha256(key, data)[: len(mac) // 2] == unhex(mac), mac


def test_hmac_of_parts_matches_one_shot():
    for key, data, mac in RFC4231:
        parts = [data[i : i + 7] for i in range(0, len(data), 7)]
        assert crypto.hmac_sha256(key, *parts)[: len(mac) // 2] == unhex(mac)
    assert crypto.hmac_sha256(b"k", b"a", bytearray(b"b"), memoryview(b"xcx")[1:2]) == crypto.hmac_sha256(b"k", b"abc")
    assert crypto.hmac_sha256(b"k") == crypto.hmac_sha256(b"k", b"")


def test_rfc5869_hkdf_sha256():
    for ikm, salt, info, length, prk, okm in RFC5869:
        assert crypto.hmac_sha256(salt or b"", ikm) == unhex(prk)  # HKDF-Extract
        assert crypto.hkdf_expand(unhex(prk), info, length) == unhex(okm)
    assert crypto.hmac_sha256(bytes(32), b"\x0b" * 22) == unhex(RFC5869[2][4])  # no salt: zeros, as derive() takes it


def test_hkdf_lengths():
    prk = unhex(RFC5869[0][4])
    okm = crypto.hkdf_expand(prk, b"i", 255 * 32)
    assert len(okm) == 8160
    assert crypto.hkdf_expand(prk, b"i", 33) == okm[:33]
    assert crypto.hkdf_expand(prk, b"i", 0) == b""
    raises(ValueError, crypto.hkdf_expand, prk, b"i", 8161)


def test_equal():
    assert crypto.equal(b"", b"")
    assert crypto.equal(b"abc", bytearray(b"abc"))
    assert crypto.equal(memoryview(b"xabc")[1:], b"abc")
    assert not crypto.equal(b"abc", b"abd")
    assert not crypto.equal(b"\x00bc", b"\x80bc")
    assert not crypto.equal(b"abc", b"ab")
    assert not crypto.equal(b"", b"\x00")


def test_rfc8613_info_encoding():
    # section 3.2.1: info = [id, id_context, alg_aead, type, L], nil for an absent ID Context
    for row, (i_sender, i_recipient, i_iv) in zip(RFC8613, RFC8613_INFO):
        ctx = row[1] and unhex(row[1])
        assert cbor.dumps([unhex(row[2]), ctx, 10, "Key", 16]) == unhex(i_sender)
        assert cbor.dumps([unhex(row[3]), ctx, 10, "Key", 16]) == unhex(i_recipient)
        assert cbor.dumps([b"", ctx, 10, "IV", 13]) == unhex(i_iv)


def test_rfc8613_key_derivation_client_and_server():
    for row in RFC8613:
        salt, ctx, sid, rid, skey, rkey, iv = row[:7]
        assert _ctx(row) == (unhex(skey), unhex(rkey), unhex(iv)), skey
        server = crypto.derive(SECRET, salt and unhex(salt), unhex(rid), unhex(sid), ctx and unhex(ctx))
        assert server == (unhex(rkey), unhex(skey), unhex(iv))


def test_rfc8613_nonces():
    for row in RFC8613:
        sid, rid, iv, snonce, rnonce = row[2], row[3], unhex(row[6]), row[7], row[8]
        assert crypto.nonce(iv, unhex(sid), b"\x00") == unhex(snonce)
        assert crypto.nonce(iv, unhex(rid), b"\x00") == unhex(rnonce)
        assert crypto.nonce(iv, unhex(rid), 0) == unhex(rnonce)  # an int Partial IV too
    for ctx, _, id_piv, piv, _, want, _, _ in RFC8613_MESSAGES:
        iv = unhex(RFC8613[ctx][6])
        assert crypto.nonce(iv, unhex(id_piv), bytes((piv,))) == unhex(want)


def test_nonce_limits():
    iv = bytes(13)
    n = crypto.nonce(iv, b"\x01" * 7, b"\xff" * 5)
    assert n == b"\x07" + b"\x01" * 7 + b"\xff" * 5
    raises(ValueError, crypto.nonce, iv, b"\x01" * 8, b"\x00")
    raises(ValueError, crypto.nonce, iv, b"", b"\x00" * 6)


def _aad(request_kid, request_piv):
    # sections 5.4 and 5.6: Enc_structure ["Encrypt0", h'', external_aad], external_aad =
    # bstr .cbor [oscore_version 1, [alg_aead 10], request_kid, request_piv, options h'']
    external = cbor.dumps([1, [10], request_kid, request_piv, b""])
    return cbor.dumps(["Encrypt0", b"", external])


def test_rfc8613_c4_aad():
    assert _aad(b"", b"\x14") == unhex("8368456e63727970743040488501810a40411440")
    assert _aad(b"\x00", b"\x14") == unhex("8368456e63727970743040498501810a4100411440")  # C.5


def test_rfc8613_protected_messages():
    for ctx, side, id_piv, piv, kid, want_nonce, plain, want in RFC8613_MESSAGES:
        skey, rkey, iv = _ctx(RFC8613[ctx])
        key = skey if side == "c" else rkey  # the server sends with the client's Recipient Key
        nonce = crypto.nonce(iv, unhex(id_piv), bytes((piv,)))
        assert nonce == unhex(want_nonce)
        aad = _aad(unhex(kid), b"\x14")  # every example answers or is the request with PIV 20
        block = hal.aes_block(key)
        sealed = ccm.encrypt(block, nonce, aad, unhex(plain), 8)
        assert sealed == unhex(want), want
        assert ccm.decrypt(block, nonce, aad, sealed, 8) == unhex(plain)
        assert ccm.decrypt(block, nonce, aad[:-1] + b"\x15", sealed, 8) is None
