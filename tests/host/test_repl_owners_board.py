"""Rule: the REPL is for owners only, on a real board agent. The ESP32 board's main.py and
its .mpy agent on the device runtime, keys in its keys folder, serving a pty console: a
configured server and a gateway acting for the owner get 403 on Exec of the Repl node and
the console keeps carrying frames; the owner, speaking for itself, gets the REPL back."""

import json
import os
import shutil
import subprocess
import tty

import pytest

from dmagent.agent import proto as P
from dmagent.host_tools.runtime import micropython as mpy_runtime
from dmagent.host_tools.client.device import Device, DeviceError
from dmagent.host_tools.client.transport import FdTransport
from tests.host.agents import DEMO_CONFIG
from tests.host.test_build import _read_until, esp32, needs_runtime  # noqa: F401 (fixture)

KEYS = {"ServerA": "11" * 16, "GW1": "22" * 32, "Owner": "55" * 16}
REPL = "./DevDetail/Ext/Repl"


@pytest.fixture
def board(esp32, tmp_path):  # noqa: F811
    needs_runtime()
    fs = tmp_path / "fs"
    shutil.copytree(esp32.dir / "files", fs)
    (fs / "keys").mkdir()
    for principal, key in KEYS.items():
        (fs / "keys" / (principal + ".key")).write_text(json.dumps({"principal": principal, "key": key}))
    config = json.loads(DEMO_CONFIG.read_text())
    config.update(escape_window_ms=0, security={"owners": ["Owner"], "gateways": {"GW1": ["Owner"]}})
    (fs / "dmagent.json").write_text(json.dumps(config))
    master, slave = os.openpty()
    tty.setraw(slave)
    proc = mpy_runtime.spawn(fs / "main.py", heap="256k", paths=[fs / "lib"], compiled=False, cwd=str(fs),
                             stdin=slave, stdout=slave, stderr=subprocess.PIPE)
    try:
        _read_until(master, b"dmagent: serving console\n", 20)
        yield master, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)
        os.close(slave)


def _exec_status(master, principal, for_server=None):
    dev = Device(FdTransport(master), timeout=3)
    dev.for_server = for_server
    dev.handshake(principal, bytes.fromhex(KEYS[principal]))
    try:
        return dev.request(P.OP_EXEC, {P.K_URI: REPL})[P.K_STATUS]
    except DeviceError as exc:
        return exc.status


def test_only_the_owner_itself_gets_the_repl_on_a_board(board):
    master, proc = board
    assert _exec_status(master, "ServerA") == P.S_FORBIDDEN  # a configured server
    assert _exec_status(master, "GW1", for_server="Owner") == P.S_FORBIDDEN  # a gateway for the owner
    assert proc.poll() is None
    assert _exec_status(master, "Owner") == P.S_OK
    assert b"the console is the REPL again" in _read_until(master, b"REPL again", 5)
