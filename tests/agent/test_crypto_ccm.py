"""agent.ccm against RFC 3610's packet vectors #1-#24, over every AES backend this runtime
has (pure Python included); its parameters, tag checks and the COSE alg 10 profile.
"""

from agent import ccm, hal
from agent.hal.backends import aes_backends
from agent.aes import AES
from tests.agent.check import raises, unhex

# RFC 3610 section 8. All have L=2 (13-byte nonces); M=8 for #1-#6 and #13-#18, M=10 for
# #7-#12 and #19-#24; 8 header (AAD) bytes for #1-3, 7-9, 13-15, 19-21, else 12.
# #1-#12: key C0..CF, nonce 00 00 00 n+2 n+1 n n-1 A0..A5, packet 00 01 02 ... (31, 32 or
# 33 bytes, the header first): only the output after the header (ciphertext || tag) here.
KEY_1_12 = bytes(range(0xC0, 0xD0))
OUT_1_12 = (
    "588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0",
    "72c91a36e135f8cf291ca894085c87e3cc15c439c9e43a3ba091d56e10400916",
    "51b1e5f44a197d1da46b0f8e2d282ae871e838bb64da8596574adaa76fbd9fb0c5",
    "a28c6865939a9a79faaa5c4c2a9d4a91cdac8c96c861b9c9e61ef1",
    "dcf1fb7b5d9e23fb9d4e131253658ad86ebdca3e51e83f077d9c2d93",
    "6fc1b011f006568b5171a42d953d469b2570a4bd87405a0443ac91cb94",
    "0135d1b2c95f41d5d1d4fec185d166b8094e999dfed96c048c56602c97acbb7490",
    "7b75399ac0831dd2f0bbd75879a2fd8f6cae6b6cd9b7db24c17b4433f434963f34b4",
    "82531a60cc24945a4b8279181ab5c84df21ce7f9b73f42e197ea9c07e56b5eb17e5f4e",
    "07342594157785152b074098330abb141b947b566aa9406b4d999988dd",
    "676bb20380b0e301e8ab79590a396da78b834934f53aa2e9107a8b6c022c",
    "c0ffa0d6f05bdb67f24d43a4338d2aa4bed7b20e43cd1aa31662e7ad65d6db",
)
# #13-#24: key D7828D13B2B0BDC325A76236DF93CC6B, nonce 00 || 6 bytes || 3C9696766CFA.
# Fields: those 6 nonce bytes, the input packet (header || plaintext), the output after the
# header (ciphertext || tag).
KEY_13_24 = unhex("d7828d13b2b0bdc325a76236df93cc6b")
VECTORS_13_24 = (
    "412b4ea9cdbe 0be1a88bace018b108e8cf97d820ea258460e96ad9cf5289054d895ceac47c"
    " 4cb97f86a2a4689a877947ab8091ef5386a6ffbdd080f8e78cf7cb0cddd7b3",
    "33568ef7b263 63018f76dc8a1bcb9020ea6f91bdd85afa0039ba4baff9bfb79c7028949cd0ec"
    " 4ccb1e7ca981befaa0726c55d378061298c85c92814abc33c52ee81d7d77c08a",
    "103fe4133671 aa6cfa36cae86b40b916e0eacc1c00d7dcec68ec0b3bbb1a02de8a2d1aa346132e"
    " b1d23a2220ddc0ac900d9aa03c61fcf4a559a4417767089708a776796edb723506",
    "764c63b8058e d0d0735c531e1becf049c24412daac5630efa5396f770ce1a66b21f7b2101c"
    " 14d253c3967b70609b7cbb7c499160283245269a6f49975bcadeaf",
    "f8b678094e3b 77b60f011c03e1525899bcaee88b6a46c78d63e52eb8c546efb5de6f75e9cc0d"
    " 5545ff1a085ee2efbf52b2e04bee1e2336c73e3f762c0c7744fe7e3c",
    "d560912d3f70 cd9044d2b71fdb8120ea60c06435acbafb11a82e2f071d7ca4a5ebd93a803ba87f"
    " 009769ecabdf48625594c59251e6035722675e04c847099e5ae0704551",
    "42fff8f1951c d85bc7e69f944fb88a19b950bcf71a018e5e6701c91787659809d67dbedd18"
    " bc218daa947427b6db386a99ac1aef23ade0b52939cb6a637cf9bec2408897c6ba",
    "920f40e56cdc 74a0ebc9069f5b371761433c37c5a35fc1f39f406302eb907c6163be38c98437"
    " 5810e6fd25874022e80361a478e3e9cf484ab04f447efff6f0a477cc2fc9bf548944",
    "27ca0c7120bc 44a3aa3aae6475caa434a8e58500c6e41530538862d686ea9e81301b5ae4226bfa"
    " f2beed7bc5098e83feb5b31608f8e29c38819a89c8e776f1544d4151a4ed3a8b87b9ce",
    "5b8ccbcd9af8 ec46bb63b02520c33c49fd70b96b49e21d621741632875db7f6c9243d2d7c2"
    " 31d750a09da3ed7fddd49a2032aabf17ec8ebf7d22c8088c666be5c197",
    "3ebe94044b9a 47a65ac78b3d594227e85e71e2fcfbb880442c731bf95167c8ffd7895e337076"
    " e882f1dbd38ce3eda7c23f04dd65071eb41342acdf7e00dccec7ae52987d",
    "8d493b30ae8b 6e37a6ef546d955d34ab6059abf21c0b02feb88f856df4a37381bce3cc128517d4"
    " f32905b88a641b04b9c9ffb58cc390900f3da12ab16dce9e82efa16da62059",
)


