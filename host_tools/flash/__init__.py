"""Putting the agent on a MicroPython board: the raw-REPL link (repl), the pure deploy planner
(plan), the deploy (deploy), firmware via esptool (firmware), config and keys (provision).
It knows no particular board: a board kind without an RTS line registers its reset (repl.register_reset)."""

from dmagent.host_tools.flash.deploy import FlashResult, flash, flash_many  # noqa: F401
from dmagent.host_tools.flash.errors import FlashError  # noqa: F401
from dmagent.host_tools.flash.repl import Repl, register_reset  # noqa: F401
