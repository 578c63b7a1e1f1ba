"""One test per rule of shared/design/omadm-rules.md, named after the rule: tree and URIs, properties, formats, ACL syntax, inheritance.

Every test drives the agent as a DM server would: request maps of agent.proto keys through
agent.dispatch.Dispatcher, on a Tree seeded with the standard objects (agent.mo), so the
status codes checked are the ones a server gets back. Runs under CPython (pytest) and under
the MicroPython device runtime with a 110k heap (tools/mpytest tests.agent.test_acl_rules):
small trees, plain asserts.
"""


from agent import mo  # noqa: F401
from agent import proto as P  # noqa: F401
from agent.dispatch import Dispatcher  # noqa: F401
from agent.tree import Tree  # noqa: F401
from tests.agent.acl_fixture import (  # noqa: F401
    _NO, T_ACL, _As, _D, _aclq, _agent, _check, _do, _get, _own, _st, add_st, del_st, exec_st, get_st, rep_st, val,
)


# --- Tree and URIs ---------------------------------------------------------------------------


def test_rule_tree_root_is_dot_and_interior():
    t, d = _agent()
    r = _get("A", ".")
    assert _st(r) == 200 and r[P.K_FORMAT] == "node"
    assert sorted(r[P.K_VALUE]) == ["DMAcc", "DevDetail", "DevInfo", "T"]
    assert val("A", ".?prop=Format") == "node"
    r = _get("A", "./T/L")
    assert r[P.K_VALUE] == 5 and r[P.K_FORMAT] == "int"


def test_rule_uri_relative_and_dot_slash_are_the_same_uri():
    t, d = _agent()
    assert val("A", "./T/L") == val("A", "T/L") == 5
    assert add_st("A", "T/New", 1) == 200
    assert add_st("A", "./T/New", 1) == 418
    assert val("A", "./%54/%4C") == 5  # %XX escapes: the same node


def test_rule_uri_never_ends_in_slash():
    t, d = _agent()
    for uri in ("./T/", "T/", "./", "./T/L/"):
        assert get_st("A", uri) == 400, uri
    assert add_st("A", "./T/New/", 1) == 400
    assert not t.exists("./T/New")


def test_rule_uri_no_dot_or_dotdot_segments_after_leading_dot_slash():
    t, d = _agent()
    for uri in ("./T/./L", "./T/../T/L", "./.", "./..", "..", "T/.", "./T/N/.."):
        assert get_st("A", uri) == 400, uri
    assert add_st("A", "./T/..", 1) == 400


def test_rule_uri_no_empty_segment():
    t, d = _agent()
    for uri in ("./T//L", "/T", "//", "T//", ".//T", ""):
        assert get_st("A", uri) == 400, uri


def test_rule_uri_percent_escapes_must_be_valid_hex():
    t, d = _agent()
    for uri in ("./T/%", "./T/%4", "./T/%zz", "./T/%4G", "./T/L%"):
        assert get_st("A", uri) == 400, uri
        assert add_st("A", uri, 1) == 400, uri
    # a valid escape is a character of the name (a '/' is not: TND 6, test_tree_rules.py)
    assert add_st("A", "./T/a%25b", 1) == 200
    assert val("A", "./T/a%25b") == 1
    assert "a%b" in val("A", "./T")


def test_rule_uri_limits_published_in_devdetail_uri():
    t, d = _agent({"max_depth": 4, "max_tot_len": 30, "max_seg_len": 9})
    assert val("A", "./DevDetail/URI/MaxDepth") == 4
    assert val("A", "./DevDetail/URI/MaxTotLen") == 30
    assert val("A", "./DevDetail/URI/MaxSegLen") == 9
    assert val("A", "./DevDetail/URI/MaxDepth?prop=Format") == "int"
    # the limits are the device's: no server changes them
    assert rep_st("A", "./DevDetail/URI/MaxDepth", 10) in (405, 425)


def test_rule_uri_max_depth_broken_is_414():
    t, d = _agent({"max_depth": 4})
    assert add_st("A", "./T/N/Y", fmt="node") == 200  # depth 3
    assert add_st("A", "./T/N/Y/Z", 1) == 200  # depth 4
    assert add_st("A", "./T/N/Y/Z2/W", 1) == 414  # depth 5
    assert get_st("A", "./T/N/Y/Z/W") == 414  # before 404
    assert get_st("B", "./T/N/Y/Z/W") == 414  # before 425


def test_rule_uri_max_tot_len_broken_is_414():
    t, d = _agent({"max_tot_len": 12})
    assert add_st("A", "./T/abcdefg", 1) == 200  # "./T/abcdefg": 11
    assert add_st("A", "./T/abcdefgh", 1) == 200  # 12
    assert add_st("A", "./T/abcdefghi", 1) == 414  # 13
    assert add_st("A", "T/abcdefghi", 1) == 414  # counted in canonical form
    # an escape counts as the three characters it takes in the canonical URI
    assert add_st("A", "./T/ab%25defg", 1) == 414


