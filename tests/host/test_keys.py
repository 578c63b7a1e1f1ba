"""Key files and `dmagent keys`: made 0600, never shown, found in the user's key store."""

import json
import os
import stat
import subprocess

from host_tools import keys
from tests.host.agents import ROOT, dmagent_argv


def _dmagent(tmp_path, *args):
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    return subprocess.run(dmagent_argv(*args), cwd=str(ROOT), capture_output=True, text=True,
                          timeout=60, env=env)


def test_keys_new_writes_a_0600_file_the_agent_can_load(tmp_path):
    out = tmp_path / "a.key"
    res = _dmagent(tmp_path, "keys", "new", "--principal", "ServerA", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    doc = json.loads(out.read_text())
    assert doc["principal"] == "ServerA" and len(bytes.fromhex(doc["key"])) == 16
    from agent import keys as agent_keys

    assert agent_keys.load([str(out)]) == {"ServerA": bytes.fromhex(doc["key"])}
    assert doc["key"] not in res.stdout + res.stderr  # the key is never printed


def test_keys_new_refuses_to_overwrite_and_bad_names_with_one_line(tmp_path):
    out = tmp_path / "a.key"
    assert _dmagent(tmp_path, "keys", "new", "--principal", "ServerA", "--out", str(out)).returncode == 0
    before = out.read_text()
    for args in (["--principal", "ServerA", "--out", str(out)], ["--principal", "bad id", "--out", str(tmp_path / "b")]):
        res = _dmagent(tmp_path, "keys", "new", *args)
        assert res.returncode != 0 and "error:" in res.stderr and "Traceback" not in res.stderr
    assert out.read_text() == before


def test_keys_list_shows_fingerprints_never_keys(tmp_path):
    assert _dmagent(tmp_path, "keys", "new", "--principal", "GW1", "--length", "32").returncode == 0
    stored = tmp_path / "config" / "dmagent" / "keys" / "GW1.key"
    key = json.loads(stored.read_text())["key"]
    res = _dmagent(tmp_path, "keys", "list")
    assert res.returncode == 0 and "GW1" in res.stdout
    assert keys.fingerprint(bytes.fromhex(key)) in res.stdout and key not in res.stdout
