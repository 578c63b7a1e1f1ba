"""One test per rule of shared/design/omadm-rules.md, named after the rule: every status code the rules name, and which status wins.

Every test drives the agent as a DM server would: request maps of agent.proto keys through
agent.dispatch.Dispatcher, on a Tree seeded with the standard objects (agent.mo), so the
status codes checked are the ones a server gets back. Runs under CPython (pytest) and under
the MicroPython device runtime with a 110k heap (tools/mpytest tests.agent.test_acl_status):
small trees, plain asserts.
"""


from agent import mo  # noqa: F401
from agent import proto as P  # noqa: F401
from agent.dispatch import Dispatcher  # noqa: F401
from agent.tree import Tree  # noqa: F401
from tests.agent.acl_fixture import (  # noqa: F401
    _NO, T_ACL, _As, _D, _aclq, _agent, _check, _do, _get, _own, _st, add_st, del_st, exec_st, get_st, rep_st, val,
)


# --- Status codes -------------------------------------------------------------------------------------


def test_rule_status_200_ok():
    t, d = _agent()
    assert get_st("A", "./T/L") == 200
    assert rep_st("A", "./T/L", 1) == 200
    assert add_st("A", "./T/Z", 1) == 200
    assert del_st("A", "./T/Z") == 200


def test_rule_status_202_exec_started():
    t, d = _agent()
    t.on_exec("./T/N", lambda tree, who, data: (202, None))
    t.set_acl("./T/N", "Exec=A")
    assert exec_st("A", "./T/N") == 202


def test_rule_status_213_not_used_lrgobj_is_false():
    t, d = _agent()
    r = _get("A", "./DevDetail/LrgObj")
    assert r[P.K_VALUE] is False and r[P.K_FORMAT] == "bool"


def test_rule_status_215_216_507_atomic_rolled_back():
    t, d = _agent()
    items = [{P.K_OP: P.OP_ADD, P.K_URI: "./T/a", P.K_VALUE: 1},
             {P.K_OP: P.OP_ADD, P.K_URI: "./T/L", P.K_VALUE: 1},  # 418
             {P.K_OP: P.OP_DELETE, P.K_URI: "./T/N"}]
    r = d.handle(_As("A"), {P.K_OP: P.OP_ATOMIC, P.K_ITEMS: items})
    assert r[P.K_STATUS] == 507
    assert [i[P.K_STATUS] for i in r[P.K_ITEMS]] == [216, 418, 215]
    assert not t.exists("./T/a") and t.exists("./T/N")


def test_rule_status_516_atomic_rollback_failed():
    t, d = _agent()

    def broken():
        raise MemoryError()

    t.rollback = broken
    items = [{P.K_OP: P.OP_ADD, P.K_URI: "./T/a", P.K_VALUE: 1},
             {P.K_OP: P.OP_ADD, P.K_URI: "./T/L", P.K_VALUE: 1}]
    r = d.handle(_As("A"), {P.K_OP: P.OP_ATOMIC, P.K_ITEMS: items})
    del t.rollback
    assert r[P.K_STATUS] == 516
    assert [i[P.K_STATUS] for i in r[P.K_ITEMS]] == [516, 418]
    if t.in_transaction():
        t.rollback()


def test_rule_status_400_bad_request():
    t, d = _agent()
    assert d.handle(_As("A"), [1, 2])[P.K_STATUS] == 400  # not a map
    assert d.handle(_As("A"), {P.K_OP: P.OP_GET})[P.K_STATUS] == 400  # no uri
    assert _st(_do("A", P.OP_REPLACE, "./T/L")) == 400  # no value


def test_rule_status_407_without_credentials_401_with_refused_ones():
    # OMA DM status tables: 407 "authentication required" when none was given at all,
    # 401 when credentials were given and refused (naming a principal without --insecure).
    t, d = _agent()
    assert get_st(None, "./DevInfo/DevId") == 407
    assert add_st(None, "./x", 1) == 407
    from agent.session import Session

    s = Session(d, "t", insecure=False)
    assert _st(d.handle(s, {P.K_OP: P.OP_HELLO, P.K_SERVER: "A"})) == 401
    assert s.principal is None


_WORKSPACE = bytearray(P.MAX_FRAME)  # made at import, while the heap is in one piece


def test_rule_status_403_forbidden_by_policy_not_acl():
    # Acting for another ServerID is policy: refused on a plain link whatever the ACLs say.
    from agent import cbor, frame
    from agent.session import Session

    t, d = _agent(accounts=("A",))  # one account: room for the session's frame buffers at 110k
    s = Session(d, "t", insecure=True)
    s.workspace = _WORKSPACE  # as a link lends its receive buffer (none left in one piece by now)
    s.hello("A")
    out = s.on_frame(P.KIND_PLAIN, cbor.dumps({P.K_ID: 3, P.K_OP: P.OP_GET, P.K_URI: "./T/L",
                                               P.K_FOR: "A"}))
    dec = frame.FrameDecoder()
    replies = [cbor.loads(bytes(body)) for kind, body in dec.feed(bytes(out))]
    dec.close()
    assert len(replies) == 1 and replies[0][P.K_STATUS] == 403


def test_rule_status_404_not_found():
    t, d = _agent()
    assert del_st("A", "./T/Nope") == 404
    assert get_st("A", "./T/L/below") == 404


def test_rule_status_405_command_not_allowed():
    t, d = _agent()
    assert rep_st("A", "./T/N", 1) == 405
    assert exec_st("A", "./T/L") == 405  # nothing to execute
    assert rep_st("A", "./DevInfo/DevId", "x") == 405  # read-only


