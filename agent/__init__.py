"""dmagent: the device-side OMA DM agent (MicroPython and CPython)."""

__version__ = "0.1.0"


def unload(name):
    """Drop a module that only boot needed, so its code leaves the heap (a board's heap is
    small and .mpy code lives in it). Importing it again later works. name: dotted, or relative
    to this package (".keys"), which is `agent` on a board and `dmagent.agent` on a host."""
    import sys

    if name.startswith("."):
        name = __name__ + name
    if name in sys.modules:
        del sys.modules[name]
        parent, _, child = name.rpartition(".")
        package = sys.modules.get(parent)
        if package is not None and hasattr(package, child):
            delattr(package, child)
