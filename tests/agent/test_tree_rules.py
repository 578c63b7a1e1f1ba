"""The OMA DM tree rules an audit found open (issue 13): names without '/', Title's 255 bytes,
Type on Replace, no DMTNDS values, Format in ?list=StructData, 406 for a listing not offered,
a ServerID's rights following it, the config DDF's AccessType and Occurrence. Runs on CPython
and under the device runtime.
"""

from agent import journal, mo
from agent import proto as P
from agent import uri as U
from agent.config import ConfigError, check
from agent.dispatch import Dispatcher
from agent.errors import DMError
from agent.tree import Tree
from tests.agent.acl_fixture import _D, _agent, _As, _own, _st, add_st, del_st, get_st, rep_st, val
from tests.agent.check import raises

_FRAME = bytearray(P.MAX_FRAME)  # made at import, while the heap is in one piece: a link's buffer
DMTNDS = ("application/vnd.syncml.dmtnds+xml", "application/vnd.syncml.dmtnds+wbxml")


def _req(who, op, uri, **fields):
    req = {P.K_OP: op, P.K_URI: uri}
    for key, value in fields.items():
        req[getattr(P, "K_" + key.upper())] = value
    return _D[0].handle(_As(who), req)


def test_rule_tnd6_a_node_name_must_not_contain_slash_add_of_2F_is_400():
    t, d = _agent()
    assert add_st("A", "./T/a%2Fb", 1) == 400
    assert add_st("A", "./T/a%2fb", None, "node") == 400
    assert get_st("A", "./T/a") == 404 and sorted(val("A", "./T")) == ["L", "N"]
    assert raises(DMError, U.parse, "./T/x%2Fy").status == 400
    raises(DMError, t.put, "./T/x%2Fy", 1)  # the device's own writes: the same rule
    raises(ConfigError, check, {"accounts": [{"server_id": "S", "name": "a/b"}]})
    assert U.is_name("a%b") and not U.is_name("a/b") and not U.is_name("..") and not U.is_name("")


def test_rule_tnd6_a_rename_to_a_name_with_slash_is_400():
    t, d = _agent()
    assert rep_st("A", "./T/L?prop=Name", "a/b") == 400
    assert rep_st("A", "./T/N?prop=Name", "/") == 400
    assert val("A", "./T/L") == 5 and sorted(val("A", "./T")) == ["L", "N"]
    assert rep_st("A", "./T/L?prop=Name", "a%b") == 200  # '%' is a character of a name
    assert val("A", "./T/a%25b") == 5


def test_rule_tnd775_a_title_longer_than_255_bytes_is_413_and_the_old_one_kept():
    t, d = _agent()
    assert rep_st("A", "./T/L?prop=Title", "old") == 200
    assert rep_st("A", "./T/L?prop=Title", "t" * 256) == 413
    assert rep_st("A", "./T/L?prop=Title", "\u00e9" * 128) == 413  # 128 characters, 256 bytes
    assert val("A", "./T/L?prop=Title") == "old"
    assert rep_st("A", "./T/N?prop=Title", "t" * 255) == 200
    assert val("A", "./T/N?prop=Title") == "t" * 255


def test_rule_tnd777_a_replace_that_gives_a_type_updates_the_leafs_type_and_is_journaled():
    t, d = _agent()
    t.begin()
    t.replace("A", "./T/N/X", "[]", "chr", "application/json")
    records = t.commit()
    assert val("A", "./T/N/X?prop=Type") == "application/json" and val("A", "./T/N/X") == "[]"
    assert _st(_req("A", P.OP_REPLACE, "./T/N/X", value="{}")) == 200  # no Type: kept
    assert val("A", "./T/N/X?prop=Type") == "application/json"
    assert _st(_req("A", P.OP_REPLACE, "./T/N/X", value="x", type="text/plain")) == 200
    assert val("A", "./T/N/X?prop=Type") == "text/plain"
    again, _ = _agent()  # a reboot replays the records: the Type comes back
    for record in records:
        journal.apply(again, record)
    assert again.value("./T/N/X") == "[]" and val("A", "./T/N/X?prop=Type") == "application/json"


