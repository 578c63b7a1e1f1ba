"""Rule: `dmagent shell` keeps one session open (one link, one handshake) for every command
typed, says a mistake in one line and goes on, and completes verbs and the URIs it may Get."""

import subprocess

from dmagent.host_tools.cli.shell import UriCompleter
from dmagent.host_tools.client.device import Device
from dmagent.host_tools.paths import cache_dir
from tests.host.agents import DEMO_CONFIG, ROOT, dmagent_argv, start_agent, write_key_file


def _agent(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    key = write_key_file(keys, "ServerA", "11" * 16)
    return start_agent(tmp_path, config=DEMO_CONFIG, insecure=False, extra=["--keys", str(keys)]), key


def test_the_shell_runs_every_command_in_one_session(tmp_path):
    agent, key = _agent(tmp_path)
    try:
        lines = "get ./DevInfo/DevId\nbogus\nget ./Nope\nadd ./S --interior\ntree ./S\ndelete ./S\nexit\n"
        proc = subprocess.run(dmagent_argv("shell", "-d", agent.url, "--key", str(key)), input=lines,
                              cwd=str(ROOT), capture_output=True, text=True, timeout=60)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0 and "Traceback" not in out, out
        assert "urn:dmagent:demo-0001" in out and "404 Not found" in out and "the shell takes" in out
        assert "deleted ./S" in out  # the commands after the mistakes ran too
    finally:
        agent.stop()
    history = cache_dir() / "shell-history"
    assert history.stat().st_mode & 0o077 == 0  # lines may carry values: the user's alone
    log = agent.log()
    assert log.count("link up") == 1 and log.count("session for ServerA") == 1, log


def test_the_shell_completes_verbs_and_uris(tmp_path):
    agent, key = _agent(tmp_path)
    try:
        with Device.open(agent.url, key=str(key)) as dev:
            done = UriCompleter(dev)
            assert done.completions("ge") == (["get"], 2)
            words, typed = done.completions("get ./DevInfo/D")
            assert "./DevInfo/DevId" in words and "./DevInfo/DmV" in words and typed == len("./DevInfo/D")
            assert "./DevInfo/Man" not in words
    finally:
        agent.stop()
