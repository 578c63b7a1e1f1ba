"""One test per rule of shared/design/omadm-rules.md, named after the rule: which right each command needs, the creator exception, DMAcc clean-up, secrets.

Every test drives the agent as a DM server would: request maps of agent.proto keys through
agent.dispatch.Dispatcher, on a Tree seeded with the standard objects (agent.mo), so the
status codes checked are the ones a server gets back. Runs under CPython (pytest) and under
the MicroPython device runtime with a 110k heap (tools/mpytest tests.agent.test_acl_permissions):
small trees, plain asserts.
"""


from agent import mo  # noqa: F401
from agent import proto as P  # noqa: F401
from agent.dispatch import Dispatcher  # noqa: F401
from agent.tree import Tree  # noqa: F401
from tests.agent.acl_fixture import (  # noqa: F401
    _NO, T_ACL, _As, _D, _aclq, _agent, _check, _do, _get, _own, _st, add_st, del_st, exec_st, get_st, rep_st, val,
)


# --- Which right is needed for what ------------------------------------------------------------------


def test_rule_get_value_child_list_or_property_needs_get_425():
    t, d = _agent()
    for uri in ("./T", "./T/L", "./T/N", "./T/N/X", "./T?prop=ACL", "./T/L?prop=Format",
                "./T/L?prop=Size", "./T/N?prop=Name", "./T/N/X?prop=Title", "./T?list=Struct"):
        assert get_st("A", uri) == 200, uri
        assert get_st("B", uri) == 425, uri


def test_rule_replace_leaf_value_needs_replace_on_leaf_425():
    t, d = _agent()
    t.put("./T/R", 1, "int", acl="Replace=B")
    assert rep_st("B", "./T/R", 2) == 200
    assert rep_st("A", "./T/R", 3) == 425  # Replace on the parent is not enough
    assert t.value("./T/R") == 2
    assert rep_st("A", "./T/L", 6) == 200
    assert rep_st("B", "./T/L", 7) == 425
    assert t.value("./T/L") == 6


def test_rule_replace_interior_node_value_is_405():
    t, d = _agent()
    assert rep_st("A", "./T/N", "x") == 405
    assert rep_st("B", "./T/N", "x") == 405  # whatever the ACL
    assert rep_st("A", ".", "x") == 405


def test_rule_exec_needs_exec_on_node_425():
    t, d = _agent()  # ./DevDetail/Ext/Echo: Exec=A+B&Get=*
    r = _do("A", P.OP_EXEC, "./DevDetail/Ext/Echo", "ping")
    assert _st(r) == 200 and r[P.K_VALUE] == "ping"
    assert exec_st("B", "./DevDetail/Ext/Echo") == 200
    assert exec_st("C", "./DevDetail/Ext/Echo") == 425
    t.on_exec("./T/L", lambda tree, who, data: (200, who))
    assert exec_st("A", "./T/L") == 425  # ./T has no Exec entry
    t.set_acl("./T/L", "Exec=B")
    assert _do("B", P.OP_EXEC, "./T/L")[P.K_VALUE] == "B"
    assert exec_st("A", "./T/L") == 425


def test_rule_add_needs_add_on_parent_425():
    t, d = _agent()
    assert add_st("B", "./T/New", 1) == 425
    assert not t.exists("./T/New")
    assert add_st("A", "./T/New", 1) == 200
    t.put("./T/New2", fmt="node", acl="Add=B")
    assert add_st("B", "./T/New2/x", 1) == 200
    assert add_st("A", "./T/New2/y", 1) == 425


def test_rule_add_parent_must_exist_404():
    t, d = _agent()
    assert add_st("A", "./T/Missing/x", 1) == 404
    assert add_st("A", "./Nowhere/x", None, "node") == 404
    assert not t.exists("./T/Missing")


def test_rule_add_parent_must_be_interior_405():
    t, d = _agent()
    assert add_st("A", "./T/L/x", 1) == 405
    assert add_st("B", "./T/L/x", 1) == 405


def test_rule_add_where_node_exists_is_418():
    t, d = _agent()
    assert add_st("A", "./T/L", 9) == 418
    assert add_st("A", "./T/N", None, "node") == 418
    assert add_st("B", "./T/L", 9) == 418  # "Needs: —", whatever the ACL
    assert add_st("A", ".", None, "node") == 418
    assert t.value("./T/L") == 5


def test_rule_replace_acl_of_interior_node_needs_replace_on_node_or_parent():
    t, d = _agent()
    t.put("./T/I", fmt="node", acl="Get=*&Replace=B")
    t.put("./T/I/J", fmt="node")
    assert rep_st("B", "./T/I?prop=ACL", "Get=*&Replace=B") == 200  # on the node itself
    assert rep_st("A", "./T/I?prop=ACL", "Get=*&Replace=B+C") == 200  # on its parent
    assert _own(t, "./T/I") == "Get=*&Replace=B+C"
    assert rep_st("D", "./T/I?prop=ACL", "Get=*") == 425
    # ./T/I/J inherits Replace=B+C (itself); its parent ./T/I grants it too
    assert rep_st("C", "./T/I/J?prop=ACL", "Get=C") == 200
    assert rep_st("A", "./T/I/J?prop=ACL", "") == 425  # A: neither node nor parent
    assert _own(t, "./T/I/J") == "Get=C"
    assert _check("A", "A", "Replace", "./T/I?prop=ACL") == (True, "./T")
    assert _check("A", "D", "Replace", "./T/I?prop=ACL")[0] is False


