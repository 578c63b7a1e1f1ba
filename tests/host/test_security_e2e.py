"""Security end to end: `dmagent serve --keys` on CPython and on the MicroPython device
runtime (110k heap), over TCP and a pseudo-terminal, driven by the library and the CLI with
key files. The host's client (host_tools/client/secure.py, on cryptography) is independent of the
agent's crypto, so a session that works is an interop check too."""

import json
import subprocess

import pytest

from dmagent.agent import proto as P
from dmagent.host_tools.client.device import Device, DeviceError
from tests.host.agents import DEMO_CONFIG, ROOT, dmagent_argv, start_agent

KEY_A = "11" * 16
KEY_GW = "22" * 32


def _key_file(folder, principal, hex_key):
    path = folder / ("%s.key" % principal)
    path.write_text(json.dumps({"principal": principal, "key": hex_key}))
    path.chmod(0o600)
    return path


def _start(tmp_path_factory, runtime):
    tmp = tmp_path_factory.mktemp("sec-" + runtime)
    keys = tmp / "keys"
    keys.mkdir()
    _key_file(keys, "ServerA", KEY_A)
    _key_file(keys, "GW1", KEY_GW)
    config = json.loads(DEMO_CONFIG.read_text())
    config["security"] = {"gateways": {"GW1": ["ServerB"]}, "integrity_only": ["GW1"],
                          "confidential": ["./DMAcc"]}
    agent = start_agent(tmp, runtime=runtime, tcp=True, pty=True, config=config, insecure=False,
                        extra=["--keys", str(keys)])
    client_keys = tmp / "client"
    client_keys.mkdir()
    agent.key_a = _key_file(client_keys, "ServerA", KEY_A)
    agent.key_gw = _key_file(client_keys, "GW1", KEY_GW)
    agent.key_wrong = _key_file(client_keys, "ServerA-wrong", "33" * 16)
    agent.key_wrong.write_text(json.dumps({"principal": "ServerA", "key": "33" * 16}))
    return agent


# A fresh agent per test: at 110k with keys, a long run of sessions can leave the heap in
# pieces too small for a handshake (docs/memory.md); that soak is its own open item.
@pytest.fixture(params=["cpython", "micropython", "micropython-frozen"])
def agent(request, tmp_path_factory):
    running = _start(tmp_path_factory, request.param)
    yield running
    running.stop()


@pytest.mark.parametrize("link", [0, 1], ids=["tcp", "pty"])
def test_library_session_with_keys(agent, link):
    with Device.open(agent.urls[link], key=agent.key_a) as dev:
        info = dev.info()
        assert info["principal"] == "ServerA" and info["suite"] == P.SUITE_CCM
        uri = "./Sec%d" % link
        dev.add(uri, interior=True)
        dev.set_acl(uri, "Add=ServerA&Delete=ServerA&Get=*&Replace=ServerA")
        dev.add(uri + "/T", 21, "int")
        assert dev.get(uri + "/T") == 21
        assert dev.get("./DMAcc/ServerA/ServerID") == "ServerA"  # confidential: fine over CCM
        with pytest.raises(DeviceError) as err:
            dev.get("./DMAcc/ServerA/AppAuth/Srv/AAuthSecret")
        assert err.value.status in (P.S_NOT_ALLOWED, P.S_PERMISSION_DENIED)  # write-only secret
        dev.delete(uri)


def test_wrong_key_is_refused_with_401(agent):
    with pytest.raises(DeviceError) as err:
        Device.open(agent.urls[0], key=agent.key_wrong, retries=1)
    assert err.value.status == P.S_UNAUTHORIZED


def test_gateway_acts_for_its_listed_server_only(agent):
    with Device.open(agent.urls[0], key=agent.key_gw, for_server="ServerB",
                     suites=(P.SUITE_HMAC,)) as dev:
        assert dev.info()["principal"] == "ServerB"
        with pytest.raises(DeviceError) as err:  # integrity-only session, confidential subtree
            dev.get("./DMAcc/ServerB/ServerID")
        assert err.value.status == P.S_FORBIDDEN
    with Device.open(agent.urls[0], key=agent.key_gw, for_server="ServerA",
                     suites=(P.SUITE_HMAC,)) as dev:
        with pytest.raises(DeviceError) as err:
            dev.add("./ByGateway", interior=True)
        assert err.value.status == P.S_FORBIDDEN


def test_cli_with_a_key_file(agent):
    def run(*args):
        return subprocess.run(dmagent_argv("-d", agent.urls[1], "--key", str(agent.key_a), "--json", *args),
                              cwd=str(ROOT), capture_output=True, text=True, timeout=60)

    res = run("get", "./DevInfo/DevId")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["value"] == "urn:dmagent:demo-0001"
    res = subprocess.run(dmagent_argv("-d", agent.urls[0], "--key", str(agent.key_wrong), "info"),
                         cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "401" in res.stderr and "Traceback" not in res.stderr


def test_cli_finds_the_key_for_as_in_the_user_key_store(agent, tmp_path):
    import os
    import shutil

    store = tmp_path / "config" / "dmagent" / "keys"
    store.mkdir(parents=True)
    shutil.copy(agent.key_a, store / "ServerA.key")
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    res = subprocess.run(dmagent_argv("-d", agent.urls[0], "--as", "ServerA", "--json", "info"),
                         cwd=str(ROOT), capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["value"]["suite"] == P.SUITE_CCM  # a sealed session, not hello


def test_a_flood_of_bad_frames_does_not_block_a_good_link_and_keys_stay_out_of_logs(agent):
    import os as _os

    from dmagent.host_tools.client import wire

    with Device.open(agent.urls[0], key=agent.key_a) as good, Device.open(agent.urls[1]) as bad:
        for i in range(300):  # forged sealed frames, garbage, and handshakes with a wrong key
            bad.transport.write(wire.encode_frame(P.KIND_SEALED, _os.urandom(40)))
            bad.transport.write(_os.urandom(30) + b"\x00")
            if i % 10 == 0:
                assert good.get("./DevInfo/DevId") == "urn:dmagent:demo-0001"
        info = good.info()
        # dropped and counted, never answered (on the 110k runtime some are dropped earlier,
        # for want of heap, and not counted: the good link is what must not suffer)
        assert info["rejected"] > 0
    log = agent.log() if callable(getattr(agent, "log", None)) else ""
    assert KEY_A not in log and KEY_GW not in log
