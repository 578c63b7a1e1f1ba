"""Rule: the device config is checked at start-up by one validator (agent.config): an unknown
key or a wrong type is refused with one line naming the key, and App refuses it too, so no
agent runs on a config it would misread (a string of gateways searched as text)."""

from agent import config as C
from agent.app import App
from tests.agent.check import raises  # noqa: E402

GOOD = {
    "device": {"devid": "urn:x:1", "man": "m"},
    "accounts": [{"server_id": "ServerA", "name": "A", "auth": {"type": "HMAC", "secret": "s"}}],
    "nodes": [{"uri": "./N", "format": "node", "acl": "Get=*"}],
    "acls": {".": "Add=*&Get=*"},
    "open_reads": ["./DevInfo"],
    "limits": {"max_nodes": 300},
    "security": {"gateways": {"GW1": ["ServerA"]}, "integrity_only": ["GW1"],
                 "confidential": ["./DMAcc"], "owners": ["ServerA"]},
    "insecure": False,
    "escape_window_ms": 0, "console": True, "uart": None, "wifi": None, "tcp": {"port": 7000},
}


def _problem(config):
    return str(raises(C.ConfigError, C.check, config, "dev.json"))


def test_a_good_config_passes_as_it_is():
    assert C.check(GOOD, "dev.json") is GOOD
    assert C.check(None) == {} and C.check({}) == {}


def test_gateways_as_a_string_is_refused_naming_file_and_key():
    assert _problem({"security": {"gateways": "ServerAB"}}) == "config dev.json: security.gateways: must be a map"
    msg = _problem({"security": {"gateways": {"GW1": "ServerAB"}}})
    assert msg == "config dev.json: security.gateways.GW1: must be a list", msg


def test_unknown_keys_are_refused_at_every_level():
    assert _problem({"securty": {}}).startswith("config dev.json: securty: unknown key (known here: accounts")
    assert "security.owner: unknown key" in _problem({"security": {"owner": ["A"]}})
    assert "accounts[0].serverid: unknown key" in _problem({"accounts": [{"serverid": "A"}]})
    assert "limits.max_node: unknown key" in _problem({"limits": {"max_node": 5}})


def test_wrong_types_are_named():
    for config, where in (
        ({"open_reads": "./DevInfo"}, "open_reads: must be a list"),
        ({"security": {"integrity_only": ["GW 1"]}}, "security.integrity_only[0]: must be a ServerID"),
        ({"security": {"owners": "ServerA"}}, "security.owners: must be a list"),
        ({"security": {"confidential": ["./A/../B"]}}, "security.confidential[0]: must be a URI"),
        ({"insecure": "no"}, "insecure: must be true or false"),
        ({"limits": {"max_depth": True}}, "limits.max_depth: must be an int"),
        ({"limits": {"max_depth": -1}}, "limits.max_depth: must be an int"),
        ({"accounts": [{"server_id": "A", "name": "x/y"}]}, "accounts[0].name: must be a node name"),
        ({"accounts": [{"name": "A"}]}, "accounts[0]: needs server_id"),
        ({"device": {"devid": 5}}, "device.devid: must be text"),
        ({"uart": 2}, "uart: must be a map"),
        ({"security": {"gateways": {"G=1": ["A"]}}}, "security.gateways.G=1 (the key): must be a ServerID"),
        ([], "the config: must be a map"),
    ):
        msg = _problem(config)
        assert msg.startswith("config dev.json: ") and where in msg, (config, msg)


def test_a_gateways_string_that_escaped_the_check_grants_nothing():
    """App takes a checked config (it does not check again: heap); should an unchecked one
    reach it, a string of ServerIDs is still never searched as text."""
    guard = App({"security": {"gateways": {"GW1": "ServerAB"}}}).guard
    assert not guard.may_act_for("GW1", "ServerA") and not guard.may_act_for("GW1", "A")
    assert not guard.may_act_for("GW1", "ServerAB")
