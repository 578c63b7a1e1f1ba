"""Rules of the framing on a noisy line, against a real agent over TCP with the virtual
board's seeded fault injection between (tests/host/noisy.py):
- the client sends a 0x00 before every frame, so line noise before a frame does not cost it;
- a client may ask for its replies in pieces (docs/protocol.md, "Replies in pieces"), each
  retried on its own: then replies far longer than a noisy line lets through whole arrive.
"""

import pytest

from dmagent.host_tools.client import Device, DeviceError
from tests.host.agents import start_agent
from tests.host.noisy import FaultyTransport, GarbageFirst


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    running = start_agent(tmp_path_factory.mktemp("noisy"), runtime="cpython", state=False)
    yield running
    running.stop()


def test_noise_before_a_frame_does_not_cost_it(agent):
    with Device.open(agent.url, principal="ServerA") as dev:
        dev.transport = GarbageFirst(dev.transport)
        dev.timeout, dev.retries = 0.5, 0
        answered = 0
        for _ in range(100):
            dev.get("./DevInfo/DevId")
            answered += 1
    assert answered == 100


def test_long_replies_arrive_in_pieces_at_two_percent_byte_errors(agent):
    # ./DevDetail?list=StructData: a 329-byte reply frame. Whole, one try in about 1,000
    # gets through a line that corrupts 2% of the bytes it carries; in 48-byte pieces, one
    # try in four.
    with Device.open(agent.url, principal="ServerA") as dev:
        want = [uri for uri, _ in dev.list("./DevDetail", data=True, page=100)]
        dev.transport = FaultyTransport(dev.transport, "corrupt=0.02,seed=5,dir=out")
        dev.timeout, dev.retries, dev.reply_chunk = 0.05, 40, 48
        for _ in range(3):
            assert [uri for uri, _ in dev.list("./DevDetail", data=True, page=100)] == want
        assert dev.transport.from_device.stats["corrupted"] > 0
        dev.reply_chunk = 1  # below the minimum: a clear 400
        with pytest.raises(DeviceError) as exc:
            dev.info()
        assert exc.value.status == 400