def test_rule_tnd777_an_add_with_the_dmtnds_mime_type_is_415_and_creates_nothing():
    t, d = _agent()
    for mime in DMTNDS + ("application/vnd.syncml.dmtnds+json",):
        resp = _req("A", P.OP_ADD, "./T/Tree", value="<MgmtTree/>", format="xml", type=mime)
        assert _st(resp) == 415, (mime, resp)
        assert get_st("A", "./T/Tree") == 404
    assert _st(_req("A", P.OP_REPLACE, "./T/N/X", value="x", type=DMTNDS[0])) == 415
    assert val("A", "./T/N/X?prop=Type") == "text/plain"
    assert _st(_req("B", P.OP_ADD, "./T/Tree", value="<MgmtTree/>", format="xml", type=DMTNDS[0])) == 425  # ACL first


def test_rule_tnd772_list_structdata_entries_carry_format_an_empty_node_is_not_a_null_leaf():
    t, d = _agent()
    assert add_st("A", "./T/Empty", None, "node") == 200
    assert add_st("A", "./T/Null", None, "null") == 200
    entries = {e[0]: e[1:] for e in val("A", "./T?list=StructData")}
    assert entries["./T/Empty"] == [None, "node"] and entries["./T/Null"] == [None, "null"]
    assert entries["./T/L"] == [5, "int"] and entries["./T"] == [None, "node"]


def test_rule_tnd73_a_listing_the_device_does_not_offer_tnds_is_406():
    t, d = _agent()
    for kind in ("TNDS", "Tree", "StructDataX"):
        assert get_st("A", "./T?list=" + kind) == 406, kind
    assert get_st("A", "./T?list=") == 400  # no kind named: malformed


def _accounts_agent():
    t, d = _agent()
    t.set_acl("./T/N", "Delete=B&Get=A+B&Replace=B")
    t.set_acl("./DMAcc/B", "Add=B&Delete=B&Get=A+B&Replace=A+B")
    return t


def test_rule_replacing_a_serverid_moves_the_old_ids_rights_in_every_acl_to_the_new_id():
    t = _accounts_agent()
    t.begin()
    t.replace("A", "./DMAcc/B/ServerID", "B2")
    records = t.commit()
    assert t.value("./DMAcc/B/ServerID") == "B2"
    assert _own(t, "./T/N") == "Delete=B2&Get=A+B2&Replace=B2"
    assert _own(t, "./DMAcc/B") == "Add=B2&Delete=B2&Get=A+B2&Replace=A+B2"
    assert _own(t, "./DMAcc") == "Get=A+B2"
    assert get_st("B", "./T/N") == 425 and get_st("B2", "./T/N") == 200
    # journaled in the same transaction: a reboot that replays the records has it all
    again, _ = _agent()
    again.set_acl("./T/N", "Delete=B&Get=A+B&Replace=B")
    again.set_acl("./DMAcc/B", "Add=B&Delete=B&Get=A+B&Replace=A+B")
    for record in records:
        journal.apply(again, record)
    assert _own(again, "./T/N") == "Delete=B2&Get=A+B2&Replace=B2" and _own(again, "./DMAcc") == "Get=A+B2"
    assert again.value("./DMAcc/B/ServerID") == "B2"


def test_rule_replacing_a_serverid_to_an_id_an_acl_names_already_is_418_and_changes_nothing():
    t = _accounts_agent()
    t.set_acl("./T/L", "Get=C")
    assert rep_st("A", "./DMAcc/B/ServerID", "C") == 418  # B's and C's rights would merge
    assert rep_st("A", "./DMAcc/B/ServerID", "A") == 418  # another account's ServerID
    assert t.value("./DMAcc/B/ServerID") == "B" and _own(t, "./T/N") == "Delete=B&Get=A+B&Replace=B"
    assert _own(t, "./T/L") == "Get=C"
    t.set_acl("./DMAcc/B", "Get=A+B&Replace=B")
    assert rep_st("A", "./DMAcc/B/ServerID", "B3") == 425  # the Replace itself needs its right
    assert _own(t, "./T/N") == "Delete=B&Get=A+B&Replace=B"
    assert rep_st("B", "./DMAcc/B/ServerID", "B") == 200  # the same id: nothing moves
    assert _own(t, "./T/N") == "Delete=B&Get=A+B&Replace=B"