def _shape(n):
    """(header length, tag length M) of packet vector #n."""
    return (8 if (n - 1) // 3 % 2 == 0 else 12), (8 if (n - 1) // 6 % 2 == 0 else 10)


def _rfc3610():
    """(n, key, nonce, aad, plaintext, ciphertext || tag) for #1-#24."""
    for n in range(1, 13):
        hdr, _ = _shape(n)
        out = unhex(OUT_1_12[n - 1])
        total = 31 + (n - 1) % 3
        nonce = bytes((0, 0, 0, n + 2, n + 1, n, n - 1)) + bytes(range(0xA0, 0xA6))
        yield n, KEY_1_12, nonce, bytes(range(hdr)), bytes(range(hdr, total)), out
    for n in range(13, 25):
        hdr, _ = _shape(n)
        mid, packet, out = VECTORS_13_24[n - 13].split()
        packet = unhex(packet)
        yield n, KEY_13_24, b"\x00" + unhex(mid) + unhex("3c9696766cfa"), packet[:hdr], packet[hdr:], unhex(out)


def _check_vectors(backend):
    count = 0
    for n, key, nonce, aad, plain, out in _rfc3610():
        m = _shape(n)[1]
        assert len(out) == len(plain) + m, n
        block = hal.aes_block(key, backend)
        assert ccm.encrypt(block, nonce, aad, plain, m) == out, "packet vector #%d (%s)" % (n, backend)
        assert ccm.decrypt(block, nonce, aad, out, m) == plain, n
        count += 1
    assert count == 24


def test_rfc3610_default_backend():
    _check_vectors(None)


def test_rfc3610_every_backend():
    for name in aes_backends():
        _check_vectors(name)


def test_rfc3610_buffers_of_any_kind():
    n, key, nonce, aad, plain, out = next(_rfc3610())
    block = AES(key).encrypt
    assert ccm.encrypt(block, bytearray(nonce), memoryview(aad), bytearray(plain), 8) == out
    assert ccm.decrypt(block, nonce, bytearray(aad), memoryview(b"x" + out)[1:], 8) == plain
    assert ccm.decrypt(block, nonce, aad, bytearray(out), 8) == plain


def test_decrypt_in_place_opens_the_message_where_it_is_and_wipes_it_on_a_bad_tag():
    # A sealed request is opened in the link's receive buffer: no copy of a 1 KB message.
    n, key, nonce, aad, plain, out = next(_rfc3610())
    block = AES(key).encrypt
    buf = bytearray(b"x" + out)
    opened = ccm.decrypt_in_place(block, nonce, aad, memoryview(buf)[1:], 8)
    assert bytes(opened) == plain and bytes(buf[1 : 1 + len(plain)]) == plain  # in buf itself
    bad = bytearray(out)
    bad[-1] ^= 1
    assert ccm.decrypt_in_place(block, nonce, aad, memoryview(bad), 8) is None
    assert bytes(bad[: len(plain)]) == bytes(len(plain))  # no unauthenticated plaintext left


def test_tampering_is_rejected():
    for n, key, nonce, aad, plain, out in _rfc3610():
        if n not in (1, 12, 24):
            continue
        m = _shape(n)[1]
        block = hal.aes_block(key)
        for i in (0, len(plain) - 1, len(plain), len(out) - 1):  # ciphertext and tag bytes
            bad = bytearray(out)
            bad[i] ^= 0x01
            assert ccm.decrypt(block, nonce, aad, bad, m) is None, (n, i)
        bad_aad = bytearray(aad)
        bad_aad[0] ^= 0x80
        assert ccm.decrypt(block, bytes(nonce), bad_aad, out, m) is None
        bad_nonce = bytearray(nonce)
        bad_nonce[12] ^= 1
        assert ccm.decrypt(block, bad_nonce, aad, out, m) is None
        assert ccm.decrypt(block, nonce, aad, out[:-1], m) is None  # truncated
        assert ccm.decrypt(block, nonce, aad, out, m - 2) is None  # wrong tag length
        assert ccm.decrypt(block, nonce, aad + b"\x00", out, m) is None
        assert ccm.decrypt(block, nonce, aad, out[: m - 1], m) is None  # shorter than a tag


def test_empty_message_and_aad():
    block = AES(KEY_1_12).encrypt
    nonce = bytes(13)
    for aad in (b"", b"a"):
        sealed = ccm.encrypt(block, nonce, aad, b"", 8)
        assert len(sealed) == 8
        assert ccm.decrypt(block, nonce, aad, sealed, 8) == b""
    assert ccm.encrypt(block, nonce, b"", b"", 8) != ccm.encrypt(block, nonce, b"\x00", b"", 8)


def test_parameters():
    block = AES(KEY_1_12).encrypt
    for tag_len in (4, 6, 8, 10, 12, 14, 16):
        for nonce_len in (7, 10, 13):
            nonce = bytes(range(nonce_len))
            sealed = ccm.encrypt(block, nonce, b"hdr", b"message", tag_len)
            assert len(sealed) == 7 + tag_len
            assert ccm.decrypt(block, nonce, b"hdr", sealed, tag_len) == b"message"
    for tag_len in (0, 2, 3, 5, 17, 18):
        raises(ValueError, ccm.encrypt, block, bytes(13), b"", b"m", tag_len)
        raises(ValueError, ccm.decrypt, block, bytes(13), b"", bytes(20), tag_len)
    for nonce_len in (0, 6, 14, 16):
        raises(ValueError, ccm.encrypt, block, bytes(nonce_len), b"", b"m", 8)
    # L=2: at most 65535 bytes of message, refused before any output is allocated
    try:
        big = bytearray(65536)
    except MemoryError:  # a board-sized heap may not have it in one piece
        return
    raises(ValueError, ccm.encrypt, block, bytes(13), b"", big, 8)


def test_alg10_profile():
    # alg 10 (a 16-byte key, a 13-byte nonce: L=2) with the default tag length, 8 bytes
    n, key, nonce, aad, plain, out = next(_rfc3610())  # #1 is M=8, L=2: alg 10's shape
    block = hal.aes_block(key)
    assert ccm.encrypt(block, nonce, aad, plain) == out
    assert ccm.decrypt(block, nonce, aad, out) == plain
    assert ccm.decrypt(block, nonce, aad, out[:-1] + b"\x00") is None
