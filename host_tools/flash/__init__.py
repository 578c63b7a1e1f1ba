"""Putting the agent on a MicroPython board: the raw-REPL link, the deploy of a bundle
(only changed files), firmware via esptool, and provisioning of config and keys."""

from dmagent.host_tools.flash.deploy import FlashError, Repl, flash  # noqa: F401