def test_rule_uri_max_seg_len_broken_is_414():
    t, d = _agent({"max_seg_len": 5})
    assert add_st("A", "./T/abcde", 1) == 200
    assert add_st("A", "./T/abcdef", 1) == 414
    assert get_st("A", "./T/abcdef") == 414
    # renaming past the limit is 414 too
    assert rep_st("A", "./T/abcde?prop=Name", "abcdef") == 414


def test_rule_uri_limit_zero_is_unlimited():
    t, d = _agent({"max_tot_len": 0, "max_seg_len": 0})
    assert val("A", "./DevDetail/URI/MaxSegLen") == 0
    assert val("A", "./DevDetail/URI/MaxTotLen") == 0
    name = "n" * 300
    assert add_st("A", "./T/" + name, 1) == 200
    assert val("A", "./T/" + name) == 1


# --- Properties --------------------------------------------------------------------------------


def test_rule_properties_addressed_as_uri_prop_name():
    t, d = _agent()
    t.put("./T/L", 5, "int", acl="Get=A", title="five")
    want = {"ACL": "Get=A", "Format": "int", "Name": "L", "Size": 1, "Title": "five",
            "Type": "text/plain"}
    for prop in want:
        r = _get("A", "./T/L?prop=" + prop)
        assert _st(r) == 200 and r[P.K_VALUE] == want[prop], prop
    assert val("A", "./T?prop=Name") == "T"
    assert _get("A", ".?prop=Name")[P.K_STATUS] == 200


def test_rule_properties_acl_format_name_type_are_mandatory_on_every_node():
    t, d = _agent()
    for uri in (".", "./T", "./T/L", "./T/N", "./T/N/X", "./DevInfo/DevId"):
        for prop in ("ACL", "Format", "Name", "Type"):
            r = _get("A", uri + "?prop=" + prop)
            assert _st(r) == 200, (uri, prop)
            assert type(r[P.K_VALUE]) is str, (uri, prop)
    assert val("A", "./T/N?prop=ACL") == ""  # present, and empty


def test_rule_property_size_is_for_leaves_only():
    t, d = _agent()
    t.put("./T/S", "h\u00e9llo", "chr")
    assert val("A", "./T/S?prop=Size") == 6  # UTF-8 bytes
    assert get_st("A", "./T/N?prop=Size") == 406


def test_rule_property_unsupported_is_406():
    t, d = _agent()
    for prop in ("TStamp", "VerNo", "Color", "acl"):
        assert get_st("A", "./T/L?prop=" + prop) == 406, prop
        assert rep_st("A", "./T/L?prop=" + prop, "x") == 406, prop


def test_rule_property_only_acl_name_title_take_replace_405():
    t, d = _agent()
    for prop in ("Format", "Size", "Type"):
        assert rep_st("A", "./T/L?prop=" + prop, "chr") == 405, prop
    assert rep_st("A", "./T/L?prop=Title", "t") == 200
    assert rep_st("A", "./T/L?prop=Name", "L2") == 200
    assert rep_st("A", "./T/L2?prop=ACL", "Get=A") == 200
    assert val("A", "./T/L2?prop=Title") == "t"
    assert val("A", "./T/L2?prop=ACL") == "Get=A"


def test_rule_property_other_commands_on_a_property_405():
    t, d = _agent()
    for prop in ("ACL", "Name", "Title", "Format"):
        uri = "./T/L?prop=" + prop
        assert add_st("A", uri, "x") == 405, prop
        assert del_st("A", uri) == 405, prop
        assert exec_st("A", uri) == 405, prop
    assert t.exists("./T/L")


# --- Formats -----------------------------------------------------------------------------------


def test_rule_formats_are_the_oma_dm_set():
    t, d = _agent()
    samples = (("b64", b"\x00\x01"), ("bin", b"\xff"), ("bool", True), ("chr", "text"),
               ("int", -7), ("null", None), ("xml", "<a/>"), ("date", "2024-05-31"),
               ("time", "12:30:00Z"), ("float", 1.5))
    for fmt, value in samples:
        assert add_st("A", "./T/f_" + fmt, value, fmt) == 200, fmt
        r = _get("A", "./T/f_" + fmt)
        assert r[P.K_FORMAT] == fmt and r[P.K_VALUE] == value, fmt
        assert val("A", "./T/f_" + fmt + "?prop=Format") == fmt
    assert add_st("A", "./T/f_node", None, "node") == 200
    assert val("A", "./T/f_node?prop=Format") == "node"


