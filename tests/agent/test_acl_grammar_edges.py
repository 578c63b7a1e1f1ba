"""The ACL rules at their edges, through agent.acl's public functions (parse, grants, ids,
is_identifier, creator_acl; remove_id: agent.accounts): the places a one-character slip in the scanner would
grant the wrong principal. Plain asserts: runs under CPython and the device runtime.
"""

from agent import acl as A
from agent import proto as P
from agent.accounts import remove_id
from agent.errors import DMError
from tests.agent.check import raises

_CMDS = ("Add", "Delete", "Exec", "Get", "Replace")
# Ids that are prefixes, suffixes and command names of one another: substring matching shows.
_IDS = ("A", "AB", "BA", "B", "Get", "Add", "e", "*")


def _model(acl):
    """{cmd: [ids]} of a canonical ACL, by splitting: the reference grants/ids are checked on."""
    out = {}
    if acl:
        for entry in acl.split("&"):
            cmd, _, rest = entry.partition("=")
            out[cmd] = rest.split("+")
    return out


def _canonical_acls():
    """A spread of canonical ACLs: each command absent, one id, two ids or '*'."""
    choices = ((), ("A",), ("AB", "A"), ("BA",), ("Get", "e"), ("*",), ("Add", "B"))
    for k in range(len(_CMDS) * len(choices)):
        parts = []
        for c, cmd in enumerate(_CMDS):
            pick = choices[(k + 3 * c) % len(choices)] if (k >> c) & 1 or c == k % 5 else ()
            if pick:
                parts.append(cmd + "=" + "+".join(pick))
        yield "&".join(parts)


def test_rule_identifier_is_printable_ascii_without_separators():
    for good in ("A", "!", "~", "srv.example:80/dm", "Get", "a" * 64):
        assert A.is_identifier(good) is True, good
    for bad in ("", None, 5, b"A", " A", "A B", "A=B", "A&B", "A*", "A+B", "\x7f", "\x20", "\u00e9", "A\n"):
        assert not A.is_identifier(bad), repr(bad)


def test_rule_empty_acl_parses_to_empty_text_meaning_inherit():
    assert A.parse("") == ""
    assert A.grants("", "Get", "A") is False
    assert A.ids("", "Get") is None


def test_rule_parse_gives_canonical_order_without_repeats():
    assert A.parse("Replace=B&Get=A+B+A&Add=C&Get=C+B") == "Add=C&Get=A+B+C&Replace=B"
    assert A.parse("Get=*") == "Get=*"
    assert A.parse("Exec=A&Delete=A") == "Delete=A&Exec=A"


def test_rule_malformed_acl_text_is_refused_400():
    for bad in ("Get", "=A", "Get=", "Get=A+", "Get=*+A", "Get=A&Get=*", "get=A", "Get=A&", "Get==A"):
        e = raises(DMError, A.parse, bad)
        assert e.status == 400, bad
    # not text at all: a format error, 415
    assert raises(DMError, A.parse, 5).status == P.S_BAD_FORMAT
    assert raises(DMError, A.parse, None).status == P.S_BAD_FORMAT


def test_rule_grants_matches_whole_identifier_only():
    acl = A.parse("Get=AB+BA&Replace=A")
    assert A.grants(acl, "Get", "AB") and A.grants(acl, "Get", "BA")
    for who in ("A", "B", "ABB", "BAB", "ABA", "AB+BA", "", None):
        assert A.grants(acl, "Get", who) is False, who
    assert A.grants(acl, "Replace", "A") is True
    assert A.grants(acl, "Replace", "AB") is False
    assert A.grants(acl, "Add", "A") is False  # no entry for the command


def test_rule_single_character_id_is_not_star():
    acl = "Get=A"
    assert A.grants(acl, "Get", "A") is True
    assert A.grants(acl, "Get", "B") is False
    assert A.grants(acl, "Get", None) is False
    assert A.grants("Get=B&Replace=A", "Get", "A") is False


def test_rule_star_grants_everyone_including_unauthenticated():
    for acl in ("Get=*", "Add=A&Get=*", "Get=*&Replace=A", "Add=A&Get=*&Replace=B"):
        for who in ("A", "B", "anyone", None, ""):
            assert A.grants(acl, "Get", who) is True, (acl, who)
        assert A.ids(acl, "Get") == "*"


def test_rule_unauthenticated_matches_no_named_id():
    assert A.grants("Get=A+B", "Get", None) is False
    assert A.grants("Get=A+B", "Get", "") is False


def test_rule_command_name_inside_an_id_is_not_its_entry():
    # An id may be spelled like a command: it is not that command's entry.
    acl = A.parse("Add=Get+Replace&Replace=e")
    assert A.ids(acl, "Get") is None
    assert A.grants(acl, "Get", "Get") is False
    assert A.ids(acl, "Add") == "Get+Replace"
    assert A.ids(acl, "Replace") == "e"
    assert A.grants(acl, "Add", "Get") and A.grants(acl, "Add", "Replace")
    assert A.grants(acl, "Replace", "e") and not A.grants(acl, "Delete", "e")


def test_rule_ids_and_grants_agree_with_a_split_model_on_every_entry_position():
    # First, middle and last entry; first, middle and last id: the scanner's edges.
    n = 0
    for acl in _canonical_acls():
        assert A.parse(acl) == acl, acl
        model = _model(acl)
        for cmd in _CMDS:
            got = A.ids(acl, cmd)
            assert got == ("+".join(model[cmd]) if cmd in model else None), (acl, cmd, got)
            for who in _IDS + (None,):
                want = cmd in model and ("*" in model[cmd] or who in model[cmd])
                assert A.grants(acl, cmd, who) is want, (acl, cmd, who)
                n += 1
    assert n > 500


def test_rule_remove_id_drops_whole_identifier_and_empty_entries():
    acl = "Add=A+AB&Get=AB&Replace=BA+A"
    assert remove_id(acl, "A") == "Add=AB&Get=AB&Replace=BA"
    assert remove_id(acl, "AB") == "Add=A&Replace=BA+A"
    assert remove_id(acl, "B") == acl  # a substring of ids is no id
    assert remove_id(acl, "C") == acl
    assert remove_id("Get=A", "A") == ""


def test_rule_remove_id_at_root_leaves_star_not_nothing():
    # The root must keep an ACL: a command emptied there becomes '*'.
    assert remove_id("Add=*&Get=A&Replace=A+B", "A", True) == "Add=*&Get=*&Replace=B"
    assert remove_id("Get=A", "A", True) == "Get=*"
    assert remove_id("Get=A", "A", False) == ""
    assert remove_id("Get=A+B", "A", True) == "Get=B"


def test_rule_creator_gets_add_delete_replace_on_its_node():
    acl = A.creator_acl("", "Srv1")  # no Replace on the parent
    assert A.parse(acl) == acl
    for cmd in ("Add", "Delete", "Replace"):
        assert A.grants(acl, cmd, "Srv1") is True
        assert A.grants(acl, cmd, "Srv") is False
    assert A.grants(acl, "Get", "Srv1") is False and A.grants(acl, "Exec", "Srv1") is False
