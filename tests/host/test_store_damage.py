"""Rule: damage to acknowledged records is loud. A flipped byte in a journal record with good
records after it, or a journal missing beside its snapshot: the agent logs it, reports it in
`info` (field `damage`), serves reads, refuses writes with a clear 500, and
`dmagent serve --recover` says what it drops before it drops it.
"""

import json
import struct
import subprocess

import pytest

from dmagent.host_tools.client import Device, DeviceError
from tests.host.agents import DEMO_CONFIG, ROOT, dmagent_argv, start_agent

CONFIG = dict(json.loads(DEMO_CONFIG.read_text()), acls={".": "Add=*&Delete=ServerA&Get=*&Replace=ServerA"})


def _record_offsets(data):
    offsets, at = [], 16
    while at + 8 <= len(data):
        offsets.append(at)
        at += 8 + struct.unpack_from("<I", data, at)[0]
    return offsets


def _fill(tmp_path, runtime):
    agent = start_agent(tmp_path, runtime=runtime, config=CONFIG, heap="256k")
    try:
        with Device.open(agent.url, principal="ServerA") as dev:
            dev.add("./D", fmt="node")
            for i in range(10):
                dev.add("./D/N%d" % i, i, "int")
    finally:
        agent.stop()
    return tmp_path / "state" / "journal.bin"


def _recover(tmp_path, *flags, stdin=""):
    return subprocess.run(dmagent_argv("serve", "--state", str(tmp_path / "state"), "--config",
                                       str(tmp_path / "config.json"), "--recover", *flags),
                          cwd=str(ROOT), input=stdin, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_flipped_byte_in_an_acknowledged_record_is_reported_and_writes_refused(tmp_path, runtime):
    journal = _fill(tmp_path, runtime)
    data = bytearray(journal.read_bytes())
    offsets = _record_offsets(data)
    assert len(offsets) == 11  # ./D and ten leaves, one record each
    data[offsets[5] + 12] ^= 0x01  # inside the payload of the record that added ./D/N4
    journal.write_bytes(data)
    agent = start_agent(tmp_path, runtime=runtime, config=CONFIG, heap="256k")
    try:
        assert "STORAGE DAMAGED" in agent.log()
        with Device.open(agent.url, principal="ServerA") as dev:
            assert "record 6" in dev.info()["damage"]
            assert dev.get("./D/N3") == 3  # reads of what loaded are served
            with pytest.raises(DeviceError) as exc:
                dev.add("./D/New", 1, "int")
            assert exc.value.status == 500 and "damaged" in exc.value.message
    finally:
        agent.stop()
    assert journal.read_bytes() == data  # nothing cut while it waits for the operator

    told = _recover(tmp_path, stdin="n\n")
    assert told.returncode != 0 and "cancelled" in told.stderr, told.stderr
    assert "record 7: put ./D/N5" in told.stderr and "record 11: put ./D/N9" in told.stderr, told.stderr
    assert journal.read_bytes() == data
    done = _recover(tmp_path, "--yes")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "state" / "journal.damaged").read_bytes() == data

    agent = start_agent(tmp_path, runtime=runtime, config=CONFIG, heap="256k")
    try:
        assert "DAMAGED" not in agent.log()
        with Device.open(agent.url, principal="ServerA") as dev:
            assert "damage" not in dev.info()
            assert sorted(dev.get("./D")) == ["N0", "N1", "N2", "N3"]
            dev.add("./D/New", 1, "int")
    finally:
        agent.stop()


def test_missing_journal_is_reported(tmp_path):
    journal = _fill(tmp_path, "cpython")
    journal.unlink()
    agent = start_agent(tmp_path, runtime="cpython", config=CONFIG)
    try:
        assert "STORAGE DAMAGED" in agent.log()
        with Device.open(agent.url, principal="ServerA") as dev:
            assert "missing" in dev.info()["damage"]
            with pytest.raises(DeviceError) as exc:
                dev.add("./D/New", 1, "int")
            assert exc.value.status == 500
    finally:
        agent.stop()
    assert not journal.exists()
    assert _recover(tmp_path, "--yes").returncode == 0
    assert journal.exists()
