import gc, sys
mods = ["agent", "agent.errors", "agent.frame", "agent.hal", "agent.uri", "agent.cbor", "agent.formats", "agent.nodes", "agent.acl", "agent.snapshot", "agent.store", "agent.tree", "agent.mo.ext", "agent.session", "agent.dispatch", "asyncio", "agent.server", "agent.app", "agent.crypto", "agent.ccm", "agent.secure", "dmunix"]
out = []
gc.collect(); a0 = gc.mem_alloc()
for m in mods:
    gc.collect(); a = gc.mem_alloc()
    __import__(m)
    gc.collect(); out.append("%s %d" % (m, gc.mem_alloc() - a))
print(" | ".join(out), "| total", gc.mem_alloc() - a0)
import micropython
micropython.qstr_info()
