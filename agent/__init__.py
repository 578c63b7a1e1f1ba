"""dmagent: the device-side OMA DM agent (MicroPython and CPython)."""

__version__ = "0.1.0"
