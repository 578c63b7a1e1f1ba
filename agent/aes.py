"""Pure-Python AES block encryption (FIPS-197), 128/192/256-bit keys: the last-resort backend.

Slow but needs nothing: agent.hal uses it only when the runtime has no cryptolib, no
cryptography and no board-supplied AES. Encryption only (CCM never decrypts a block).
Byte-wise on purpose: 32-bit table words would be long ints on a 32-bit MicroPython.
"""

_S = None  # S-box, then 2*S and 3*S in GF(2^8): built once, on first use (768 bytes)
_S2 = None
_S3 = None


def _xtime(a):
    a <<= 1
    return a ^ 0x11B if a & 0x100 else a


def _tables():
    # The S-box from its definition (inverse in GF(2^8), then the affine map): no
    # hand-typed table to get wrong; FIPS-197 vectors prove it.
    global _S, _S2, _S3
    exp = bytearray(256)  # powers of the generator 3
    log = bytearray(256)
    x = 1
    for i in range(255):
        exp[i] = x
        log[x] = i
        x ^= _xtime(x)
    s = bytearray(256)
    s2 = bytearray(256)
    s3 = bytearray(256)
    for a in range(256):
        inv = exp[(255 - log[a]) % 255] if a else 0
        b = inv
        for _ in range(4):  # b ^= rotl(inv, 1..4)
            inv = ((inv << 1) | (inv >> 7)) & 0xFF
            b ^= inv
        b ^= 0x63
        s[a] = b
        d = _xtime(b)
        s2[a] = d
        s3[a] = d ^ b
    _S, _S2, _S3 = bytes(s), bytes(s2), bytes(s3)


def _expand(key):
    """Round keys, 16 bytes a round, in one bytearray; and the round count."""
    nk = len(key) // 4
    if len(key) not in (16, 24, 32):
        raise ValueError("AES key must be 16, 24 or 32 bytes")
    nr = nk + 6
    n = 16 * (nr + 1)
    w = bytearray(n)
    w[: len(key)] = key
    S = _S
    rcon = 1
    i = len(key)
    while i < n:
        t0 = w[i - 4]
        t1 = w[i - 3]
        t2 = w[i - 2]
        t3 = w[i - 1]
        word = i // 4
        if word % nk == 0:
            t0, t1, t2, t3 = S[t1] ^ rcon, S[t2], S[t3], S[t0]
            rcon = _xtime(rcon)
        elif nk > 6 and word % nk == 4:
            t0, t1, t2, t3 = S[t0], S[t1], S[t2], S[t3]
        k = i - 4 * nk
        w[i] = w[k] ^ t0
        w[i + 1] = w[k + 1] ^ t1
        w[i + 2] = w[k + 2] ^ t2
        w[i + 3] = w[k + 3] ^ t3
        i += 4
    return w, nr


class AES:
    """AES(key).encrypt(block[, out]) -> the 16-byte encryption of block (ECB, one block)."""

    def __init__(self, key):
        if _S is None:
            _tables()
        self._rk, self._nr = _expand(bytes(key))
        self._s = bytearray(16)  # state buffers, reused by every block
        self._t = bytearray(16)

    def encrypt(self, block, out=None):
        if len(block) != 16:
            raise ValueError("AES block must be 16 bytes")
        S, S2, S3 = _S, _S2, _S3
        rk = self._rk
        s, t = self._s, self._t
        for i in range(16):
            s[i] = block[i] ^ rk[i]
        k = 16
        for _ in range(self._nr - 1):
            # SubBytes, ShiftRows, MixColumns and AddRoundKey together, a column at a time
            # (state byte i is row i % 4, column i // 4). One name a line: a 4-tuple
            # assignment allocates a tuple on MicroPython.
            a0 = s[0]
            a1 = s[5]
            a2 = s[10]
            a3 = s[15]
            t[0] = S2[a0] ^ S3[a1] ^ S[a2] ^ S[a3] ^ rk[k]
            t[1] = S[a0] ^ S2[a1] ^ S3[a2] ^ S[a3] ^ rk[k + 1]
            t[2] = S[a0] ^ S[a1] ^ S2[a2] ^ S3[a3] ^ rk[k + 2]
            t[3] = S3[a0] ^ S[a1] ^ S[a2] ^ S2[a3] ^ rk[k + 3]
            a0 = s[4]
            a1 = s[9]
            a2 = s[14]
            a3 = s[3]
            t[4] = S2[a0] ^ S3[a1] ^ S[a2] ^ S[a3] ^ rk[k + 4]
            t[5] = S[a0] ^ S2[a1] ^ S3[a2] ^ S[a3] ^ rk[k + 5]
            t[6] = S[a0] ^ S[a1] ^ S2[a2] ^ S3[a3] ^ rk[k + 6]
            t[7] = S3[a0] ^ S[a1] ^ S[a2] ^ S2[a3] ^ rk[k + 7]
            a0 = s[8]
            a1 = s[13]
            a2 = s[2]
            a3 = s[7]
            t[8] = S2[a0] ^ S3[a1] ^ S[a2] ^ S[a3] ^ rk[k + 8]
            t[9] = S[a0] ^ S2[a1] ^ S3[a2] ^ S[a3] ^ rk[k + 9]
            t[10] = S[a0] ^ S[a1] ^ S2[a2] ^ S3[a3] ^ rk[k + 10]
            t[11] = S3[a0] ^ S[a1] ^ S[a2] ^ S2[a3] ^ rk[k + 11]
            a0 = s[12]
            a1 = s[1]
            a2 = s[6]
            a3 = s[11]
            t[12] = S2[a0] ^ S3[a1] ^ S[a2] ^ S[a3] ^ rk[k + 12]
            t[13] = S[a0] ^ S2[a1] ^ S3[a2] ^ S[a3] ^ rk[k + 13]
            t[14] = S[a0] ^ S[a1] ^ S2[a2] ^ S3[a3] ^ rk[k + 14]
            t[15] = S3[a0] ^ S[a1] ^ S[a2] ^ S2[a3] ^ rk[k + 15]
            s, t = t, s
            k += 16
        # last round: no MixColumns
        if out is None:
            out = bytearray(16)
            ret = None
        else:
            ret = out
        for i in range(16):
            out[i] = S[s[(i + 4 * (i & 3)) & 15]] ^ rk[k + i]
        return bytes(out) if ret is None else ret


def block(key):
    """The hal contract: a callable taking 16 bytes and returning their encryption."""
    return AES(key).encrypt
