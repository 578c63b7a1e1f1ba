"""Rules of the CLI that forgives: device options before or after the verb, one JSON shape for
every command, one line and a hint for every mistake (never a traceback), Ctrl-C says what it
left behind, and the spec's defaults (an interior node's creator may Get it; replace needs no Get).

Against a real `dmagent serve` (CPython, keys, TCP), as a user would run it.
"""

import json
import os
import signal
import subprocess
import time

import pytest

from tests.host.agents import DEMO_CONFIG, ROOT, TEST_HEAP, dmagent_argv, free_port, start_agent, write_key_file

KEY_A = "11" * 16


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("forgives")
    keys = tmp / "keys"
    keys.mkdir()
    write_key_file(keys, "ServerA", KEY_A)
    running = start_agent(tmp, config=DEMO_CONFIG, insecure=False, extra=["--keys", str(keys)])
    client = tmp / "client"
    client.mkdir()
    running.key_a = write_key_file(client, "ServerA", KEY_A)
    running.env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "config"))
    yield running
    running.stop()


def run(agent, *args, env=None):
    proc = subprocess.run(dmagent_argv(*args), cwd=str(ROOT), capture_output=True, text=True, timeout=60,
                          env=env or agent.env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_device_options_go_before_or_after_the_verb(agent):
    before = run(agent, "-d", agent.url, "--key", str(agent.key_a), "--json", "get", "./DevInfo/DevId")
    after = run(agent, "get", "./DevInfo/DevId", "-d", agent.url, "--key", str(agent.key_a), "--json")
    split = run(agent, "--json", "get", "-d", agent.url, "./DevInfo/DevId", "--key", str(agent.key_a))
    assert before.returncode == after.returncode == split.returncode == 0, after.stderr
    assert json.loads(before.stdout) == json.loads(after.stdout) == json.loads(split.stdout)
    assert json.loads(after.stdout) == {"status": 200, "error": None, "value": "urn:dmagent:demo-0001",
                                        "format": "chr"}


def test_every_json_answer_has_one_shape(agent, tmp_path):
    answers = [
        run(agent, "--json", "ports"), run(agent, "ports", "--json"),
        run(agent, "--json", "keys", "list", str(tmp_path)), run(agent, "keys", "list", str(tmp_path), "--json"),
        run(agent, "--json", "build", "--board", "virtual", "--out", str(tmp_path / "b")),
        run(agent, "--json", "get", "./Nothing", "-d", agent.url, "--key", str(agent.key_a)),  # a 404
        run(agent, "get", "--bogus", "./X", "--json"),  # click's own usage error
        run(agent, "--json", "info", "-d", "tcp://127.0.0.1:70000"),  # a usage error
    ]
    for proc in answers:
        doc = json.loads(proc.stdout)
        assert list(doc)[:2] == ["status", "error"], doc
        assert (doc["error"] is None) == (proc.returncode == 0), doc
    assert json.loads(answers[-3].stdout)["status"] == 404
    assert json.loads(answers[-1].stdout)["status"] is None and "65535" in json.loads(answers[-1].stdout)["error"]


@pytest.mark.parametrize("args, says", [
    (["-d", "tcp://127.0.0.1:70000", "info"], "a port from 1 to 65535"),
    (["-d", "tcp://127.0.0.1", "info"], "needs a host and a port"),
    (["-d", "bogus://x", "info"], "unknown device URL"),
    (["-d", "serial:///dev/ttyX?baud=fast", "info"], "baud must be a positive number"),
    (["-d", "tcp://127.0.0.1:1", "--key", "/no/such.key", "info"], "not found"),
])
def test_a_mistake_is_one_line_and_a_hint(agent, args, says):
    proc = run(agent, *args)
    assert proc.returncode == 2 and says in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2  # error: ... and hint: ...


def test_a_key_for_another_principal_is_refused_not_used(agent):
    proc = run(agent, "-d", agent.url, "--as", "ServerB", "--key", str(agent.key_a), "info")
    assert proc.returncode == 2 and "is for ServerA, not ServerB" in proc.stderr
    assert proc.stdout == ""  # it did not act as ServerA


def test_a_value_too_big_for_max_frame_is_refused_before_sending(agent):
    start = time.monotonic()
    proc = run(agent, "-d", agent.url, "--key", str(agent.key_a), "replace", "./DevInfo/DevId",
               "--value", "x" * 5000, "--format", "chr")
    assert proc.returncode == 2 and "max_frame" in proc.stderr
    assert time.monotonic() - start < 5  # no wait for an answer that cannot come (timeout 2 s x 3 tries)


def test_an_unknown_key_in_the_defaults_file_is_named(agent, tmp_path):
    config = tmp_path / "config" / "dmagent"
    config.mkdir(parents=True)
    (config / "config.json").write_text(json.dumps({"device": agent.url, "timout": 3}))
    env = dict(agent.env, XDG_CONFIG_HOME=str(tmp_path / "config"))
    proc = run(agent, "info", env=env)
    assert proc.returncode == 2 and "config.json: unknown key 'timout'" in proc.stderr
    (config / "config.json").write_text(json.dumps({"device": agent.url, "key": str(agent.key_a), "timeout": 3}))
    proc = run(agent, "get", "./DevInfo/DevId", env=env)  # the defaults file gives device and key
    assert proc.returncode == 0 and proc.stdout.strip() == "urn:dmagent:demo-0001", proc.stderr


def test_an_interior_nodes_creator_may_get_it_and_replace_needs_no_get(agent):
    dev = ["-d", agent.url, "--key", str(agent.key_a)]
    added = json.loads(run(agent, "add", "./Room", "--interior", "--json", *dev).stdout)
    assert added["acl"] == "Add=ServerA&Delete=ServerA&Get=ServerA&Replace=ServerA"
    assert run(agent, "add", "./Room/T", "--value", "21", "--format", "int", *dev).returncode == 0
    # T's format (int) is the agent's to keep: no Get first, so Replace alone is enough.
    assert run(agent, "acl", "./Room/T", "--set", "Replace=ServerA", *dev).returncode == 0
    assert run(agent, "replace", "./Room/T", "--value", "22", *dev).returncode == 0
    assert run(agent, "acl", "./Room/T", "--set", "Delete=ServerA&Get=ServerA&Replace=ServerA", *dev).returncode == 0
    assert json.loads(run(agent, "get", "./Room/T", "--json", *dev).stdout)["value"] == 22
    bare = json.loads(run(agent, "add", "./Bare", "--interior", "--no-acl", "--json", *dev).stdout)
    assert bare["acl"] is None
    assert run(agent, "delete", "./Room", *dev).returncode == 0


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_ctrl_c_on_serve_says_what_state_is_left(tmp_path, runtime):
    proc = subprocess.Popen(dmagent_argv("serve", "--runtime", runtime, "--tcp", "127.0.0.1:%d" % free_port(),
                                         "--insecure",
                                         "--state", str(tmp_path / "state"), "--config", str(DEMO_CONFIG)),
                            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert proc.stdout.readline().startswith("serving ")
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    _, err = proc.communicate(timeout=20)
    assert "Traceback" not in err
    # "stopped: ..." once serving, "interrupted: ..." if the signal came while it started
    assert "the agent stopped; every change it acknowledged is kept in %s" % (tmp_path / "state") in err


def test_serve_v_logs_each_request_with_a_timestamp(tmp_path):
    agent = start_agent(tmp_path, extra=["-v"])
    try:
        proc = subprocess.run(dmagent_argv("get", "./DevInfo/DevId", "-d", agent.url, "--as", "ServerA", "-v"),
                              cwd=str(ROOT), capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0
        assert "get ./DevInfo/DevId 200 OK" in proc.stderr  # the client's -v: op, URI, status, sizes, time
    finally:
        agent.stop()
    lines = [l for l in agent.log().splitlines() if " get ./DevInfo/DevId -> 200" in l]
    assert len(lines) == 1 and lines[0][:4].isdigit() and "ServerA" in lines[0], agent.log()


def test_shell_completion_is_installable():
    proc = subprocess.run(dmagent_argv("completion", "bash"), cwd=str(ROOT), capture_output=True, text=True)
    assert proc.returncode == 0 and "_DMAGENT_COMPLETE" in proc.stdout


def test_d_auto_takes_the_one_board_that_answers_and_lists_several(tmp_path, mocker):
    from dmagent.host_tools.cli import connect as cli
    from dmagent.host_tools.client import ports
    from dmagent.host_tools.client.errors import UsageError

    (tmp_path / "a").mkdir()
    first = start_agent(tmp_path / "a", tcp=False, pty=True)
    silent = os.openpty()  # a port where nothing answers
    try:
        listed = [ports.Port(os.ttyname(silent[1])), ports.Port(first.url)]
        mocker.patch.object(ports, "list_ports", return_value=listed)  # the system's enumeration only
        assert cli.find_device(1.0) == first.url
        (tmp_path / "b").mkdir()
        second = start_agent(tmp_path / "b", tcp=False, pty=True)
        try:
            listed.append(ports.Port(second.url))
            with pytest.raises(UsageError, match="several agents answer: .*%s.*%s" % (first.url, second.url)):
                cli.find_device(1.0)
        finally:
            second.stop()
    finally:
        first.stop()
        os.close(silent[0])
        os.close(silent[1])


@pytest.mark.parametrize("verb", [["serve", "--tcp", "127.0.0.1:0"], ["flash", "/dev/ttyNONE", "--board", "virtual"]])
def test_a_bad_config_file_is_named_before_anything_starts(tmp_path, verb):
    bad = tmp_path / "cfg.json"
    bad.write_text('{"device": {"devid": "x"},}')
    proc = subprocess.run(dmagent_argv(*verb, "--config", str(bad)), cwd=str(ROOT), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "config %s: not valid JSON" % bad in proc.stderr
    proc = subprocess.run(dmagent_argv(*verb, "--config", str(tmp_path / "none.json")), cwd=str(ROOT),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "config %s: " % (tmp_path / "none.json") in proc.stderr


def test_the_library_raises_one_family_and_principal_finds_the_store_key(agent, tmp_path, monkeypatch):
    from dmagent.host_tools.client import Device, DeviceError, DmagentError, LinkError, UsageError

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    store = tmp_path / "config" / "dmagent" / "keys"
    store.mkdir(parents=True)
    write_key_file(store, "ServerA", KEY_A)
    with Device.open(agent.url, principal="ServerA") as dev:  # no key given: the store's, sealed
        assert repr(dev) == "<Device %s as ServerA, sealed>" % agent.url
        with pytest.raises(DeviceError) as status:
            dev.get("./Nothing")
        assert status.value.status == 404
        with pytest.raises(UsageError, match="max_frame"):
            dev.replace("./DevInfo/DevId", "x" * 5000, "chr")
    with pytest.raises(UsageError, match="65535"):
        Device.open("tcp://127.0.0.1:70000")
    with pytest.raises(LinkError):
        Device.open("tcp://127.0.0.1:%d" % free_port())
    with pytest.raises(UsageError, match="is for ServerA, not ServerB"):
        Device.open(agent.url, principal="ServerB", key=str(agent.key_a))
    for kind in (DeviceError, LinkError, UsageError):
        assert issubclass(kind, DmagentError)


def test_ctrl_c_during_a_flash_says_what_the_board_is_left_with(tmp_path):
    from dmagent.host_tools.vboard.board import VirtualBoard, ensure_node_runtime

    ensure_node_runtime(log=lambda line: None)
    with VirtualBoard(tmp_path / "flash", baud=115200) as board:  # slow enough to be mid-write
        proc = subprocess.Popen(dmagent_argv("flash", board.port, "--board", "virtual"), cwd=str(ROOT),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        deadline = time.monotonic() + 60
        while not (tmp_path / "flash" / "lib").exists() and time.monotonic() < deadline:
            time.sleep(0.2)  # the write stage has begun: folders are made first
        time.sleep(1)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("interrupted: the flash of %s stopped; a board boots what it had"
                                                   % board.port)


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_relative_state_and_config_paths_are_the_callers_not_the_clones(tmp_path, runtime):
    """A relative --state and --config name files below the folder the command runs in, on
    every runtime (the MicroPython one runs in the clone's folder: its paths are mapped)."""
    (tmp_path / "here.json").write_text(DEMO_CONFIG.read_text())
    port = free_port()
    heap = ["--heap", TEST_HEAP[runtime]] if runtime in TEST_HEAP else []
    proc = subprocess.Popen(dmagent_argv("serve", "--runtime", runtime, "--tcp", "127.0.0.1:%d" % port,
                                         "--insecure", "--state", "./st", "--config", "here.json", *heap),
                            cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), start_new_session=True)
    try:
        assert proc.stdout.readline().startswith("serving "), proc.stderr.read()
        add = subprocess.run(dmagent_argv("--as", "ServerA", "-d", "tcp://127.0.0.1:%d" % port, "add", "./Here",
                                          "--value", "1", "--format", "int"),
                             cwd=str(ROOT), capture_output=True, text=True, timeout=60)
        assert add.returncode == 0, add.stderr
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=20)
    assert (tmp_path / "st" / "journal.bin").is_file()
    assert not (ROOT / "st").exists()
