"""Rule: the state folder holds the tree's secrets (AAuthSecret values): `dmagent serve` makes
it 0700 and every file in it 0600, from the first byte, on CPython and on the device runtime
(its files inherit the server's umask; MicroPython itself has no file modes to set)."""

import stat

import pytest

from dmagent.host_tools.client.device import Device
from tests.host.agents import start_agent


def _modes(folder):
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*")}


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_state_folder_is_0700_and_its_files_0600(tmp_path, runtime):
    agent = start_agent(tmp_path, runtime=runtime)
    try:
        with Device.open(agent.url, principal="ServerA") as dev:
            dev.replace("./DMAcc/ServerA/AppAuth/Srv/AAuthSecret", "new-secret")  # a journal record
    finally:
        agent.stop()
    state = tmp_path / "state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    files = _modes(state)
    assert files and all(mode == 0o600 for mode in files.values()), files


def test_an_existing_open_state_folder_is_closed(tmp_path):
    (tmp_path / "state").mkdir(mode=0o755)
    (tmp_path / "state").chmod(0o755)
    start_agent(tmp_path).stop()
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