def test_rule_status_406_optional_feature_not_supported():
    t, d = _agent()
    assert get_st("A", "./T?prop=VerNo") == 406
    assert d.handle(_As("A"), {P.K_OP: 99, P.K_URI: "."})[P.K_STATUS] == 406


def test_rule_status_413_too_large():
    t, d = _agent()
    t.limits["max_value"] = 8
    assert add_st("A", "./T/big", "123456789") == 413
    assert add_st("A", "./T/ok", "12345678") == 200
    assert rep_st("A", "./T/ok", "123456789") == 413
    assert t.value("./T/ok") == "12345678"


def test_rule_status_414_uri_too_long():
    t, d = _agent({"max_seg_len": 4})
    assert get_st("A", "./T/abcde") == 414


def test_rule_status_415_unsupported_format():
    t, d = _agent()
    assert add_st("A", "./T/x", 1, "hex") == 415
    assert add_st("A", "./T/x", [1, 2]) == 415  # no format for an array


def test_rule_status_418_already_exists():
    t, d = _agent()
    assert add_st("A", "./T/L", 1) == 418
    # ServerID values are unique
    assert rep_st("B", "./DMAcc/B/ServerID", "A") == 418
    assert t.value("./DMAcc/B/ServerID") == "B"


def test_rule_status_420_device_full():
    t, d = _agent()
    t.limits["max_nodes"] = t.node_count() + 1
    assert add_st("A", "./T/one", 1) == 200
    assert add_st("A", "./T/two", 1) == 420
    assert not t.exists("./T/two")


def _run_out_of_heap(tree, method, times):
    """tree.method raises MemoryError the first `times` calls, as a full heap would."""
    real = getattr(tree, method)
    left = [times]

    def failing(*args):
        if left[0]:
            left[0] -= 1
            raise MemoryError()
        return real(*args)

    setattr(tree, method, failing)
    return left


def test_rule_status_420_out_of_heap_is_tried_once_more_on_a_collected_heap():
    t, d = _agent()
    _run_out_of_heap(t, "add", 1)
    assert add_st("A", "./T/once", 1) == 200  # the second try had the heap
    left = _run_out_of_heap(t, "add", 2)
    assert add_st("A", "./T/twice", 1) == 420 and left[0] == 0
    assert not t.exists("./T/twice")
    del t.add


def test_rule_status_420_out_of_heap_never_runs_an_exec_twice():
    t, d = _agent()
    ran = []

    def handler(tree, who, data):
        ran.append(1)
        raise MemoryError()

    t.on_exec("./T/N", handler)
    t.set_acl("./T/N", "Exec=A")
    assert exec_st("A", "./T/N") == 420
    assert len(ran) == 1


def test_rule_status_420_out_of_heap_in_a_sequence_item_is_not_tried_again():
    # The items before it are done and persisted: the item answers 420 at once, the rest 215.
    t, d = _agent()
    left = _run_out_of_heap(t, "add", 1)
    items = [{P.K_OP: P.OP_ADD, P.K_URI: "./T/s%d" % i, P.K_VALUE: i} for i in range(2)]
    resp = d.handle(_As("A"), {P.K_OP: P.OP_SEQUENCE, P.K_ITEMS: items})
    statuses = [item[P.K_STATUS] for item in resp[P.K_ITEMS]]
    assert statuses == [420, P.S_NOT_EXECUTED] and left[0] == 0, resp
    assert resp[P.K_ITEMS][0][P.K_MSG] == "device out of memory"
    assert not t.exists("./T/s0") and not t.exists("./T/s1")
    del t.add


def test_rule_status_425_permission_denied():
    t, d = _agent()
    assert rep_st("B", "./T/L", 1) == 425
    assert t.value("./T/L") == 5


def test_rule_status_500_command_failed():
    t, d = _agent()

    def boom(tree, who, data):
        raise ValueError("board failure")

    t.on_exec("./T/N", boom)
    t.set_acl("./T/N", "Exec=A")
    assert exec_st("A", "./T/N") == 500
    assert get_st("A", "./T/L") == 200  # still serving


# --- Which status wins: 425 vs 400 ---------------------------------------------------------------------


def test_rule_order_malformed_uri_400_before_permission_425():
    t, d = _agent()
    for uri in ("./T//L", "./T/L/", "./T/%zz", "./T/../T", "./T?prop=", "./T?list="):
        assert get_st("B", uri) == 400, uri
        assert rep_st("B", uri, 1) == 400, uri
        assert del_st("B", uri) == 400, uri
        assert add_st("B", uri, 1) == 400, uri


def test_rule_order_permission_425_before_malformed_acl_400():
    t, d = _agent()
    assert rep_st("B", "./T/N?prop=ACL", "Get=") == 425  # the ACL says no first
    assert rep_st("B", "./T/N?prop=ACL", "Get=*+B") == 425
    assert rep_st("A", "./T/N?prop=ACL", "Get=") == 400  # then the value is checked
    assert rep_st("B", "./T/L", "not an int") == 425
    assert rep_st("A", "./T/L", "not an int") == 415
    assert add_st("B", "./T/x", 1, "hex") == 425
    assert add_st("A", "./T/x", 1, "hex") == 415


def test_rule_order_existence_404_and_405_before_permission_425():
    t, d = _agent()
    assert get_st("B", "./T/Nope") == 404
    assert add_st("B", "./T/Nope/x", 1) == 404
    assert rep_st("B", "./T/N", "x") == 405
    assert rep_st("B", "./T/L?prop=Format", "chr") == 405
    assert get_st("B", "./T/L?prop=VerNo") == 406
