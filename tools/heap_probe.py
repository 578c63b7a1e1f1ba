"""Heap figures of the agent on a MicroPython runtime, booted as boards/unix/main.py boots it.

Run: python tools/heap_probe.py [--runtime NAME] [--heap SIZE] -- [LEAVES] [--keys]
     [--spread K] [--config FILE] [-v]   (or inside MicroPython: dmagent mpy run tools/heap_probe.py -- ...)
Prints one JSON line: bytes in use (gc.mem_alloc) after importing what a board imports, after
boot (with the security code when --keys), and after adding up to LEAVES int leaves, all under
./Probe or K to a node (./Probe/D<j>/N<i>), with no node limit: until the first MemoryError
(`leaves` fitted; `stopped` says why). The figures are of the heap, not of what a reboot holds
(the agent's 420 rule, docs/memory.md, keeps that).
"""
import gc
import sys

if sys.implementation.name != "micropython":  # the host side: run this file on a runtime
    import argparse
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from host_tools.runtime import micropython as mpy_runtime

    ap = argparse.ArgumentParser(description="heap figures of the agent on a MicroPython runtime")
    ap.add_argument("--runtime", default="micropython", help="micropython (the .mpy agent), or another "
                    "runtime this checkout's host_tools.runtime.micropython knows (e.g. micropython-frozen)")
    ap.add_argument("--heap", default="110k")
    ap.add_argument("args", nargs="*", help="for the probe: [LEAVES] [--keys] [--spread K] ...")
    opts = ap.parse_args()
    extra = {} if opts.runtime == "micropython" else {"runtime": opts.runtime}
    try:
        proc = mpy_runtime.run_file(Path(__file__).resolve(), heap=opts.heap, args=opts.args, **extra)
    except TypeError:
        sys.exit("error: this checkout's runtimes do not include %r" % opts.runtime)
    except mpy_runtime.RuntimeMissing as exc:
        sys.exit("error: %s" % exc)
    sys.exit(proc.returncode)

import json  # noqa: E402

gc.collect()
base = gc.mem_alloc()
from agent import frame  # noqa: E402  (measured: the imports are the point)

gc.collect()
before = gc.mem_alloc()
frame.reserve(2)  # as boards/unix/main.py does
gc.collect()
buffers = gc.mem_alloc() - before
import asyncio  # noqa: E402,F401
from agent import server  # noqa: E402,F401
from agent.app import App  # noqa: E402
from agent.errors import DMError  # noqa: E402

gc.collect()
imported = gc.mem_alloc()
args = sys.argv[1:]


def _opt(name, default=None):
    return args[args.index(name) + 1] if name in args else default


keys = {"ServerA": b"\x11" * 16} if "--keys" in args else None
numbers = [a for i, a in enumerate(args) if a.isdigit() and (i == 0 or not args[i - 1].startswith("--"))]
wanted = int(numbers[0]) if numbers else 1000
spread = int(_opt("--spread", 0))
config = {"device": {"devid": "urn:dmagent:probe"}}
if _opt("--config"):
    with open(_opt("--config")) as f:
        config = json.load(f)
config["limits"] = {"max_nodes": 0}  # the heap is what is measured, not the node limit
app = App(config, None, False, lambda msg: None, keys)
del config
gc.collect()
booted = gc.mem_alloc()
tree = app.tree
tree.add(None, "./Probe", None, "node")
added = 0
stopped = "done"
ballast = bytearray(2048)  # given back when the heap is full: the report needs some
try:
    for i in range(wanted):
        if spread:
            if i % spread == 0:
                tree.add(None, "./Probe/D%d" % (i // spread), None, "node")
            tree.add(None, "./Probe/D%d/N%d" % (i // spread, i), i, "int")
        else:
            tree.add(None, "./Probe/N%d" % i, i, "int")
        added += 1
except (MemoryError, DMError) as exc:
    ballast = None
    stopped = repr(exc)
    if "-v" in args:
        sys.print_exception(exc)
        import micropython

        micropython.mem_info()
ballast = None
gc.collect()
loaded = gc.mem_alloc()
free = gc.mem_free()
tree = app = None  # a full heap has no room left for the report
gc.collect()
print(json.dumps({
    "buffers_bytes": buffers,
    "import_bytes": imported - base - buffers,
    "boot_bytes": booted - base,
    "keys": keys is not None,
    "spread": spread,
    "leaves_wanted": wanted,
    "leaves": added,
    "stopped": stopped,
    "tree_bytes": loaded - booted,
    "bytes_per_leaf": (loaded - booted) // added if added else None,
    "total_bytes": loaded - base,
    "free_bytes": free,
}))