def test_rule_replace_acl_of_leaf_needs_replace_on_parent_not_leaf():
    t, d = _agent()
    t.put("./T/Lf", 1, "int", acl="Get=*&Replace=B")
    assert rep_st("B", "./T/Lf", 2) == 200  # B may replace the value...
    assert rep_st("B", "./T/Lf?prop=ACL", "Get=*&Replace=B+C") == 425  # ...not the ACL
    assert rep_st("A", "./T/Lf?prop=ACL", "Get=*&Replace=C") == 200  # Replace on ./T
    assert _own(t, "./T/Lf") == "Get=*&Replace=C"
    assert _check("B", "B", "Replace", "./T/Lf?prop=ACL") == (False, "./T")
    assert _check("A", "A", "Replace", "./T/Lf?prop=ACL") == (True, "./T")


def test_rule_delete_needs_delete_on_node_and_every_node_below():
    t, d = _agent()
    t.put("./T/N/Y", 1, "int", acl="Get=A")  # no Delete below ./T/N
    assert del_st("A", "./T/N") == 425
    assert t.exists("./T/N") and t.exists("./T/N/X")
    assert _check("A", "A", "Delete", "./T/N") == (False, "./T/N/Y")
    assert del_st("A", "./T/N/X") == 200  # inherits Delete=A from ./T
    assert del_st("A", "./T/N/Y") == 425
    t.set_acl("./T/N/Y", "Delete=A")
    assert _check("A", "A", "Delete", "./T/N") == (True, "./T")
    assert del_st("A", "./T/N") == 200
    assert not t.exists("./T/N") and not t.exists("./T/N/Y")
    # Delete on the node is needed too, even when everything below grants it
    t.put("./T/M", fmt="node", acl="Get=A")
    t.put("./T/M/Z", 1, "int", acl="Delete=A")
    assert del_st("A", "./T/M") == 425
    assert del_st("B", "./T/L") == 425
    assert del_st("A", "./T/Missing") == 404


def test_rule_delete_root_and_permanent_nodes_405():
    t, d = _agent()
    t.set_acl(".", "Add=*&Delete=*&Get=*")
    assert del_st("A", ".") == 405
    for uri in ("./DevInfo", "./DevInfo/DevId", "./DevDetail/URI", "./DMAcc"):
        assert del_st("A", uri) == 405, uri
        assert t.exists(uri)
    # a permanent node below makes its ancestor undeletable too
    t.put("./T/P", 1, "int", flags=1)
    assert del_st("A", "./T") == 405
    assert t.exists("./T/P")


def test_rule_rename_needs_replace_on_node_425_sibling_taken_418():
    t, d = _agent()
    assert rep_st("B", "./T/L?prop=Name", "M") == 425
    assert rep_st("A", "./T/L?prop=Name", "N") == 418
    assert rep_st("A", "./T/L?prop=Name", "M") == 200
    assert not t.exists("./T/L") and t.value("./T/M") == 5
    t.put("./T/R", 1, "int", acl="Replace=B")
    assert rep_st("B", "./T/R?prop=Name", "R2") == 200  # Replace on the node itself
    assert rep_st("A", "./T/M?prop=Name", "..") == 400
    assert rep_st("A", "./DevInfo?prop=Name", "Info") == 405  # permanent


def test_rule_effective_acl_query_needs_get_on_node_425():
    t, d = _agent()
    assert _aclq("B", "./T") == 425
    assert _aclq("B", "./T/N/X") == 425
    t.set_acl("./T/N", "Get=B")
    assert _aclq("B", "./T/N/X") == ("", "Get=B", "./T/N")
    assert _aclq("A", "./T/N/X") == 425


def test_rule_permission_check_needs_nothing_for_self_get_for_others():
    t, d = _agent()
    # B may always ask about itself, even where it may not Get
    assert _check("B", "B", "Get", "./T/L") == (False, "./T")
    assert _check("B", "B", "Replace", "./T/N/X") == (False, "./T")
    # about another principal it needs Get on the URI
    assert _check("B", "A", "Get", "./T/L") == 425
    assert _check("A", "B", "Get", "./T/L") == (False, "./T")
    assert _check("A", "A", "Add", "./T/New") == (True, "./T")  # Add: on the parent
    t.set_acl("./T/L", "Exec=B")
    assert _check("A", "B", "Exec", "./T/L") == 425  # A has no Get on ./T/L now
    assert _check("B", "B", "Exec", "./T/L") == (True, "./T/L")
    assert _check("A", "A", "Fly", "./T/L") == 400


# --- A newly added node, and the creator exception -----------------------------------------------------


