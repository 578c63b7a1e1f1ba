"""What agent.hal takes from CPython alone: AES from the cryptography package,
MicroPython's wrapping millisecond clock made from time.monotonic_ns, and the folder fsync
that makes agent.store's renames durable. A board never loads it.
"""

import os
import time


def cryptography_aes(key):
    """The block function of the cryptography package's AES, in hal's block(src, dst) form."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    encrypt = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor().update

    def block(src, dst=None):
        if dst is None:
            return encrypt(src)
        dst[:] = encrypt(src)
        return dst

    return block


def sync_dir(path):
    """fsync the folder path (a rename in it is durable once the folder is); quietly nothing
    where the file system cannot."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# The tick clock with MicroPython's semantics: the same wrap-around as on a board.
_PERIOD = 1 << 30  # MicroPython's on 32-bit ports (the small-int range)
_HALF = _PERIOD >> 1


def ticks_ms():
    return (time.monotonic_ns() // 1000000) & (_PERIOD - 1)


def ticks_diff(end, start):
    """end - start, right across one wrap, in -2^29 .. 2^29-1 ms."""
    return ((end - start + _HALF) & (_PERIOD - 1)) - _HALF


def ticks_add(ticks, delta):
    return (ticks + delta) & (_PERIOD - 1)
