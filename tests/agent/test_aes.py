"""agent.aes (the pure-Python last resort) against FIPS-197's worked examples."""

from agent import aes
from tests.agent.check import raises, unhex

PLAIN = unhex("00112233445566778899aabbccddeeff")
# FIPS-197 Appendix C.1-C.3: key 00 01 02 ... of 128, 192, 256 bits.
FIPS197_C = (
    (16, "69c4e0d86a7b0430d8cdb78070b4c55a"),
    (24, "dda97ca4864cdfe06eaf70a0ec0d7191"),
    (32, "8ea2b7ca516745bfeafc49904b496089"),
)
# FIPS-197 Appendix B (the cipher example): key, input, output.
FIPS197_B = ("2b7e151628aed2a6abf7158809cf4f3c", "3243f6a8885a308d313198a2e0370734", "3925841d02dc09fbdc118597196a0b32")


def test_fips197_appendix_c():
    for n, want in FIPS197_C:
        assert aes.AES(bytes(range(n))).encrypt(PLAIN) == unhex(want), n


def test_fips197_appendix_b():
    key, plain, want = FIPS197_B
    assert aes.AES(unhex(key)).encrypt(unhex(plain)) == unhex(want)


def test_sbox():
    # FIPS-197 Figure 7 corners and the fixed points of the construction
    aes.AES(bytes(16))
    s = aes._S
    assert (s[0x00], s[0x01], s[0x53], s[0xFF], s[0x10]) == (0x63, 0x7C, 0xED, 0x16, 0xCA)
    assert len(set(s)) == 256  # a permutation


def test_block_function_and_buffers():
    key = bytes(range(16))
    enc = aes.block(bytearray(key))
    want = unhex(FIPS197_C[0][1])
    assert enc(PLAIN) == want
    assert enc(bytearray(PLAIN)) == want
    assert enc(memoryview(b"x" + PLAIN)[1:]) == want
    assert type(enc(PLAIN)) is bytes
    out = bytearray(16)
    assert aes.AES(key).encrypt(PLAIN, out) is out and out == want
    # the same object encrypts block after block (its buffers are reused)
    c = aes.AES(key)
    assert c.encrypt(c.encrypt(PLAIN)) == aes.AES(key).encrypt(want)


def test_bad_sizes():
    raises(ValueError, aes.AES, bytes(15))
    raises(ValueError, aes.AES, bytes(0))
    raises(ValueError, aes.AES, bytes(33))
    c = aes.AES(bytes(16))
    raises(ValueError, c.encrypt, bytes(15))
    raises(ValueError, c.encrypt, bytes(32))