def test_rule_formats_unknown_or_mismatched_is_415():
    t, d = _agent()
    assert add_st("A", "./T/a", "x", "string") == 415
    assert add_st("A", "./T/b", "3", "int") == 415  # numbers travel as numbers
    assert add_st("A", "./T/c", "2024/05/31", "date") == 415
    assert add_st("A", "./T/d", 1, "bool") == 415
    assert rep_st("A", "./T/L", "6") == 415  # the leaf keeps its format
    assert val("A", "./T/L") == 5
    for name in ("a", "b", "c", "d"):
        assert not t.exists("./T/" + name)


def test_rule_get_interior_returns_child_names_as_array():
    t, d = _agent()
    r = _get("A", "./T")
    assert _st(r) == 200 and r[P.K_FORMAT] == "node"
    assert type(r[P.K_VALUE]) is list and sorted(r[P.K_VALUE]) == ["L", "N"]
    assert val("A", "./T/N") == ["X"]


def test_rule_list_struct_returns_only_nodes_requester_may_get():
    t, d = _agent()
    t.set_acl("./T/N", "Get=B")
    t.put("./T/N/Y", 1, "int", acl="Get=A")
    r = _get("A", "./T?list=Struct")
    assert _st(r) == 200
    assert r[P.K_VALUE] == ["./T", "./T/L", "./T/N/Y"]
    r = _get("B", "./T/N?list=Struct")
    assert r[P.K_VALUE] == ["./T/N", "./T/N/X"]
    assert get_st("B", "./T?list=Struct") == 425  # a Get of ./T itself


def test_rule_list_structdata_returns_names_and_leaf_values_only_where_get():
    t, d = _agent()
    t.set_acl("./T/N", "Get=B")
    r = _get("A", "./T?list=StructData")
    assert _st(r) == 200
    assert r[P.K_VALUE] == [["./T", None, "node"], ["./T/L", 5, "int"]]
    r = _get("B", "./T/N?list=StructData")
    assert r[P.K_VALUE] == [["./T/N", None, "node"], ["./T/N/X", "x", "chr"]]


# --- ACL syntax ----------------------------------------------------------------------------------


def test_rule_acl_syntax_well_formed_acls_are_accepted():
    t, d = _agent()
    for acl in ("", "Get=*", "Add=A&Delete=A&Exec=A&Get=A&Replace=A", "Get=A+B+C",
                "Replace=srv.example.com:8080/dm&Get=*", "Exec=a!#$%'()-./:;<>?@[]^_`{|}~"):
        assert rep_st("A", "./T/N?prop=ACL", acl) == 200, acl
        # the agent keeps it in canonical order; the rights are the same
        got = _own(t, "./T/N")
        assert sorted(got.split("&")) == sorted(acl.split("&")) if acl else got == "", acl


def test_rule_acl_star_means_every_principal_and_stands_alone():
    t, d = _agent()
    t.set_acl("./T/N", "Get=*")
    for who in ("A", "B", "anyone", "Z9"):
        assert get_st(who, "./T/N/X") == 200, who
    for acl in ("Get=*+A", "Get=A+*", "Get=A*", "Get=**"):
        assert rep_st("A", "./T/N?prop=ACL", acl) == 400, acl
    assert _own(t, "./T/N") == "Get=*"


def test_rule_acl_command_with_no_ids_is_malformed():
    t, d = _agent()
    for acl in ("Get=", "Get=&Add=A", "Add=A&Get=", "Get=A+", "Get=+A", "Get=A++B"):
        assert rep_st("A", "./T/N?prop=ACL", acl) == 400, acl


def test_rule_acl_malformed_refused_400_and_changes_nothing():
    t, d = _agent()
    t.set_acl("./T/N", "Get=B")
    bad = ("Get", "get=A", "Read=A", "Get=A&", "&Get=A", "Get=A B", "Get=A\tB", "Get =A",
           "Get==A", "Get=A=B", "Get=A&&Add=A", "Get=\u00e9", "Get=A\x7f", "=A")
    for acl in bad:
        assert rep_st("A", "./T/N?prop=ACL", acl) == 400, acl
        assert _own(t, "./T/N") == "Get=B", acl
    assert rep_st("A", "./T/N?prop=ACL", 5) in (400, 415)  # not text at all
    assert _own(t, "./T/N") == "Get=B"


def test_rule_acl_repeated_command_is_one_entry_with_all_ids():
    # The grammar (entry ("&" entry)*) allows a command twice; its ids add up.
    t, d = _agent()
    assert rep_st("A", "./T/N?prop=ACL", "Get=B&Replace=A&Get=C") == 200
    assert get_st("B", "./T/N/X") == 200
    assert get_st("C", "./T/N/X") == 200
    assert rep_st("A", "./T/N?prop=ACL", "Get=*&Get=B") == 400  # '*' stands alone


