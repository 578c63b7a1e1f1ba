"""Rule: a Raspberry Pi set up as boards/rpi/README.md says accepts a handshake. The service
unit's ExecStart lines (serial, and the TCP one left commented) pass the keys folder the
README fills, with the config and state the board names; run as written (paths moved into a
temporary folder, TCP on a free port), the agent opens a sealed session for a key installed
as the README installs it, and warns of nothing."""

import json
import shlex
import subprocess
import time

from dmagent.agent import proto as P
from dmagent.host_tools.client.device import Device
from tests.host.agents import ROOT, dmagent_argv, free_port

BOARD = ROOT / "boards" / "rpi"


def _exec_lines():
    lines = [line.lstrip("#") for line in (BOARD / "dmagent.service").read_text().splitlines()
             if line.lstrip("#").startswith("ExecStart=")]
    return [shlex.split(line[len("ExecStart="):]) for line in lines]


def test_every_execstart_passes_the_keys_config_and_state_the_board_names():
    paths = json.loads((BOARD / "board.json").read_text())["paths"]
    lines = _exec_lines()
    assert len(lines) == 2
    for argv in lines:
        opts = dict(zip(argv[2::2], argv[3::2]))
        assert argv[1] == "serve"
        assert opts["--keys"] == paths["keys"] and opts["--config"] == paths["config"]
        assert opts["--state"] == paths["state"]


def test_the_tcp_service_line_run_as_written_accepts_a_handshake(tmp_path):
    paths = json.loads((BOARD / "board.json").read_text())["paths"]
    root = tmp_path / "pi"
    keys = root / paths["keys"].lstrip("/")
    keys.mkdir(parents=True)
    config = root / paths["config"].lstrip("/")
    config.write_text((BOARD / "config.json").read_text())
    key = keys / "ServerA.key"
    key.write_text(json.dumps({"principal": "ServerA", "key": "11" * 16}))
    key.chmod(0o600)  # install -m 0600 -o dmagent
    argv = next(a for a in _exec_lines() if "--tcp" in a)
    port = free_port()
    args = []
    for arg in argv[1:]:
        if arg.startswith("/"):
            arg = str(root / arg.lstrip("/"))
        elif arg.startswith("0.0.0.0:"):
            arg = "127.0.0.1:%d" % port
        args.append(arg)
    log = tmp_path / "agent.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(dmagent_argv(*args), cwd=str(ROOT), stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        assert proc.stdout.readline().startswith("serving tcp://"), log.read_text()
        with Device.open("tcp://127.0.0.1:%d" % port, key=key) as dev:
            info = dev.info()
            assert info["principal"] == "ServerA" and info["suite"] == P.SUITE_CCM
        time.sleep(0.1)
        assert "warning" not in log.read_text()
    finally:
        proc.terminate()
        proc.wait(10)
