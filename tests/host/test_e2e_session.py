"""End to end: a real agent process, driven through the library and the CLI.

The same session runs against `dmagent serve` under CPython over loopback TCP and over a
pseudo-terminal, and under the MicroPython device runtime with a 110k heap.
"""

import json
import subprocess

import pytest

from dmagent.agent import proto as P
from dmagent.host_tools.client import wire
from dmagent.host_tools.client.device import Device, DeviceError
from dmagent.host_tools.client.transport import open_url
from tests.host.agents import ROOT, dmagent_argv, start_agent


def run_session(dev):
    """What a gateway developer does first; every step's answer is checked."""
    info = dev.hello("ServerA")
    assert info["proto"] == P.PROTOCOL_VERSION and info["principal"] == "ServerA"
    assert dev.get("./DevInfo/DevId").startswith("urn:")
    # Rule: the creator of an interior node without Replace on the parent may manage it.
    dev.add("./Apps", interior=True)
    # That ACL (Add, Delete, Replace) has no Get: ServerA asks about itself, which needs none.
    assert dev.check("./Apps", "ServerA", "Replace") == (True, "./Apps")
    assert dev.check("./Apps", "ServerA", "Get") == (False, "./Apps")
    dev.set_acl("./Apps", "Add=ServerA&Delete=ServerA&Get=*&Replace=ServerA")
    own, effective, source = dev.acl("./Apps")
    assert own == "Add=ServerA&Delete=ServerA&Get=*&Replace=ServerA" and source == "./Apps"
    dev.add("./Apps/Temp", 21, "int")
    assert dev.get_with_format("./Apps/Temp") == (21, "int")
    dev.replace("./Apps/Temp", 22)
    assert dev.get("./Apps/Temp") == 22
    # A leaf with an empty ACL inherits its parent's, all or nothing.
    assert dev.acl("./Apps/Temp") == ("", "Add=ServerA&Delete=ServerA&Get=*&Replace=ServerA", "./Apps")
    assert dev.check("./Apps/Temp", "ServerB", "Replace") == (False, "./Apps")
    dev.set_acl("./Apps/Temp", "Get=*&Replace=ServerA+ServerB")
    assert dev.check("./Apps/Temp", "ServerB", "Replace") == (True, "./Apps/Temp")
    assert sorted(dev.get("./Apps")) == ["Temp"]
    assert "./Apps/Temp" in list(dev.list("./Apps"))
    # Rule (Decision): Delete needs Delete on every node below too; Temp's own ACL has none.
    with pytest.raises(DeviceError) as err:
        dev.delete("./Apps")
    assert err.value.status == P.S_PERMISSION_DENIED and "./Apps/Temp" in err.value.message
    assert dev.check("./Apps", "ServerA", "Delete") == (False, "./Apps/Temp")
    dev.set_acl("./Apps/Temp", "Delete=ServerA&Get=*&Replace=ServerA+ServerB")
    dev.delete("./Apps")
    with pytest.raises(DeviceError) as err:
        dev.get("./Apps/Temp")
    assert err.value.status == P.S_NOT_FOUND


def replayed_request_is_not_executed_twice(url):
    """Rule: a repeated request id gets the cached answer and no second execution."""
    with Device.open(url, principal="ServerA") as dev:
        message = {P.K_ID: 4242, P.K_OP: P.OP_ADD, P.K_URI: "./Once", P.K_FORMAT: "node"}
        frame = wire.encode_message(message)
        answers = []
        for _ in range(2):
            dev.transport.write(frame)
            answers.append(dev._await(4242))
        assert [a[P.K_STATUS] for a in answers] == [200, 200]  # not 418 the second time
        message[P.K_ID] = 4243
        dev.transport.write(wire.encode_message(message))
        assert dev._await(4243)[P.K_STATUS] == P.S_EXISTS
        dev.delete("./Once")


def bad_input_gets_a_status_and_changes_nothing(url):
    with Device.open(url, principal="ServerA") as dev:
        before = list(dev.list(".", data=True))
        t = dev.transport
        t.write(b"\x13\x37garbage\xff\xfe\x00")  # noise on the line, then a delimiter
        good = wire.encode_message({P.K_ID: 1, P.K_OP: P.OP_INFO})
        t.write(good[:-3] + bytes([good[-3] ^ 0x40]) + good[-2:])  # a frame with a bad CRC is dropped
        t.write(wire.encode_frame(P.KIND_PLAIN, b"\xa1\x00"))  # truncated CBOR
        assert dev._await(None)[P.K_STATUS] == P.S_BAD_REQUEST
        for message, status in [
            ({P.K_ID: 7, P.K_OP: 99}, P.S_NOT_SUPPORTED),
            ({P.K_ID: 8, P.K_OP: P.OP_GET, P.K_URI: "./a//b"}, P.S_BAD_REQUEST),
            ({P.K_ID: 9, P.K_OP: P.OP_REPLACE, P.K_URI: "./DMAcc/ServerA?prop=ACL", P.K_VALUE: "Get="}, P.S_BAD_REQUEST),
            ({P.K_ID: 10, P.K_OP: P.OP_ADD, P.K_URI: "./X", P.K_VALUE: "abc", P.K_FORMAT: "int"}, P.S_BAD_FORMAT),
            ({P.K_ID: 11, P.K_OP: P.OP_GET}, P.S_BAD_REQUEST),
        ]:
            t.write(wire.encode_message(message))
            assert dev._await(message[P.K_ID])[P.K_STATUS] == status, message
        assert list(dev.list(".", data=True)) == before
        assert dev.info()["proto"] == P.PROTOCOL_VERSION  # still serving


