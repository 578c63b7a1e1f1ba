"""The virtual board: MicroPython's WebAssembly build under Node.js (js/) behind a
pseudo-terminal, behaving like a board on a serial port (raw REPL, reset, faults)."""

from dmagent.host_tools.vboard.board import Faults, VirtualBoard, ensure_node_runtime, press_reset  # noqa: F401
