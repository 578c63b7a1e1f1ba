"""Heap figures on the device runtime: after importing the agent, after boot, with N leaves.

Run: dmagent mpy run tools/heap_probe.py (prints one JSON line). Argument: leaf count.
"""
import gc
import json
import sys

gc.collect()
base = gc.mem_alloc()
from agent.app import App  # noqa: E402  (measured: the import itself is the point)

gc.collect()
imported = gc.mem_alloc()
app = App({"device": {"devid": "urn:dmagent:probe"}}, None, False, lambda msg: None)
gc.collect()
booted = gc.mem_alloc()
leaves = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
tree = app.tree
tree.add(None, "./Probe", None, "node")
for i in range(leaves):
    tree.add(None, "./Probe/N%d" % i, i, "int")
gc.collect()
loaded = gc.mem_alloc()
print(json.dumps({
    "import_bytes": imported - base,
    "boot_bytes": booted - base,
    "leaves": leaves,
    "tree_bytes": loaded - booted,
    "total_bytes": loaded - base,
    "free_bytes": gc.mem_free(),
}))