@pytest.fixture(scope="module")
def cpython_agent(tmp_path_factory):
    agent = start_agent(tmp_path_factory.mktemp("cpy"), runtime="cpython", tcp=True, pty=True)
    yield agent
    agent.stop()


@pytest.fixture(scope="module")
def micropython_agent(tmp_path_factory):
    agent = start_agent(tmp_path_factory.mktemp("mpy"), runtime="micropython", tcp=True, pty=True)
    yield agent
    agent.stop()


@pytest.fixture(scope="module")
def frozen_agent(tmp_path_factory):
    agent = start_agent(tmp_path_factory.mktemp("frozen"), runtime="micropython-frozen", tcp=True, pty=True)
    yield agent
    agent.stop()


@pytest.fixture(params=["cpython", "micropython", "frozen"])
def agent(request):
    return request.getfixturevalue(request.param + "_agent")


@pytest.mark.parametrize("link", [0, 1], ids=["tcp", "pty"])
def test_library_session(agent, link):
    with Device.open(agent.urls[link]) as dev:
        run_session(dev)


def test_retry_with_same_request_id_executes_once(agent):
    replayed_request_is_not_executed_twice(agent.urls[0])


def test_bad_input_gets_clear_status_and_agent_keeps_serving(agent):
    bad_input_gets_a_status_and_changes_nothing(agent.urls[0])


def test_unauthenticated_link_cannot_write_407(agent):
    with Device.open(agent.url) as dev:
        with pytest.raises(DeviceError) as err:
            dev.add("./Nope", interior=True)
        assert err.value.status == P.S_AUTH_REQUIRED  # no credentials at all: 407


def dmagent(url, *args):
    return subprocess.run(dmagent_argv("-d", url, *args), cwd=str(ROOT), capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("link", [0, 1], ids=["tcp", "pty"])
def test_cli_session(agent, link):
    url = agent.urls[link]

    def ok(*args):
        proc = dmagent(url, "--as", "ServerA", "--json", *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return json.loads(proc.stdout)

    assert ok("info")["value"]["principal"] == "ServerA"
    assert ok("get", "./DevInfo/DevId")["value"].startswith("urn:")
    # An interior node's creator gets Add, Delete, Get and Replace on it unless told otherwise.
    assert ok("add", "./Cli", "--interior")["acl"] == "Add=ServerA&Delete=ServerA&Get=ServerA&Replace=ServerA"
    ok("acl", "./Cli", "--set", "Add=ServerA&Delete=ServerA&Get=*&Replace=ServerA")
    ok("add", "./Cli/Level", "--value", "3", "--format", "int")
    ok("replace", "./Cli/Level", "--value", "4")
    assert ok("get", "./Cli/Level") == {"status": 200, "error": None, "value": 4, "format": "int"}
    acl = ok("acl", "./Cli/Level")
    assert acl["acl"] == "" and acl["from"] == "./Cli"
    ok("acl", "./Cli/Level", "--set", "Delete=ServerA&Get=*&Replace=ServerB")
    assert ok("check", "./Cli/Level", "--server", "ServerB", "--cmd", "Replace")["allowed"] is True
    assert ok("check", "./Cli/Level", "--server", "ServerC", "--cmd", "Replace")["allowed"] is False
    tree = dmagent(url, "--as", "ServerA", "tree", "./Cli")
    assert "Level = 4" in tree.stdout, tree.stdout + tree.stderr
    ok("delete", "./Cli")
    missing = dmagent(url, "--as", "ServerA", "get", "./Cli")
    assert missing.returncode != 0
    assert "404 Not found" in missing.stderr and "Traceback" not in missing.stderr


def test_cli_mistakes_get_one_readable_line(tmp_path):
    proc = subprocess.run(dmagent_argv("get", "./X"), cwd=str(ROOT), capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "--device" in proc.stderr
    proc = dmagent("tcp://127.0.0.1:1", "info")
    assert proc.returncode == 2 and "cannot connect" in proc.stderr and "Traceback" not in proc.stderr
    proc = dmagent("bogus://x", "info")
    assert proc.returncode == 2 and "unknown device URL" in proc.stderr
