"""What differs per runtime: the AES block, randomness, the millisecond clock.

AES backends, first present wins: "cryptolib" (MicroPython, ECB), "cryptography" (CPython),
"board" (registered with set_aes_backend: the virtual board's Node.js crypto), "pure"
(agent.aes). A block function takes 16 bytes and returns their 16-byte encryption; every
one made here also takes an output buffer, block(src, dst) -> dst, so AES-CCM can run
without allocating a block.
Randomness: os.urandom, else the source registered with set_random, else an error: never
a weak fallback. Every import is lazy: the agent's heap is a board's (the list of backends
present, for tests and benches, is agent.hal.backends).
"""

import time

_board_aes = None  # key -> block function, from set_aes_backend
_board_random = None  # n -> n random bytes, from set_random
_default = None  # name of the first AES backend present, found once
_urandom = None  # os.urandom, or False once known to be missing

BACKENDS = ("cryptolib", "cryptography", "board", "pure")


def set_aes_backend(factory):
    """Register the board's AES: factory(key) -> fn, fn(16 bytes) -> 16 bytes (bytes-like).
    None unregisters. Used after cryptolib and cryptography, before agent.aes."""
    global _board_aes, _default
    _board_aes = factory
    _default = None


def set_random(fn):
    """Register the board's randomness: fn(n) -> n random bytes. Used where os has no
    urandom (the WebAssembly port). None unregisters."""
    global _board_random
    _board_random = fn


def _present(name):
    if name == "board":
        return _board_aes is not None
    if name == "pure":
        return True
    try:
        if name == "cryptolib":
            try:
                import cryptolib  # noqa: F401
            except ImportError:
                import ucryptolib  # noqa: F401
        else:
            import cryptography.hazmat.primitives.ciphers  # noqa: F401
    except ImportError:
        return False
    return True


def backend_name():
    """The AES backend aes_block uses (for `info`)."""
    global _default
    if _default is None:
        for name in BACKENDS:
            if _present(name):
                _default = name
                break
    return _default


def aes_block(key, backend=None):
    """A function encrypting one 16-byte block under key (16, 24 or 32 bytes).
    backend forces one by name (tests, benches); ImportError if it is not here."""
    if len(key) not in (16, 24, 32):
        raise ValueError("AES key must be 16, 24 or 32 bytes")
    name = backend or backend_name()
    if name == "cryptolib" and len(key) == 24 and not backend:
        name = "board" if _board_aes is not None else "pure"  # cryptolib has no AES-192
    if name == "cryptolib":
        try:
            import cryptolib
        except ImportError:
            import ucryptolib as cryptolib  # MicroPython before 1.20
        return cryptolib.aes(key, 1).encrypt  # mode 1: ECB; encrypt(src[, dst])
    if name == "cryptography":
        from .cpython import cryptography_aes  # CPython only

        return cryptography_aes(key)
    if name == "board":
        if _board_aes is None:
            raise ImportError("no board AES registered")
        fn = _board_aes(key)

        def block(src, dst=None):
            out = bytes(fn(bytes(src)))  # plain bytes both ways: the simplest for JS glue
            if len(out) != 16:
                raise ValueError("board AES returned %d bytes, not 16" % len(out))
            if dst is None:
                return out
            dst[:] = out
            return dst

        return block
    if name == "pure":
        from .. import aes

        return aes.AES(key).encrypt
    raise ValueError("unknown AES backend %r" % (name,))


def random_bytes(n):
    """n bytes from the runtime's random source; OSError when there is none."""
    global _urandom
    if _urandom is None:
        try:
            import os

            _urandom = os.urandom
        except (ImportError, AttributeError):
            _urandom = False
    if _urandom:
        return _urandom(n)
    if _board_random is not None:
        data = bytes(_board_random(n))
        if len(data) != n:
            raise OSError("board random source gave %d bytes, not %d" % (len(data), n))
        return data
    raise OSError("no random source: os.urandom is missing and no board source is set (hal.set_random)")


# Milliseconds on a wrapping counter, with MicroPython's semantics on every runtime, so code
# tested on CPython meets the same wrap-around as on a board.
if hasattr(time, "ticks_ms"):
    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
    ticks_add = time.ticks_add
else:
    from .cpython import ticks_add, ticks_diff, ticks_ms  # noqa: F401
