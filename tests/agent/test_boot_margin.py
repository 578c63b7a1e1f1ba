"""Rule: a first boot keeps the room a reboot of the state it seeded needs (docs/memory.md, "A
device that fills up boots again"), not the room of its seeding code, which no reboot loads.
Its own module, so that it runs in a fresh heap on the device runtime too."""

import gc
import os

CONFIG = {
    "device": {"devid": "urn:dmagent:margin", "man": "dmagent project", "mod": "test"},
    "accounts": [{"name": "ServerA", "server_id": "ServerA", "auth": {"type": "HMAC", "secret": "s"}},
                 {"name": "ServerB", "server_id": "ServerB"}],
}


def _margin(state):
    """Boot an agent on state; -> the margin it logged, or None (no heap to mind: CPython)."""
    from agent.app import App

    logged = []
    App(CONFIG, state, True, log=logged.append)
    for line in logged:
        if line.startswith("the tree grows while "):
            return int(line.split()[4])
    return None


def test_rule_a_first_boot_keeps_the_margin_of_a_reboot_of_its_state():
    d = "/tmp/dmagent-margin-%d" % (os.urandom(1)[0] * 256 + os.urandom(1)[0])
    try:
        first = _margin(d)  # seeds the tree from CONFIG
        gc.collect()
        again = _margin(d)  # reads it back: the state first seeded
    finally:
        for name in os.listdir(d):
            os.remove(d + "/" + name)
        os.rmdir(d)
    if not hasattr(gc, "mem_alloc"):
        assert first is None and again is None  # CPython: no next boot's heap to keep
        return
    print("margin after a first boot %d B, after a reboot of its state %d B" % (first, again))
    # within 256 B: the seeding code alone is about 460 B frozen (3.9 KB as .mpy)
    assert abs(first - again) <= 256, (first, again)
