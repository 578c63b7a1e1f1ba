"""AES-CCM throughput of the agent's own code on the device runtime (or a board).

Run: dmagent mpy run tools/ccm_bench_mpy.py [seconds]
Prints one line a backend and message size: encrypt and decrypt bytes/second (alg 10:
13-byte nonce, 8-byte tag, 20 bytes of AAD as in a protected frame). A measurement, never
a test; the CPython figures come from host_tools/bench/crypto.py.
"""
import gc
import sys
import time

from agent import ccm, hal
from agent.hal.backends import aes_backends

SIZES = (64, 256, 1024, 2000)  # 2000: about the largest frame (proto.MAX_FRAME is 2048)
KEY = bytes(range(16))
NONCE = bytes(13)
AAD = bytes(20)


def rate(fn, size, seconds):
    # repeat until `seconds` have passed; bytes per second of message
    n = 0
    t0 = time.ticks_ms()
    while True:
        fn()
        n += 1
        dt = time.ticks_diff(time.ticks_ms(), t0)
        if dt >= seconds * 1000:
            return n * size * 1000 // dt


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    print("MicroPython %s, heap free %d" % (".".join(str(v) for v in sys.implementation.version[:3]), gc.mem_free()))
    for name in aes_backends():
        block = hal.aes_block(KEY, name)
        for size in SIZES:
            msg = bytes(size)
            sealed = ccm.encrypt(block, NONCE, AAD, msg, 8)
            gc.collect()
            enc = rate(lambda: ccm.encrypt(block, NONCE, AAD, msg, 8), size, seconds)
            gc.collect()
            dec = rate(lambda: ccm.decrypt(block, NONCE, AAD, sealed, 8), size, seconds)
            print("ccm %-12s %5d B  encrypt %9d B/s  decrypt %9d B/s" % (name, size, enc, dec))
            if name == "pure" and size >= 256:
                break  # slow: one size past the smallest says enough


main()
