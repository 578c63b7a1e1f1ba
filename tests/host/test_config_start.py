"""Rule: an agent refuses to start on a config it would misread, with one line naming the
file and the key: `dmagent serve` on CPython and on the device runtime, and a board's
main.py. Before this rule, `"gateways": {"GW1": "ServerAB"}` started an agent in which GW1
could act for ServerA and for A (a substring match)."""

import json
import shutil
import subprocess

import pytest

from tests.host.agents import ROOT, dmagent_argv, free_port
from tests.host.test_build import esp32, needs_runtime  # noqa: F401 (fixture)
from dmagent.host_tools.runtime import micropython as mpy_runtime

BAD = [
    ({"security": {"gateways": {"GW1": "ServerAB"}}}, "security.gateways.GW1: must be a list"),
    ({"security": {"gateways": "GW1"}}, "security.gateways: must be a map"),
    ({"securty": {"confidential": ["./DMAcc"]}}, "securty: unknown key"),
    ({"open_reads": "./DevInfo"}, "open_reads: must be a list"),
]


def _serve(tmp_path, runtime, config):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(config))
    return subprocess.run(dmagent_argv("serve", "--runtime", runtime, "--tcp", "127.0.0.1:%d" % free_port(),
                                       "--config", str(path)),
                          cwd=str(ROOT), capture_output=True, text=True, timeout=60), path


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
@pytest.mark.parametrize("config,problem", BAD, ids=[b[1].split(":")[0] for b in BAD])
def test_serve_refuses_a_bad_config_in_one_line(tmp_path, runtime, config, problem):
    res, path = _serve(tmp_path, runtime, config)
    assert res.returncode != 0 and "serving" not in res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "config %s: %s" % (path, problem) in lines[0], lines[0]


def test_the_device_runtime_refuses_it_too_when_started_directly(tmp_path):
    """boards/unix/main.py (what serve --runtime micropython runs) checks with the same loader."""
    needs_runtime()
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(BAD[0][0]))
    proc = mpy_runtime.run_file(ROOT / "boards" / "unix" / "main.py", heap="110k",
                                args=["--tcp", "127.0.0.1:%d" % free_port(), "--config", str(path)],
                                cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "dmagent: config %s: %s" % (path, BAD[0][1])


def test_a_board_refuses_to_start_on_a_bad_config_and_keeps_the_repl(esp32, tmp_path):  # noqa: F811
    needs_runtime()
    fs = tmp_path / "fs"
    shutil.copytree(esp32.dir / "files", fs)
    (fs / "dmagent.json").write_text(json.dumps({"escape_window_ms": 0, "securty": {}}))
    proc = mpy_runtime.run_file(fs / "main.py", heap="256k", paths=[fs / "lib"], compiled=False, cwd=str(fs),
                                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    assert "dmagent: config dmagent.json: securty: unknown key" in out and "not started" in out, out
    assert "serving" not in out and "Traceback" not in out, out
