"""Runs agent test modules under MicroPython: every top-level test_* function, in file order.

Usage: micropython -X heapsize=110k tests/agent/mpy_runner.py tests.agent.test_cbor [...]
Prints one line a test and a closing 'N passed, N failed'; exits 1 if any failed.
"""
import gc
import sys


def _test_names(module_name):
    # dir() order is not file order in MicroPython: read the file for the order.
    path = module_name.replace(".", "/") + ".py"
    names = []
    with open(path) as f:
        for line in f:
            if line.startswith("def test_"):
                names.append(line[4 : line.index("(")])
    return names


def main(modules):
    passed = failed = 0
    for module_name in modules:
        module = __import__(module_name, None, None, ["x"])  # first: compiling needs the heap whole
        names = _test_names(module_name)
        for name in names:
            gc.collect()
            try:
                getattr(module, name)()
            except Exception as exc:  # noqa: BLE001 - report every failure and go on
                failed += 1
                print("FAIL %s.%s: %s: %s" % (module_name, name, type(exc).__name__, exc))
                sys.print_exception(exc)
            else:
                passed += 1
                print("PASS %s.%s" % (module_name, name))
        del module
        sys.modules.pop(module_name, None)
        gc.collect()
    print("%d passed, %d failed" % (passed, failed))
    if failed:
        sys.exit(1)


# As a board does (boards/*/main.py): the reply buffer and one link's receive buffer first,
# while the heap is whole; a test that makes a link then finds them, not a fragmented heap.
from agent import frame  # noqa: E402

frame.reserve(1)
main(sys.argv[1:])
