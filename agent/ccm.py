"""AES-CCM (RFC 3610) over one AES block function.

The block function takes 16 bytes and returns their encryption. If it also takes an output
buffer, block(src, dst), writing dst and returning dst or None (cryptolib's encrypt,
agent.aes, whatever agent.hal returns), CCM runs without allocating a block: three 16-byte
buffers a call, reused for every block. Anything else gets its result copied.

The tag length M is a parameter (4..16, even); the length-field size L is 15 - len(nonce)
(nonces of 7..13 bytes: L 8..2). COSE alg 10, AES-CCM-16-64-128, is L=2 (a 13-byte nonce),
M=8, a 16-byte key. decrypt returns None on a bad tag, and only then.
"""

from .crypto import equal

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


_TAG_LEN = const(8)  # the default: COSE alg 10's (its key and nonce lengths: the docstring)


def _start(block, nonce, tag_len, aad, n):
    """Checks the parameters -> (two-argument block function, CBC-MAC state after B_0 and
    the AAD, A_0, S_0)."""
    q = 15 - len(nonce)  # L, the length-field size
    if not 2 <= q <= 8:
        raise ValueError("CCM nonce must be 7..13 bytes")
    if tag_len < 4 or tag_len > 16 or tag_len & 1:
        raise ValueError("CCM tag length must be 4, 6, ..., 16")
    if q < 8 and n >> (8 * q):
        raise ValueError("message too long for this nonce length")
    a = bytearray(16)  # A_i: flags L-1, nonce, counter i (now 0)
    a[0] = q - 1
    a[1 : 16 - q] = nonce
    s0 = bytearray(16)
    try:  # S_0 = E(A_0), and the block function's calling convention with it
        r = block(a, s0)
    except TypeError:
        r = block(a)
    if r is not None and r is not s0:  # a one-argument block function: its results copied
        s0[:] = r
        one = block

        def block(src, dst):
            dst[:] = one(src)
            return dst

    x = bytearray(16)  # B_0: flags, nonce, l(m); then the CBC-MAC chaining value
    x[0] = (64 if len(aad) else 0) | (tag_len - 2) << 2 | (q - 1)
    x[1 : 16 - q] = nonce
    k = 15
    while n:
        x[k] = n & 0xFF
        n >>= 8
        k -= 1
    block(x, x)
    la = len(aad)
    if la:
        if la < 0xFF00:
            head = la.to_bytes(2, "big")
        elif la >> 32 == 0:
            head = b"\xff\xfe" + la.to_bytes(4, "big")
        else:
            head = b"\xff\xff" + la.to_bytes(8, "big")
        data = head + bytes(aad)  # AAD is small here: one copy is fine
        n = len(data)
        for j in range(0, n, 16):  # CBC-MAC it, zero-padded to whole blocks, into x
            r = n - j
            if r > 16:
                r = 16
            for k in range(r):
                x[k] ^= data[j + k]
            block(x, x)
    return block, x, a, s0


def _ctr_mac(block, x, a, src, out, enc):
    """CTR-crypt src into out with A_1, A_2, ... and CBC-MAC the plaintext into x: src when
    enc (encrypting), out when not."""
    s = bytearray(16)
    n = len(src)
    i = 0
    for j in range(0, n, 16):
        i += 1
        lo = i & 0xFF
        a[15] = lo
        if not lo:  # carry into the counter's higher bytes
            c, k = i >> 8, 14
            while c:
                a[k] = c & 0xFF
                c >>= 8
                k -= 1
        block(a, s)
        r = n - j
        if r > 16:
            r = 16
        if enc:
            for k in range(r):
                d = src[j + k]
                out[j + k] = d ^ s[k]
                x[k] ^= d
        else:
            for k in range(r):
                d = src[j + k] ^ s[k]
                out[j + k] = d
                x[k] ^= d
        block(x, x)


def encrypt(block, nonce, aad, plaintext, tag_len=_TAG_LEN):
    """ciphertext || tag (len(plaintext) + tag_len bytes)."""
    n = len(plaintext)
    out = bytearray(n + tag_len)
    out[:n] = plaintext
    encrypt_in_place(block, nonce, aad, out, 0, n, tag_len)
    return bytes(out)


def encrypt_in_place(block, nonce, aad, buf, start, n, tag_len=_TAG_LEN):
    """Encrypt buf[start:start+n] where it is and write the tag after it (buf needs the
    room): no allocation for the message. Returns the end offset."""
    mv = memoryview(buf)
    block, x, a, s0 = _start(block, nonce, tag_len, aad, n)
    _ctr_mac(block, x, a, mv[start : start + n], mv[start : start + n], True)
    end = start + n
    for k in range(tag_len):
        buf[end + k] = x[k] ^ s0[k]
    return end + tag_len


def decrypt(block, nonce, aad, data, tag_len=_TAG_LEN):
    """The plaintext of data = ciphertext || tag, or None if the tag does not verify
    (compared in constant time; the unauthenticated plaintext never leaves)."""
    plain = decrypt_in_place(block, nonce, aad, memoryview(bytearray(data)), tag_len)
    return None if plain is None else bytes(plain)


def decrypt_in_place(block, nonce, aad, data, tag_len=_TAG_LEN):
    """decrypt() where the message is: data, a writable memoryview of ciphertext || tag, gets
    the plaintext in its first bytes. -> a memoryview of them, or None (the bytes wiped).
    No allocation for the message: a sealed request is opened in the link's receive buffer."""
    n = len(data) - tag_len
    block, x, a, s0 = _start(block, nonce, tag_len, aad, max(n, 0))  # bad parameters raise
    if n < 0:
        return None
    plain = data[:n]
    _ctr_mac(block, x, a, plain, plain, False)  # byte by byte: each read before it is written
    for k in range(tag_len):
        x[k] ^= s0[k]
    if not equal(memoryview(x)[:tag_len], data[n:]):
        for k in range(n):
            plain[k] = 0
        return None
    return plain

