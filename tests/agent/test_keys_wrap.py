"""agent.keys, agent.keywrap and agent.escape: key files wrapped under the device key, the
escape window's length, the ESCAPE finder. Each test works in its own folder under /tmp."""

import json
import os

from agent import keys, keywrap
from agent.escape import ESCAPE, Escape, escape_window_ms
from tests.agent.check import raises, tohex
from tests.agent.edge_helpers import rmtree as _rmtree

KEY = bytes(range(1, 17))
_serial = [0]


def _folder():
    _serial[0] += 1
    path = "/tmp/dmagent-keys-%s-%d" % (tohex(os.urandom(4)), _serial[0])
    os.mkdir(path)
    os.mkdir(path + "/keys")
    return path


def _put(path, doc):
    with open(path, "w") as f:
        f.write(json.dumps(doc))


def _read(path):
    with open(path) as f:
        return f.read()


def test_rule_a_plain_key_file_is_wrapped_at_boot_and_still_gives_the_key():
    d = _folder()
    try:
        _put(d + "/keys/ServerA.key", {"principal": "ServerA", "key": tohex(KEY)})
        store = keywrap.FileSecrets(d + "/secrets")
        assert keys.load([d + "/keys"], secrets=store, rewrap=True) == {"ServerA": KEY}
        text = _read(d + "/keys/ServerA.key")
        assert tohex(KEY) not in text and "wrapped" in text and "ServerA" in text
        assert tohex(KEY) not in _read(d + "/secrets")  # the device key, not the key
        # the next boot (a new store object: nothing cached) reads the wrapped file
        assert keys.load([d + "/keys"], secrets=keywrap.FileSecrets(d + "/secrets"), rewrap=True) == {"ServerA": KEY}
        assert _read(d + "/keys/ServerA.key") == text  # wrapped once, not again
    finally:
        _rmtree(d)


def test_rule_a_wrapped_key_opens_only_under_its_device_key_and_for_its_principal():
    d = _folder()
    try:
        _put(d + "/keys/ServerA.key", {"principal": "ServerA", "key": tohex(KEY)})
        keys.load([d + "/keys"], secrets=keywrap.FileSecrets(d + "/secrets"), rewrap=True)
        # another device (another device key): a clear error naming the file
        err = raises(ValueError, keys.load, [d + "/keys"], secrets=keywrap.FileSecrets(d + "/other"))
        assert "not under this device's key" in str(err) and "ServerA.key" in str(err)
        err = raises(ValueError, keys.load, [d + "/keys"])  # the host, or no store: for its board only
        assert "wrapped" in str(err)
        other = keywrap.FileSecrets(d + "/other")
        keywrap.device_key(other)
        err = raises(ValueError, keys.load, [d + "/keys"], secrets=other)
        assert "not under this device's key" in str(err)
        # the wrapped blob moved to another principal's file: refused (bound to its principal)
        doc = json.loads(_read(d + "/keys/ServerA.key"))
        doc["principal"] = "ServerB"
        _put(d + "/keys/ServerA.key", doc)
        err = raises(ValueError, keys.load, [d + "/keys"], secrets=keywrap.FileSecrets(d + "/secrets"))
        assert "not under this device's key" in str(err)
        assert keys.has_keys(d + "/keys") and not keys.has_keys(d + "/none")
    finally:
        _rmtree(d)


def test_rule_a_keyed_board_has_no_escape_window_unless_its_config_asks():
    assert escape_window_ms({}, keyed=False) == 2000
    assert escape_window_ms({}, keyed=True) == 0
    assert escape_window_ms({"escape_ms": 2000}, keyed=True) == 0  # the old key opens nothing
    assert escape_window_ms({"escape_window_ms": 300}, keyed=True) == 300
    assert escape_window_ms({"escape_window_ms": 0}, keyed=False) == 0
    raises(ValueError, escape_window_ms, {"escape_window_ms": "300"}, True)
    raises(ValueError, escape_window_ms, {"escape_window_ms": -1}, True)


def test_rule_escape_is_found_across_chunks_and_the_rest_is_kept():
    esc = Escape(8)
    data = b"\x03\x00\x00DMAGENT" + b"-REPL"
    assert not esc.feed(data, len(data))
    assert bytes(esc.heard()) == data[-8:]  # the last bytes heard, for the agent
    assert esc.feed(b"\x00", 1)
    esc = Escape()
    near = b"\x00DMAGENT-REPL" + b"\x01\x00" + b"\x00DMAGENT-REPX\x00" + b"xDMAGENT-REPL\x00"
    assert not esc.feed(near, len(near))
    assert esc.feed(ESCAPE, len(ESCAPE))