def test_rule_new_node_gets_empty_acl():
    t, d = _agent()
    assert add_st("A", "./T/Leaf", 1) == 200
    assert add_st("A", "./T/Inner", None, "node") == 200  # A holds Replace on ./T
    assert _own(t, "./T/Leaf") == "" and _own(t, "./T/Inner") == ""
    assert _aclq("A", "./T/Inner") == ("", T_ACL, "./T")


def test_rule_creator_gets_full_acl_on_new_interior_node():
    t, d = _agent()
    # the root grants Add=* but no Replace: C could not manage what it made
    assert add_st("C", "./Mine", None, "node") == 200
    assert _own(t, "./Mine") == "Add=C&Delete=C&Replace=C"
    assert add_st("C", "./Mine/x", 1) == 200
    assert rep_st("C", "./Mine/x", 2) == 200
    assert rep_st("C", "./Mine?prop=ACL", "Add=C&Delete=C&Get=C&Replace=C") == 200
    assert get_st("C", "./Mine/x") == 200
    assert add_st("D", "./Mine/y", 1) == 425
    assert del_st("C", "./Mine") == 200
    # the same under a node where the adder has Add but not Replace
    t.put("./T/Open", fmt="node", acl="Add=B")
    assert add_st("B", "./T/Open/Sub", None, "node") == 200
    assert _own(t, "./T/Open/Sub") == "Add=B&Delete=B&Replace=B"


def test_rule_creator_exception_not_when_creator_has_replace_on_parent():
    t, d = _agent()
    assert add_st("A", "./T/Sub", None, "node") == 200
    assert _own(t, "./T/Sub") == ""  # A already manages it through ./T


def test_rule_creator_exception_is_for_interior_nodes_only_leaves_keep_empty_acl():
    t, d = _agent()
    assert add_st("C", "./MyLeaf", 1) == 200
    assert _own(t, "./MyLeaf") == ""
    assert _aclq("C", "./MyLeaf") == ("", "Add=*&Get=*", ".")


# --- DMAcc deletion clean-up ---------------------------------------------------------------------------


def test_rule_dmacc_deletion_removes_its_id_from_every_acl():
    t, d = _agent(accounts=("A", "B", "AB"))
    t.set_acl("./T", "Add=A&Delete=A&Get=A+AB+B&Replace=B+A")
    t.set_acl("./T/N", "Get=AB&Exec=B+A")
    assert del_st("A", "./DMAcc/A") == 200
    assert not t.exists("./DMAcc/A")
    assert _own(t, "./T") == "Get=AB+B&Replace=B"  # Add and Delete had only A: dropped
    assert _own(t, "./T/N") == "Exec=B&Get=AB"  # AB is another id, whole-id match
    assert _own(t, "./DevDetail/Ext/Echo") == "Exec=B+AB&Get=*"
    assert _own(t, "./DMAcc") == "Get=B+AB"
    assert get_st("A", "./T/N/X") == 425


def test_rule_dmacc_deletion_command_left_with_no_id_dropped_empty_acl_inherits():
    t, d = _agent()
    t.set_acl("./T/N", "Get=B&Replace=B")
    t.set_acl("./T/L", "Replace=B")
    assert del_st("B", "./DMAcc/B") == 200
    assert _own(t, "./T/N") == ""  # every command emptied: the ACL inherits
    assert _own(t, "./T/L") == ""
    assert _aclq("A", "./T/N/X") == ("", T_ACL, "./T")
    assert get_st("A", "./T/N/X") == 200


def test_rule_dmacc_deletion_root_command_emptied_becomes_star():
    t, d = _agent()
    t.set_acl(".", "Add=*&Get=*&Replace=B&Delete=A+B")
    assert del_st("B", "./DMAcc/B") == 200
    assert _own(t, ".") == "Add=*&Delete=A&Get=*&Replace=*"  # Delete keeps A
    assert del_st("A", "./DMAcc/A") == 200
    assert _own(t, ".") == "Add=*&Delete=*&Get=*&Replace=*"


# --- Secrets ------------------------------------------------------------------------------------------


def test_rule_secrets_are_write_only_get_405_whatever_the_acl():
    t, d = _agent(accounts=("A",), auth=True)
    secret = "./DMAcc/A/AppAuth/Srv/AAuthSecret"
    assert get_st("A", "./DMAcc/A/AppAuth/Srv/AAuthName") == 200
    t.set_acl(secret, "Get=*&Replace=A")
    assert get_st("A", secret) == 405
    assert get_st("A", secret + "?prop=Size") == 405
    assert get_st("A", secret + "?prop=Format") == 200  # metadata, not the secret
    assert [secret, None, "chr"] in val("A", "./DMAcc/A/AppAuth/Srv?list=StructData")
    assert rep_st("A", secret, "new") == 200  # write-only: Replace works
    assert t.value(secret) == "new"
    # a secret a server adds is write-only too
    assert add_st("A", "./DMAcc/A/AppAuth/Two", None, "node") == 200
    assert add_st("A", "./DMAcc/A/AppAuth/Two/AAuthSecret", "k2") == 200
    assert get_st("A", "./DMAcc/A/AppAuth/Two/AAuthSecret") == 405
