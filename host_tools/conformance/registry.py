"""The suite's checks: each one rule, named after it with its source, registered in order.

A check is a function of one `Probe` (host_tools.conformance.probe) that raises Failed or
Skipped; returning is a pass. The name is the rule, so a report reads as the spec does.
"""

import fnmatch

CHECKS = []


class Failed(AssertionError):
    """The device broke the rule; the message says how."""


class Skipped(Exception):
    """The rule cannot be checked on this device (no keys, no second principal, ...)."""


class Check:
    def __init__(self, name, group, fn, needs=()):
        self.name = name
        self.group = group
        self.fn = fn
        self.needs = tuple(needs)  # "keys", "gateway", "integrity", "insecure"

    def __repr__(self):
        return "<check %s>" % self.name


def check(name, group, needs=()):
    """Register the decorated function as the check of rule `name` (unique)."""

    def register(fn):
        if any(c.name == name for c in CHECKS):
            raise ValueError("two checks named %r" % name)
        CHECKS.append(Check(name, group, fn, needs))
        return fn

    return register


def select(only=None):
    """The checks whose name or group matches the glob (case-insensitive; a bare word
    matches as a substring), in registration order."""
    _load()
    if not only:
        return list(CHECKS)
    pattern = only.lower()
    if not any(c in pattern for c in "*?["):
        pattern = "*" + pattern + "*"
    return [c for c in CHECKS if fnmatch.fnmatch(c.name.lower(), pattern) or fnmatch.fnmatch(c.group, pattern)]


def _load():
    from dmagent.host_tools.conformance import checks  # noqa: F401  (registers every check)
