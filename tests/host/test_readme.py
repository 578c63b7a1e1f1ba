"""Rule: the README works as written. Its CLI tour runs command by command, in order, against
the agent the tour itself starts, each answer checked against the text after `# =>`; then its
library example runs against a fresh agent. A fresh home folder: the tour makes its own keys.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys

import pytest

from tests.host.agents import ROOT, dmagent_argv, free_port

README = (ROOT / "README.md").read_text()


def _blocks(lang, after):
    """The ```lang code blocks after the heading `after`, up to the next ## heading."""
    start = README.index(after)
    end = README.find("\n## ", start + 1)
    section = README[start:end if end != -1 else None]
    return re.findall(r"```%s\n(.*?)```" % lang, section, re.S)


def tour_steps():
    """[(command text, expected text or None)] of the tour's first sh block, comments off."""
    steps = []
    for line in _blocks("sh", "## A tour of the CLI")[0].splitlines():
        code, _, comment = line.partition("#")
        code = code.strip()
        if not code:
            continue
        expect = comment.partition("=>")[2].strip() if "=>" in comment else None
        steps.append((code, expect))
    return steps


def _home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    work = home / "work"
    work.mkdir()
    (work / "tour-config.json").write_text(_blocks("json", "## A tour of the CLI")[0])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DMAGENT_", "XDG_"))}
    env["HOME"] = str(home)
    return home, work, env


def _argv(code, home, port):
    words = shlex.split(code.rstrip("&").replace("127.0.0.1:7000", "127.0.0.1:%d" % port))
    words = [str(home) + w[1:] if w.startswith("~/") else w for w in words]
    assert words[0] == "dmagent", code
    return dmagent_argv(*words[1:])


def test_the_readme_cli_tour_runs_as_written(tmp_path):
    home, work, env = _home(tmp_path)
    port = free_port()
    server = None
    passed = []
    try:
        for code, expect in tour_steps():
            if code.startswith("export "):
                name, _, value = code[len("export "):].partition("=")
                env[name] = value.replace("127.0.0.1:7000", "127.0.0.1:%d" % port)
                continue
            argv = _argv(code, home, port)
            if code.endswith("&"):  # the agent: started, and awaited until it serves
                server = subprocess.Popen(argv, cwd=str(work), env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, start_new_session=True)
                line = server.stdout.readline()
                assert line.startswith("serving "), (code, line, server.stderr.read() if server.poll() else "")
                passed.append(code)
                continue
            proc = subprocess.run(argv, cwd=str(work), env=env, capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, "README step failed after %d passed: %s\n%s" % (
                len(passed), code, proc.stderr)
            if expect:
                got = proc.stdout
                if expect.startswith("{"):  # a JSON answer: compared as JSON
                    assert json.loads(got) == json.loads(expect), (code, got)
                else:
                    assert expect in got, (code, expect, got)
            passed.append(code)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(10)
    print("README tour: %d of %d steps pass" % (len(passed), len([s for s in tour_steps()
                                                                   if not s[0].startswith("export ")])))


def test_the_readme_library_example_runs_as_written(tmp_path):
    home, work, env = _home(tmp_path)
    port = free_port()
    keys = home / ".config" / "dmagent" / "keys"
    subprocess.run(dmagent_argv("keys", "new", "--principal", "ServerA", "--store"), env=env, check=True,
                   capture_output=True)
    server = subprocess.Popen(dmagent_argv("serve", "--tcp", "127.0.0.1:%d" % port, "--config", "tour-config.json",
                                           "--keys", str(keys)), cwd=str(work), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert server.stdout.readline().startswith("serving ")
        example = _blocks("python", "## The library")[0].replace("127.0.0.1:7000", "127.0.0.1:%d" % port)
        proc = subprocess.run([sys.executable, "-c", example], cwd=str(work), env=env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[0] == "<Device tcp://127.0.0.1:%d as ServerA, sealed>" % port
        assert lines[1:] == ["./Sensors None", "./Sensors/Temp 21", "404"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)


@pytest.mark.parametrize("code", [c for c, _ in tour_steps()])
def test_every_tour_step_is_a_dmagent_command(code):
    assert code.startswith(("dmagent ", "export DMAGENT_")), code
