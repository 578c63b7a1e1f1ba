"""Rule: out of heap is 420 "device out of memory", never "500 storage write failed", and
every request is answered. On the device runtime at a board's 110k heap, 1 KB leaves run the
store's write path out of heap after a leaf or two (measured: issue 14 point 6).
"""

import json

import pytest

from dmagent.host_tools.client import Device, DeviceError, DeviceTimeout
from tests.host.agents import DEMO_CONFIG, start_agent

CONFIG = dict(json.loads(DEMO_CONFIG.read_text()), acls={".": "Add=*&Delete=ServerA&Get=*&Replace=ServerA"})


def test_heap_shortage_in_the_store_path_is_420_and_answered(tmp_path):
    agent = start_agent(tmp_path, runtime="micropython", config=CONFIG)  # its test heap (agents.TEST_HEAP)
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
        # The boot margin (docs/memory.md) now refuses a write while 10 KB are free, so at
        # the test heap the store path no longer runs out of heap: the path was not reached here
        # (test_session_holes' heap-edge test reaches the same 420 mapping).
        pytest.xfail("tree full before the store path ran out of heap: %r" % outcomes)
    assert set(outcomes) <= {"200", "420 device out of memory"}, outcomes
