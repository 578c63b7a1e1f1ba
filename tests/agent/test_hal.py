"""agent.hal: every AES backend present agrees with agent.aes; board backends plug in;
randomness never falls back to something weak; ticks wrap as MicroPython's do."""

import sys

from agent import aes, hal
from agent.hal.backends import aes_backends
from tests.agent.check import raises, unhex

MICROPYTHON = sys.implementation.name == "micropython"
PLAIN = unhex("00112233445566778899aabbccddeeff")


def _has_cryptolib():
    try:
        import cryptolib  # noqa: F401
    except ImportError:
        return False
    return True


def test_default_backend_for_this_runtime():
    names = aes_backends()
    assert names[-1] == "pure"
    assert hal.backend_name() == names[0]
    if not MICROPYTHON:
        assert names[0] == "cryptography"
    elif _has_cryptolib():  # the device runtime and stock board firmware
        assert names[0] == "cryptolib"


def test_backends_agree_with_pure_aes():
    for name in aes_backends():
        for n in (16, 24, 32):
            if name == "cryptolib" and n == 24:
                continue  # MicroPython's cryptolib has no AES-192 (hal falls back, below)
            key = bytes((7 * i + n) & 0xFF for i in range(n))
            enc = hal.aes_block(key, name)
            ref = aes.AES(key).encrypt
            block = PLAIN
            for _ in range(8):  # a chain: each output is the next input
                got = enc(block)
                assert bytes(got) == ref(block), (name, n)
                block = bytes(got)


def test_default_backend_handles_every_key_size():
    for n in (16, 24, 32):
        key = bytes(range(n))
        assert hal.aes_block(key)(PLAIN) == aes.AES(key).encrypt(PLAIN), n


def test_bad_key_and_backend():
    raises(ValueError, hal.aes_block, bytes(15))
    raises(ValueError, hal.aes_block, bytes(16), "rot13")
    raises(ImportError, hal.aes_block, bytes(16), "board")  # none registered
    raises(ImportError, hal.aes_block, bytes(16), "cryptography" if MICROPYTHON else "cryptolib")


def test_board_aes_backend():
    keys = []

    def factory(key):
        keys.append(bytes(key))
        return aes.AES(key).encrypt

    hal.set_aes_backend(factory)
    try:
        assert "board" in aes_backends()
        key = bytes(range(16))
        assert hal.aes_block(key, "board")(PLAIN) == unhex("69c4e0d86a7b0430d8cdb78070b4c55a")
        assert keys == [key]
        # cryptolib or cryptography, when present, still come first
        assert hal.backend_name() == aes_backends()[0] != "board"
    finally:
        hal.set_aes_backend(None)
    assert "board" not in aes_backends()


def test_random_bytes():
    a = hal.random_bytes(16)
    b = hal.random_bytes(16)
    assert type(a) is bytes and len(a) == 16 and a != b
    assert hal.random_bytes(0) == b""


def test_random_from_board_and_never_weak():
    saved = hal._urandom
    hal._urandom = False  # as on the WebAssembly port: no os.urandom
    try:
        raises(OSError, hal.random_bytes, 16)  # nothing registered: an error, not weak bytes
        hal.set_random(lambda n: b"\x5a" * n)
        assert hal.random_bytes(4) == b"ZZZZ"
        hal.set_random(lambda n: b"\x5a")
        raises(OSError, hal.random_bytes, 4)  # a short answer is refused
    finally:
        hal.set_random(None)
        hal._urandom = saved


def test_ticks():
    t0 = hal.ticks_ms()
    assert hal.ticks_diff(hal.ticks_ms(), t0) >= 0
    assert hal.ticks_diff(hal.ticks_add(t0, 1500), t0) == 1500
    assert hal.ticks_diff(t0, hal.ticks_add(t0, 1500)) == -1500
    # across the wrap: just below the top of the counter, then past it
    top = hal.ticks_add(0, -10)
    assert top > 0
    later = hal.ticks_add(top, 25)
    assert later < top and hal.ticks_diff(later, top) == 25
