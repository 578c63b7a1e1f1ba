"""Key files and `dmagent keys`: made 0600, never shown, found in the user's key store."""

import json
import os
import stat
import subprocess

from dmagent.host_tools.client import keys
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
    from dmagent.agent import keys as agent_keys

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


# --- the `keys` group of host_tools/cli/keys.py, in process --------------------------------
import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from dmagent.host_tools.cli.keys import keys_group  # noqa: E402


def _run(tmp_path, *args):
    return CliRunner().invoke(keys_group, list(args), env={"XDG_CONFIG_HOME": str(tmp_path / "config")},
                         catch_exceptions=False)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_cli_keys_new_out_and_store_share_one_key_both_0600(tmp_path, monkeypatch):
    out = tmp_path / "dev" / "serverA.key"
    res = _run(tmp_path, "new", "--principal", "ServerA", "--out", str(out), "--store", "--length", "32")
    assert res.exit_code == 0, res.output
    stored = tmp_path / "config" / "dmagent" / "keys" / "ServerA.key"
    assert _mode(out) == 0o600 and _mode(stored) == 0o600
    doc = json.loads(out.read_text())
    assert doc == json.loads(stored.read_text()) and len(bytes.fromhex(doc["key"])) == 32
    assert doc["key"] not in res.output
    assert keys.fingerprint(bytes.fromhex(doc["key"])) in res.output
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert keys.store_dir() == stored.parent and keys.find_key("ServerA") == stored
    assert keys.key_for("ServerA") == bytes.fromhex(doc["key"])


def test_cli_keys_new_refuses_overwrite_in_one_line_and_force_replaces_as_0600(tmp_path):
    out = tmp_path / "a.key"
    out.write_text("precious")
    out.chmod(0o644)
    res = _run(tmp_path, "new", "--principal", "ServerA", "--out", str(out))
    assert res.exit_code == 2 and out.read_text() == "precious"
    err = res.stderr
    assert err.strip().startswith("error:") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    # --store with an existing store entry: refused before anything is written
    assert _run(tmp_path, "new", "--principal", "ServerA", "--store").exit_code == 0
    res = _run(tmp_path, "new", "--principal", "ServerA", "--out", str(tmp_path / "fresh.key"), "--store")
    assert res.exit_code == 2 and not (tmp_path / "fresh.key").exists()
    res = _run(tmp_path, "new", "--principal", "ServerA", "--out", str(out), "--force")
    assert res.exit_code == 0 and _mode(out) == 0o600
    assert json.loads(out.read_text())["principal"] == "ServerA"


@pytest.mark.parametrize("args", [
    ["--principal", "bad id"], ["--principal", "A&B"], ["--principal", "../escape"],
    ["--principal", "ServerA", "--length", "24"],
])
def test_cli_keys_new_bad_arguments_give_one_line(tmp_path, args):
    res = _run(tmp_path, "new", *args)
    assert res.exit_code == 2
    err = res.stderr
    assert "Traceback" not in err and ("error:" in err.lower() or "Error:" in err)
    assert not (tmp_path / "config" / "dmagent" / "keys").exists() or \
        not list((tmp_path / "config" / "dmagent" / "keys").iterdir())


def test_cli_keys_list_shows_principal_file_fingerprint_never_the_key(tmp_path):
    folder = tmp_path / "device-keys"
    for principal, length in (("ServerA", "16"), ("GW1", "32")):
        assert _run(tmp_path, "new", "--principal", principal, "--out",
                    str(folder / (principal + ".key")), "--length", length).exit_code == 0
    (folder / "notes.key").write_text("not json")  # skipped, not fatal
    secrets = [json.loads((folder / n).read_text())["key"] for n in ("ServerA.key", "GW1.key")]
    for args in ([str(folder)], [str(folder), "--json"], [str(folder / "GW1.key")]):
        res = _run(tmp_path, "list", *args)
        assert res.exit_code == 0, res.output
        for secret in secrets:
            assert secret not in res.output and secret[:16] not in res.output
    res = _run(tmp_path, "list", str(folder), "--json")
    listed = json.loads(res.output)["keys"]
    assert [(k["principal"], k["bytes"]) for k in listed] == [("GW1", 32), ("ServerA", 16)]
    assert [k["fingerprint"] for k in listed] == [keys.fingerprint(bytes.fromhex(s)) for s in secrets[::-1]]
    assert _run(tmp_path, "list").output.startswith("no key files")
    res = _run(tmp_path, "list", str(tmp_path / "missing"))
    assert res.exit_code == 2


# --- the library ----------------------------------------------------------------------------
def test_new_key_file_is_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        fp = keys.new_key_file("ServerA", tmp_path / "k.key")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "k.key") == 0o600
    principal, key = keys.load_key_file(tmp_path / "k.key")
    assert principal == "ServerA" and len(key) == 16 and keys.fingerprint(key) == fp
    with pytest.raises(keys.KeyFileError):
        keys.new_key_file("ServerA", tmp_path / "k.key")
    with pytest.raises(keys.KeyFileError):
        keys.new_key_file("ServerA", tmp_path / "l.key", length=24)


def test_a_loaded_key_does_not_print_itself(tmp_path):
    keys.write_key_file("ServerA", b"\xab" * 16, tmp_path / "k.key")
    _, key = keys.load_key_file(tmp_path / "k.key")
    for text in (repr(key), str(key), "%s" % key, "%r" % (key,), repr((1, key))):
        assert "ab" * 4 not in text and "\\xab" not in text
    with pytest.raises(TypeError):
        key.hex()
    assert key == b"\xab" * 16  # still the bytes, for the crypto


def test_bad_key_files_are_named_without_their_contents(tmp_path):
    cases = {"odd.key": '{"principal": "A", "key": "abcdef0"}',
             "short.key": '{"principal": "A", "key": "%s"}' % ("cd" * 8)[:-2],
             "nokey.key": '{"principal": "A"}', "list.key": "[1, 2]", "text.key": "cdcdcdcd"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(keys.KeyFileError) as err:
            keys.load_key_file(tmp_path / name)
        assert name in str(err.value) and "cdcdcd" not in str(err.value) and "abcdef" not in str(err.value)
    with pytest.raises(keys.KeyFileError, match="not found"):
        keys.load_key_file(tmp_path / "absent.key")
    assert keys.list_keys([tmp_path]) == []
    with pytest.raises(keys.KeyFileError):
        keys.key_for("A", [tmp_path])
