"""Rule: code only rare requests need is loaded for them (docs/memory.md): a URI's %XX decoder
(agent.percent, loaded on the first escape and kept), the check of a new ServerID
(agent.server_id), Exec (agent.execute) and the ACL query (agent.query), each loaded for the
request and dropped. The answer is the same whether it was
loaded before or not; where loading it runs out of heap (a MemoryError, which the dispatcher
answers with 420) nothing changes. Runs on CPython and under the device runtime.
"""

import sys

from agent import proto as P
from agent import unload
from agent import uri as U
from agent.errors import DMError
from tests.agent.acl_fixture import T_ACL, _agent, _do
from tests.agent.check import raises

_PKG = U.__name__.rpartition(".")[0]  # "agent"


class _NoRoom:
    """Stands for a module whose code found no room: each of its functions raises MemoryError."""

    def decode(self, seg):
        raise MemoryError()

    def check(self, tree, account, value):
        raise MemoryError()

    def execute(self, tree, principal, uri, data):
        raise MemoryError()

    def acl_info(self, tree, principal, uri):
        raise MemoryError()


def _load_fails(name):
    stub = _NoRoom()
    sys.modules[_PKG + "." + name] = stub
    setattr(sys.modules[_PKG], name, stub)  # where `from . import name` looks first


def test_rule_a_uri_escape_is_decoded_by_code_loaded_on_the_first_one_and_kept():
    unload(".percent")
    assert U.parse("./T/%4C%c3%a9") == (["T", "L\u00e9"], None, None)
    assert _PKG + ".percent" in sys.modules  # kept: the next escape costs no load
    assert U.parse("./T/%4C") == (["T", "L"], None, None)
    assert raises(DMError, U.parse, "./T/%4").status == 400
    assert raises(DMError, U.parse, "./T/%ff").status == 400  # not UTF-8
    assert U.parse("./T/L") == (["T", "L"], None, None)


def test_rule_an_escape_whose_decoder_finds_no_room_changes_nothing():
    t, d = _agent()
    _load_fails("percent")
    try:
        raises(MemoryError, t.add, "A", "./T/%41", 1)
        raises(MemoryError, t.replace, "A", "./T/%4C", 6)
    finally:
        unload(".percent")
    assert not t.exists("./T/A") and t.value("./T/L") == 5
    t.add("A", "./T/%41", 1)  # room again: the same request is done
    assert t.value("./T/A") == 1


def test_rule_a_new_serverid_is_checked_by_code_loaded_for_it():
    t, d = _agent()
    assert raises(DMError, t.replace, "A", "./DMAcc/A/ServerID", "B").status == 418
    assert raises(DMError, t.replace, "A", "./DMAcc/A/ServerID", "A+B").status == 400
    assert _PKG + ".server_id" not in sys.modules  # dropped after each request
    t.replace("A", "./DMAcc/A/ServerID", "A2")
    assert t.value("./DMAcc/A/ServerID") == "A2"


def test_rule_a_serverid_check_that_finds_no_room_changes_nothing():
    t, d = _agent()
    _load_fails("server_id")
    raises(MemoryError, t.replace, "A", "./DMAcc/A/ServerID", "A2")
    assert _PKG + ".server_id" not in sys.modules  # the failed load is not kept
    assert t.value("./DMAcc/A/ServerID") == "A" and t.acl_info("A", "./DMAcc/A")[0] == "Add=A&Delete=A&Get=A&Replace=A"
    t.replace("A", "./DMAcc/A/ServerID", "A2")  # room again: the same request is done
    assert t.value("./DMAcc/A/ServerID") == "A2"


def _exec_node(t):
    """./T/Run: an Exec node whose handler logs each run."""
    ran = []

    def run(tree, principal, data):
        ran.append(data)
        return P.S_OK, data

    t.put("./T/Run", "", "chr", acl="Exec=A")
    t.on_exec("./T/Run", run)
    return ran


def _digest(tree):
    parts = []
    tree.dump(lambda chunk: parts.append(bytes(chunk)))
    return b"".join(parts)


def test_rule_exec_runs_code_loaded_for_the_request_and_dropped():
    t, d = _agent()
    ran = _exec_node(t)
    resp = _do("A", P.OP_EXEC, "./T/Run", "go")
    assert resp[P.K_STATUS] == P.S_OK and resp[P.K_VALUE] == "go" and ran == ["go"]
    assert _PKG + ".execute" not in sys.modules  # dropped after each request
    assert _do("B", P.OP_EXEC, "./T/Run", "go")[P.K_STATUS] == P.S_PERMISSION_DENIED
    assert _do("A", P.OP_EXEC, "./T/L")[P.K_STATUS] == P.S_NOT_ALLOWED  # no handler
    assert ran == ["go"]


def test_rule_an_exec_whose_code_finds_no_room_is_420_and_runs_no_handler():
    t, d = _agent()
    ran = _exec_node(t)
    before = _digest(t)
    _load_fails("execute")
    resp = _do("A", P.OP_EXEC, "./T/Run", "go")
    assert _PKG + ".execute" not in sys.modules  # the failed load is not kept
    assert resp[P.K_STATUS] == P.S_DEVICE_FULL and resp[P.K_MSG] == "device out of memory"
    assert ran == [] and _digest(t) == before and not t.in_transaction()
    assert _do("A", P.OP_EXEC, "./T/Run", "go")[P.K_STATUS] == P.S_OK  # room again: it runs
    assert ran == ["go"]


def test_rule_the_acl_query_runs_code_loaded_for_the_request_and_dropped():
    t, d = _agent()
    resp = _do("A", P.OP_ACL, "./T/N")
    assert (resp[P.K_STATUS], resp[P.K_ACL], resp[P.K_EFFECTIVE], resp[P.K_FROM]) == (200, "", T_ACL, "./T")
    assert _PKG + ".query" not in sys.modules
    _load_fails("query")
    raises(MemoryError, t.acl_info, "A", "./T/N")  # the dispatcher's 420
    assert _PKG + ".query" not in sys.modules  # the failed load is not kept
    _load_fails("query")
    assert _do("A", P.OP_ACL, "./T/N")[P.K_STATUS] == P.S_OK  # its second try loads it again
