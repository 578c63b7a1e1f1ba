"""A test hook, never shipped: start an agent whose RNG gives the same bytes after every
start (as an ESP32 without its entropy source may), to prove the boot count saves it.

CPython:          python tests/host/repeating_rng.py cpython serve ARGS...   (dmagent's CLI)
device runtime:   micropython tests/host/repeating_rng.py BOARD_MAIN ARGS... (boards/unix/main.py)
"""
import sys

try:
    from dmagent.agent import hal  # CPython: the one package
except ImportError:
    from agent import hal  # on a board: MicroPython has agent/ as a board does

_count = [0]


def _repeating(n):
    # the same sequence from every start: a counter, not randomness
    _count[0] += 1
    return bytes([(_count[0] + i) & 0xFF for i in range(n)])


hal.random_bytes = _repeating

if sys.argv[1] == "cpython":
    sys.argv = ["dmagent"] + sys.argv[2:]
    from dmagent.host_tools.cli.main import main

    main()
else:
    main_py = sys.argv.pop(1)  # MicroPython's sys.argv can change, not be replaced
    with open(main_py) as f:
        code = f.read()
    exec(code)
