"""Rule: out of heap is 420 "device out of memory", never "500 storage write failed", and
every request is answered. On the device runtime at 128k, 1 KB leaves run the store's write
path out of heap after some 30 leaves (measured: issue 14 point 6).
"""

import json

import pytest

from dmagent.host_tools.client import Device, DeviceError, DeviceTimeout
from tests.host.agents import DEMO_CONFIG, start_agent

CONFIG = dict(json.loads(DEMO_CONFIG.read_text()), acls={".": "Add=*&Delete=ServerA&Get=*&Replace=ServerA"})


def test_heap_shortage_in_the_store_path_is_420_and_answered(tmp_path):
    # 128k: at a board's 110k the boot margin's 420 "tree full" now comes first for 1 KB
    # values (measured: 15 acknowledged, then 32 tree full and 1 out of memory); at 128k the
    # store path runs out of heap first (30 acknowledged, then 18 out of memory).
    agent = start_agent(tmp_path, runtime="micropython", config=CONFIG, heap="128k")
    outcomes = {}
    try:
        with Device.open(agent.url, timeout=2.0, retries=2, principal="ServerA") as dev:
            dev.add("./F", fmt="node")
            for i in range(48):
                try:
                    dev.add("./F/N%d" % i, "v" * 1000, "chr")
                    key = "200"
                except DeviceError as exc:
                    key = "%d %s" % (exc.status, exc.message)
                except DeviceTimeout:
                    key = "unanswered"
                outcomes[key] = outcomes.get(key, 0) + 1
            assert dev.info()["heap_free"] > 0  # and it keeps serving
    finally:
        agent.stop()
    assert set(outcomes) <= {"200", "420 device out of memory", "420 tree full: a reboot could not hold more"}, outcomes
    if not outcomes.get("420 device out of memory"):
        # The boot margin (docs/memory.md, 6 KB beyond what a boot needs) may refuse every
        # write before the store path runs out of heap: the path was not reached here
        # (test_session_holes' heap-edge test reaches the same 420 mapping). Reached, the
        # heap's 420s and the margin's ("tree full") come interleaved: 1 KB values need a
        # block in one piece, the margin counts all free bytes.
        pytest.xfail("tree full before the store path ran out of heap: %r" % outcomes)
