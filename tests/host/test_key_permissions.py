"""Rule: a key file that others than its owner may read is named in a warning, once, by the one
key-file reader: in the client (`dmagent --key FILE`) and in `dmagent serve --keys` (both
runtimes: the host reads the keys before the device runtime starts). A 0600 file: no word."""

import json
import subprocess

import pytest

from tests.host.agents import ROOT, dmagent_argv, start_agent

WARNING = "can be read by others than its owner"


def _key(folder, principal, hex_key, mode):
    folder.mkdir(exist_ok=True)
    path = folder / ("%s.key" % principal)
    path.write_text(json.dumps({"principal": principal, "key": hex_key}))
    path.chmod(mode)
    return path


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_serve_and_the_client_warn_of_a_key_file_others_may_read(tmp_path, runtime):
    open_key = _key(tmp_path / "keys", "ServerA", "11" * 16, 0o644)
    _key(tmp_path / "keys", "ServerB", "44" * 16, 0o600)
    agent = start_agent(tmp_path, runtime=runtime, insecure=False, extra=["--keys", str(tmp_path / "keys")])
    try:
        log = agent.log()
        assert "warning: key file %s %s (mode 0644): chmod 600" % (open_key, WARNING) in log, log
        assert log.count(WARNING) == 1  # not ServerB's 0600 file
        res = subprocess.run(dmagent_argv("-d", agent.url, "--key", str(open_key), "--json", "info"),
                             cwd=str(ROOT), capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["value"]["principal"] == "ServerA"  # a warning, not a refusal
        assert res.stderr.count(WARNING) == 1 and str(open_key) in res.stderr, res.stderr
        quiet = subprocess.run(dmagent_argv("-d", agent.url, "--key", str(tmp_path / "keys" / "ServerB.key"),
                                            "info"), cwd=str(ROOT), capture_output=True, text=True, timeout=60)
        assert quiet.returncode == 0 and WARNING not in quiet.stderr, quiet.stderr
    finally:
        agent.stop()
