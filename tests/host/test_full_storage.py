"""Rule: out of space is 420, whatever ran out (ENOSPC, EFBIG, the store's own reserve), and a
full device still takes Deletes, which give the space back so Adds work again.

Real failures, no mocks: the state folder is a small tmpfs (skipped where mounting is not
permitted), and EFBIG comes from RLIMIT_FSIZE set in the agent's own process.
"""

import json
import resource
import subprocess

import pytest

from dmagent.host_tools.client import Device, DeviceError
from tests.host.agents import DEMO_CONFIG, start_agent

CONFIG = dict(json.loads(DEMO_CONFIG.read_text()), acls={".": "Add=*&Delete=ServerA&Get=*&Replace=ServerA"})
VALUE = "v" * 1000  # under the default max_value (1024)


@pytest.fixture
def small_fs(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(state)],
                          capture_output=True, text=True)
    if proc.returncode:
        pytest.skip("cannot mount a tmpfs here: %s" % proc.stderr.strip())
    try:
        yield state
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def _fill(dev, limit=2000):
    """Add 1 KB leaves until the device refuses one: (names added, the refusal)."""
    dev.add("./Fill", fmt="node")
    added = []
    for i in range(limit):
        try:
            dev.add("./Fill/N%d" % i, VALUE, "chr")
        except DeviceError as exc:
            return added, exc
        added.append("./Fill/N%d" % i)
    raise AssertionError("storage never filled after %d leaves" % limit)


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_full_disk_takes_deletes_then_adds_again(tmp_path, small_fs, runtime):
    agent = start_agent(tmp_path, runtime=runtime, config=CONFIG, heap="400k")
    try:
        with Device.open(agent.url, timeout=5.0, principal="ServerA") as dev:
            added, refusal = _fill(dev)
            assert refusal.status == 420, refusal
            assert len(added) > 20
            refused = "./Fill/N%d" % len(added)  # the store failed under it: nothing changed
            with pytest.raises(DeviceError) as exc:
                dev.get(refused)
            assert exc.value.status == 404
            # Every Delete is taken. Adds come back once the Deletes gave back about half a
            # journal's worth (the reserve covers the growth of a whole one: agent/store.py).
            deleted = []
            while True:
                dev.delete(added[len(deleted)])  # refused with 420 before the reserve
                deleted.append(added[len(deleted)])
                try:
                    dev.add("./Fill/After", VALUE, "chr")
                    break
                except DeviceError as exc:
                    assert exc.status == 420 and len(deleted) < 20, exc
            kept = set(added[len(deleted):]) | {"./Fill/After"}
    finally:
        agent.stop()
    agent = start_agent(tmp_path, runtime=runtime, config=CONFIG, heap="400k")
    try:
        with Device.open(agent.url, timeout=5.0, principal="ServerA") as dev:
            # every acknowledged write, nothing refused (the refused Add is not there either)
            assert set(dev.get("./Fill")) == {u.rsplit("/", 1)[1] for u in kept}
    finally:
        agent.stop()


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (48 * 1024, 48 * 1024))


def test_file_size_limit_answers_420(tmp_path):
    # CPython ignores SIGXFSZ, so a write past RLIMIT_FSIZE fails with EFBIG (errno 27).
    agent = start_agent(tmp_path, runtime="cpython", config=CONFIG, preexec_fn=_limit_file_size)
    try:
        with Device.open(agent.url, timeout=5.0, principal="ServerA") as dev:
            added, refusal = _fill(dev)
            assert refusal.status == 420, refusal
            assert "storage full" in refusal.message
            with pytest.raises(DeviceError) as exc:  # the refused Add changed nothing
                dev.get("./Fill/N%d" % len(added))
            assert exc.value.status == 404
            dev.delete(added[0])
    finally:
        agent.stop()
    assert "Traceback" not in agent.log()
    agent = start_agent(tmp_path, runtime="cpython", config=CONFIG)
    try:
        with Device.open(agent.url, timeout=5.0, principal="ServerA") as dev:
            assert sorted(dev.get("./Fill")) == sorted(u.rsplit("/", 1)[1] for u in added[1:])
    finally:
        agent.stop()
