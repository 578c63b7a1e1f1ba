"""Heap figures on the device runtime, as boards/unix/main.py boots the agent.

Run: dmagent mpy run [--heap SIZE] tools/heap_probe.py -- [LEAVES] [--keys] [-v]
Prints one JSON line: bytes in use (gc.mem_alloc) after importing what a board imports,
after boot (with the security code when --keys), and after adding up to LEAVES int leaves
under ./Probe (stopping at the first 420/MemoryError: `leaves` says how many fitted).
"""
import gc
import json
import sys

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
keys = {"ServerA": b"\x11" * 16} if "--keys" in args else None
wanted = int([a for a in args if a.isdigit()][0]) if any(a.isdigit() for a in args) else 1000
app = App({"device": {"devid": "urn:dmagent:probe"}}, None, False, lambda msg: None, keys)
gc.collect()
booted = gc.mem_alloc()
tree = app.tree
tree.add(None, "./Probe", None, "node")
added = 0
try:
    for i in range(wanted):
        tree.add(None, "./Probe/N%d" % i, i, "int")
        added += 1
except (MemoryError, DMError) as exc:
    if "-v" in args:
        sys.print_exception(exc)
        import micropython
        micropython.mem_info()
gc.collect()
loaded = gc.mem_alloc()
print(json.dumps({
    "buffers_bytes": buffers,
    "import_bytes": imported - base - buffers,
    "boot_bytes": booted - base,
    "keys": keys is not None,
    "leaves_wanted": wanted,
    "leaves": added,
    "tree_bytes": loaded - booted,
    "bytes_per_leaf": (loaded - booted) // added if added else None,
    "total_bytes": loaded - base,
    "free_bytes": gc.mem_free(),
}))