def test_rule_acl_matching_is_by_whole_identifier():
    t, d = _agent()
    t.set_acl("./T/N", "Get=ServerAB")
    assert get_st("ServerAB", "./T/N/X") == 200
    for who in ("ServerA", "Server", "erverAB", "ServerABC", "B"):
        assert get_st(who, "./T/N/X") == 425, who
    t.set_acl("./T/N", "Get=ServerAB+ServerA")
    assert get_st("ServerA", "./T/N/X") == 200
    assert get_st("Server", "./T/N/X") == 425
    assert get_st("rverA", "./T/N/X") == 425
    t.set_acl("./T/N", "Get=xA+Ax&Replace=A")
    assert get_st("A", "./T/N/X") == 425
    assert _check("A", "A", "Get", "./T/N") == (False, "./T/N")


# --- Inheritance -----------------------------------------------------------------------------------


def test_rule_acl_every_node_has_an_acl_property_maybe_empty():
    t, d = _agent()
    assert val("A", "./T?prop=ACL") == T_ACL
    assert val("A", "./T/L?prop=ACL") == ""
    assert add_st("A", "./T/New", 1) == 200
    assert val("A", "./T/New?prop=ACL") == ""


def test_rule_acl_inherited_from_nearest_ancestor_with_acl():
    t, d = _agent()
    t.put("./T/N/Y", fmt="node")
    t.put("./T/N/Y/Z", 1, "int")
    assert get_st("A", "./T/N/Y/Z") == 200  # from ./T, three levels up
    assert _aclq("A", "./T/N/Y/Z") == ("", T_ACL, "./T")
    t.set_acl("./T/N", "Get=A+B")
    assert get_st("B", "./T/N/Y/Z") == 200  # now from ./T/N, the nearest
    assert _aclq("B", "./T/N/Y/Z") == ("", "Get=A+B", "./T/N")
    assert get_st("B", "./T/L") == 425  # still ./T's


def test_rule_acl_inheritance_is_all_or_nothing_never_per_command():
    t, d = _agent()
    t.set_acl("./T/N", "Get=B")  # no Replace, no Add, no Delete here
    # ./T grants A everything, but ./T/N's own ACL wins whole: nothing is merged from ./T
    assert get_st("A", "./T/N/X") == 425
    assert rep_st("A", "./T/N/X", "y") == 425
    assert add_st("A", "./T/N/Y", 1) == 425
    assert del_st("A", "./T/N/X") == 425
    assert get_st("B", "./T/N/X") == 200
    assert rep_st("B", "./T/N/X", "y") == 425
    assert _aclq("B", "./T/N/X") == ("", "Get=B", "./T/N")


def test_rule_root_always_has_acl_default_add_star_get_star():
    t, d = _agent()
    assert val("anyone", ".?prop=ACL") == "Add=*&Get=*"
    assert _aclq("anyone", ".") == ("Add=*&Get=*", "Add=*&Get=*", ".")
    assert add_st("anyone", "./Mine", 1) == 200
    assert get_st("anyone", "./Mine") == 200  # inherited from the root
    t.set_acl(".", "Add=*&Get=*&Replace=A")
    # the root's ACL can never be emptied: it would have nothing to inherit from
    assert rep_st("A", ".?prop=ACL", "") == 405
    assert _own(t, ".") == "Add=*&Get=*&Replace=A"


def test_rule_root_add_stays_star_replacing_it_is_405():
    t, d = _agent()
    t.set_acl(".", "Add=*&Get=*&Replace=A")
    for acl in ("Get=*&Replace=A", "Add=A&Get=*&Replace=A", "Add=A+B&Replace=A"):
        assert rep_st("A", ".?prop=ACL", acl) == 405, acl
        assert _own(t, ".") == "Add=*&Get=*&Replace=A"
    assert rep_st("A", "./?prop=ACL", "Add=*") == 400  # "./" is no URI
    assert rep_st("A", ".?prop=ACL", "Add=*&Replace=A") == 200
    assert _own(t, ".") == "Add=*&Replace=A"


def test_rule_get_prop_acl_returns_own_acl_maybe_empty():
    t, d = _agent()
    r = _get("A", "./T/N/X?prop=ACL")
    assert _st(r) == 200 and r[P.K_VALUE] == "" and r[P.K_FORMAT] == "chr"
    assert val("A", "./T?prop=ACL") == T_ACL


def test_rule_effective_acl_query_gives_own_effective_and_source_node():
    t, d = _agent()
    assert _aclq("A", "./T") == (T_ACL, T_ACL, "./T")
    assert _aclq("A", "./T/N/X") == ("", T_ACL, "./T")
    assert _aclq("A", "T/N/X") == ("", T_ACL, "./T")
    assert _aclq("A", "./DevInfo/DevId") == ("", "Get=*", "./DevInfo")
    assert _aclq("A", "./T/N/X?prop=ACL") == 400
    assert _aclq("A", "./T/Missing") == 404
