"""dmagent: the device-side OMA DM agent (MicroPython and CPython)."""

__version__ = "0.1.0"


def unload(name):
    """Drop a module that only boot needed, so its code leaves the heap (a board's heap is
    small and .mpy code lives in it). Importing it again later works."""
    import sys

    if name in sys.modules:
        del sys.modules[name]
        parent, _, child = name.rpartition(".")
        package = sys.modules.get(parent)
        if package is not None and hasattr(package, child):
            delattr(package, child)
