"""Rules: the root's ACL is replaced only by a principal with Replace on the root (it has no
parent to grant it); and deleting a DM account takes its ServerID out of every ACL, while a
ServerID leaf deeper in an account's subtree names no account. Through Tree's public calls,
as the dispatcher makes them. Plain asserts.
"""

from agent import proto as P
from agent.errors import DMError
from agent.tree import Tree
from tests.agent.check import raises


def test_rule_the_roots_acl_is_replaced_only_with_replace_on_the_root():
    t = Tree()
    t.put(".", fmt="node", acl="Add=*&Get=*&Replace=A")
    e = raises(DMError, t.replace, "B", ".?prop=ACL", "Add=*&Get=*&Replace=B")
    assert e.status == P.S_PERMISSION_DENIED, e
    t.replace("A", ".?prop=ACL", "Add=*&Get=*&Replace=A+B")
    t.replace("B", ".?prop=ACL", "Add=*&Get=*&Replace=B")


def _accounts():
    t = Tree()
    t.put(".", fmt="node", acl="Add=*&Delete=*&Get=*&Replace=*")
    t.put("./DMAcc", fmt="node")
    for name, sid in (("a", "SrvA"), ("b", "SrvB")):
        t.put("./DMAcc/" + name, fmt="node")
        t.put("./DMAcc/%s/ServerID" % name, sid, "chr")
    t.put("./X", 1, "int", acl="Get=SrvA+SrvB&Replace=SrvA")
    return t


def test_rule_deleting_an_account_takes_its_server_id_out_of_every_acl():
    t = _accounts()
    t.delete("SrvB", "./DMAcc/a")
    assert t.get("SrvB", "./X?prop=ACL")[0] == "Get=SrvB"  # Replace, emptied, is gone with it


def test_rule_a_server_id_leaf_below_an_account_names_no_account():
    t = _accounts()
    t.put("./DMAcc/b/Sub", fmt="node")
    t.put("./DMAcc/b/Sub/ServerID", "SrvA", "chr")  # not ./DMAcc/<x>/ServerID: no account's id
    t.delete("SrvB", "./DMAcc/b/Sub")
    assert t.get("SrvB", "./X?prop=ACL")[0] == "Get=SrvA+SrvB&Replace=SrvA"