def _ddf_agent():
    """A tree whose config carries a DDF (as `dmagent ddf import` writes it)."""
    tree = Tree()
    mo.seed(tree, {"accounts": [{"server_id": "A"}, {"server_id": "B"}], "nodes": [
        {"uri": "./Board", "format": "node", "access": ["Get"], "acl": "Add=A&Delete=A&Get=*&Replace=A"},
        {"uri": "./Board/Serial", "format": "chr", "access": ["Get"], "value": "SN-1"},
        {"uri": "./Board/Key", "format": "chr", "access": ["Replace"], "value": "k"},
        {"uri": "./Board/Slots", "format": "node", "access": ["Add", "Delete", "Get"],
         "placeholder": {"format": "chr", "access": ["Add", "Delete", "Get"], "occurrence": "ZeroOrN:2"}},
        {"uri": "./Board/Free", "format": "node", "access": ["Add", "Delete", "Get", "Replace"],
         "placeholder": {"format": "chr", "access": ["Add", "Delete", "Get", "Replace"], "occurrence": "ZeroOrMore"}},
        {"uri": "./Board/Free/Plain", "value": 1},
    ]})
    _D[0] = Dispatcher(tree)
    return tree


def test_rule_ddf_accesstype_excludes_a_command_405_before_the_acl():
    t = _ddf_agent()
    for who in ("A", "B"):  # B has no right at all: still 405, not 425
        assert rep_st(who, "./Board/Serial", "SN-2") == 405
        assert add_st(who, "./Board/New", 1) == 405
        assert del_st(who, "./Board/Serial") == 405
        assert get_st(who, "./Board/Key") == 405
    assert val("A", "./Board/Serial") == "SN-1" and "New" not in val("A", "./Board")
    assert rep_st("A", "./Board/Key", "k2") == 200 and t.value("./Board/Key") == "k2"
    assert add_st("B", "./Board/Slots/S", "x") == 425  # allowed by the DDF: the ACL decides
    assert type(_entry(t, "./Board/Free/Plain")) is int  # a leaf with the DDF's all: still bare


def _entry(tree, uri):
    return tree._locate(tree._parse(uri)[0])[0]


def test_rule_ddf_occurrence_one_child_more_than_the_placeholder_allows_is_420():
    t = _ddf_agent()
    assert add_st("A", "./Board/Slots/S1", "x") == 200
    assert add_st("A", "./Board/Slots/S2", "x") == 200
    assert add_st("A", "./Board/Slots/S3", "x") == 420
    assert sorted(val("A", "./Board/Slots")) == ["S1", "S2"]
    # a node made there has the placeholder's AccessType: no Replace
    assert rep_st("A", "./Board/Slots/S1", "y") == 405
    assert del_st("A", "./Board/Slots/S1") == 200
    assert add_st("A", "./Board/Slots/S3", "x") == 200
    for i in range(20):  # ZeroOrMore: no limit
        assert add_st("A", "./Board/Free/F%d" % i, "x") == 200
    assert rep_st("A", "./Board/Free/F0", "y") == 200


def test_rule_status_413_a_value_over_the_bound_is_refused_while_decoding_and_keeps_the_id():
    # The string is never made (agent.cbor max_len): a board's heap need not hold it for its 413.
    from agent import cbor, frame
    from agent.session import Session

    import gc

    t, d = _agent()
    s = Session(d, "t", insecure=True)
    s.workspace = _FRAME  # as a link lends its receive buffer: the reply is built where the request was
    s.hello("A")
    head = cbor.dumps({P.K_ID: 9, P.K_OP: P.OP_ADD, P.K_URI: "./T/Big", P.K_FORMAT: "chr", P.K_VALUE: "@"})
    at = head.find(b"\x61@")  # the request, its value a text of 1,100 bytes, in _FRAME: no str of it
    _FRAME[:at] = head[:at]
    _FRAME[at : at + 3] = b"\x79\x04\x4c"
    for i in range(at + 3, at + 1103):
        _FRAME[i] = 0x76
    rest = head[at + 2 :]
    _FRAME[at + 1103 : at + 1103 + len(rest)] = rest
    gc.collect()
    out = s.on_frame(P.KIND_PLAIN, memoryview(_FRAME)[: at + 1103 + len(rest)])
    dec = frame.FrameDecoder()
    replies = [cbor.loads(bytes(b)) for kind, b in dec.feed(bytes(out))]
    dec.close()
    assert replies[0][P.K_STATUS] == 413 and replies[0][P.K_ID] == 9, replies
    assert replies[0][P.K_MSG] == "string too long"  # decoding said it, not the tree
    assert get_st("A", "./T/Big") == 404
