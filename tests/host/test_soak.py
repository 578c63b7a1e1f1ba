"""10,000 checked requests: the flashed bundle on the virtual board, and the same bundle's
.mpy files on the device runtime under a board's 110k heap cap, with keys (every frame
sealed); a shorter run on the frozen firmware (the agent frozen into the Unix port), also at
110k.
Each answer is checked against a model of the tree (host_tools/bench/soak.py)."""

import pytest

from dmagent.firmware_build.bundle import build
from dmagent.host_tools.bench import soak
from dmagent.host_tools.client.device import Device
from tests.host.agents import start_agent

REQUESTS = 10000


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return build("virtual", tmp_path_factory.mktemp("soak-bundle") / "virtual")


def test_the_bundle_serves_10000_requests_on_the_device_runtime_at_110k_without_running_out(tmp_path, bundle):
    result = soak.on_device_runtime(REQUESTS, "110k", bundle.dir, tmp_path)
    assert result["requests"] >= REQUESTS
    assert result["wrong"] == []
    assert result["out_of_memory"] == []
    assert "code from %s" % bundle.lib_dir in result["log"]  # the bundle's .mpy, not the checkout


def test_the_frozen_firmware_serves_3000_requests_at_110k_without_running_out(tmp_path):
    result = soak.on_device_runtime(3000, "110k", None, tmp_path, runtime="micropython-frozen")
    assert result["requests"] >= 3000
    assert result["wrong"] == []
    assert result["out_of_memory"] == []
    assert "code from agent/frame.py" in result["log"]  # frozen: no file behind it


def test_a_new_session_every_10_requests_never_leaves_a_110k_heap_without_room_for_one(tmp_path, bundle):
    # A thousand re-keyings leave the free heap in small holes: at 110k (about 25 KB free
    # after boot) a handshake always finds room; `make soak` measures the edge (docs/memory.md).
    result = soak.on_device_runtime(REQUESTS, "110k", bundle.dir, tmp_path, session_every=10)
    assert result["sessions"] >= 900  # handshakes, each with new key schedules
    assert result["wrong"] == []
    assert result["out_of_memory"] == []


def test_the_flashed_agent_serves_10000_requests_on_the_virtual_board(tmp_path, bundle):
    result = soak.on_vboard(REQUESTS, bundle.dir, tmp_path)
    assert result["requests"] >= REQUESTS
    assert result["wrong"] == []


def test_a_soak_notices_an_answer_that_differs_from_its_model(tmp_path):
    agent = start_agent(tmp_path, runtime="cpython", tcp=True, insecure=True)
    try:
        with Device.open(agent.url, principal="ServerA") as dev, \
                Device.open(agent.url, principal="ServerA") as other:
            run = soak.Soak(dev, "ServerA")
            run.setup()
            for _ in range(50):
                run.step()
            assert run.wrong == []
            for name in run.leaves:  # changed behind the soak's back
                value = run.leaves[name]
                other.replace("%s/%s" % (soak.BASE, name), value + 1 if isinstance(value, int) else value + "!")
            run.kinds = ["get"]
            for _ in range(5):
                run.step()
            assert run.wrong and all(line.startswith("get ") for line in run.wrong)
    finally:
        agent.stop()
