"""AES-CCM throughput of the agent's own code (agent.ccm) under CPython: a measurement to
print, never a timed test.

    python -m dmagent.host_tools.bench.crypto [--seconds S] [--device]

One line a block backend (cryptography's AES-ECB, the pure-Python agent.aes) and message
size: encrypt and decrypt bytes/second for COSE alg 10 (13-byte nonce, 8-byte tag, 20 bytes
of AAD as in a protected frame). cryptography's own AESCCM is printed for scale. --device
also runs tools/ccm_bench_mpy.py on the MicroPython device runtime (cryptolib backend).
"""

import argparse
import sys
import time
from pathlib import Path

from dmagent.agent import ccm, hal
from dmagent.host_tools.paths import ROOT

SIZES = (64, 256, 1024, 2000)  # 2000: about the largest frame (proto.MAX_FRAME is 2048)
KEY = bytes(range(16))
NONCE = bytes(13)
AAD = bytes(20)


def rate(fn, size, seconds):
    """Bytes of message a second: fn repeated until `seconds` have passed."""
    n = 0
    t0 = time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return n * size / dt


def measure(seconds=1.0, backends=("cryptography", "pure"), sizes=SIZES):
    """[(label, size, encrypt B/s, decrypt B/s)] for agent.ccm over each block backend,
    then cryptography's AESCCM."""
    rows = []
    for name in backends:
        block = hal.aes_block(KEY, name)
        for size in sizes:
            msg = bytes(size)
            sealed = ccm.encrypt(block, NONCE, AAD, msg, 8)
            enc = rate(lambda: ccm.encrypt(block, NONCE, AAD, msg, 8), size, seconds)
            dec = rate(lambda: ccm.decrypt(block, NONCE, AAD, sealed, 8), size, seconds)
            rows.append(("agent.ccm/" + name, size, enc, dec))
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM

    ref = AESCCM(KEY, 8)
    for size in sizes:
        msg = bytes(size)
        sealed = ref.encrypt(NONCE, msg, AAD)
        rows.append(("cryptography AESCCM", size,
                     rate(lambda: ref.encrypt(NONCE, msg, AAD), size, seconds),
                     rate(lambda: ref.decrypt(NONCE, sealed, AAD), size, seconds)))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="crypto_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--device", action="store_true", help="also measure on the MicroPython device runtime")
    args = parser.parse_args(argv)
    print("CPython %s" % sys.version.split()[0])
    for label, size, enc, dec in measure(args.seconds):
        print("ccm %-26s %5d B  encrypt %11.0f B/s  decrypt %11.0f B/s" % (label, size, enc, dec))
    if args.device:
        from dmagent.host_tools.runtime import micropython as mpy_runtime

        proc = mpy_runtime.run_file(ROOT / "tools" / "ccm_bench_mpy.py", args=[str(args.seconds)], cwd=str(ROOT))
        return proc.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
