"""The OMA DM rules an audit found missing outside the tree: Sequence, Copy, what may not be
inside an Atomic, 407 without credentials, the DMAcc MO's nodes, MO identifiers, date and
time values that exist. Runs on CPython and under the device runtime.
"""

from agent import proto as P
from agent.dates import is_date, is_time
from tests.agent.acl_fixture import _agent, _As, _do, _st, get_st, val


def _batch(who, op, items):
    return _D_handle(who, {P.K_ID: 7, P.K_OP: op, P.K_ITEMS: items})


def _D_handle(who, request):
    from tests.agent.acl_fixture import _D

    return _D[0].handle(_As(who), request)


def test_dm_protocol_sequence_runs_in_order_and_stops_at_the_first_failure():
    _agent()
    resp = _batch("A", P.OP_SEQUENCE, [
        {P.K_OP: P.OP_ADD, P.K_URI: "./T/S1", P.K_VALUE: 1, P.K_FORMAT: "int"},
        {P.K_OP: P.OP_GET, P.K_URI: "./T/S1"},
        {P.K_OP: P.OP_ADD, P.K_URI: "./T/S1", P.K_VALUE: 2, P.K_FORMAT: "int"},  # exists
        {P.K_OP: P.OP_ADD, P.K_URI: "./T/S2", P.K_VALUE: 3, P.K_FORMAT: "int"},
    ])
    assert _st(resp) == 200 and resp[P.K_ID] == 7
    items = resp[P.K_ITEMS]
    assert [i[P.K_STATUS] for i in items] == [200, 200, 418, 215]
    assert items[1][P.K_VALUE] == 1 and P.K_ID not in items[1]
    assert val("A", "./T/S1") == 1  # not atomic: what went before the failure stays
    assert get_st("A", "./T/S2") == 404


def test_dm_protocol_sequence_inside_a_sequence_is_500_and_bad_sequences_400():
    _agent()
    inner = {P.K_OP: P.OP_SEQUENCE, P.K_ITEMS: [{P.K_OP: P.OP_GET, P.K_URI: "./T/L"}]}
    resp = _batch("A", P.OP_SEQUENCE, [inner, {P.K_OP: P.OP_GET, P.K_URI: "./T/L"}])
    assert [i[P.K_STATUS] for i in resp[P.K_ITEMS]] == [500, 215]
    assert _st(_batch("A", P.OP_SEQUENCE, [])) == 400
    assert _st(_D_handle("A", {P.K_OP: P.OP_SEQUENCE})) == 400


def test_dm_protocol_get_or_nested_atomic_inside_an_atomic_is_500_and_rolls_back():
    _agent()
    for bad in ({P.K_OP: P.OP_GET, P.K_URI: "./T/L"},
                {P.K_OP: P.OP_ATOMIC, P.K_ITEMS: [{P.K_OP: P.OP_DELETE, P.K_URI: "./T/L"}]},
                {P.K_OP: P.OP_SEQUENCE, P.K_ITEMS: [{P.K_OP: P.OP_DELETE, P.K_URI: "./T/L"}]}):
        resp = _batch("A", P.OP_ATOMIC, [{P.K_OP: P.OP_ADD, P.K_URI: "./T/New", P.K_FORMAT: "node"}, bad])
        assert _st(resp) == 507
        assert [i[P.K_STATUS] for i in resp[P.K_ITEMS]] == [216, 500]
        assert get_st("A", "./T/New") == 404 and val("A", "./T/L") == 5


def test_dm_protocol_copy_is_get_then_add_with_value_format_and_type():
    _agent()
    _do("A", P.OP_REPLACE, "./T/L", 9)
    copy = {P.K_OP: P.OP_COPY, P.K_URI: "./T/L2", P.K_SOURCE: "./T/L"}
    assert _st(_D_handle("A", copy)) == 200
    assert val("A", "./T/L2") == 9 and val("A", "./T/L2?prop=Format") == "int"
    assert val("A", "./T/L2?prop=Type") == val("A", "./T/L?prop=Type")
    assert _st(_D_handle("A", copy)) == 418  # a Copy never overwrites
    assert _st(_D_handle("A", _copy("./T/C", "./T/N"))) == 405  # interior
    assert _st(_D_handle("A", _copy("./T/C", "./T/Nope"))) == 404
    assert _st(_D_handle("B", _copy("./T/C", "./T/L"))) == 425  # no Get on the source for B
    assert _st(_D_handle("A", {P.K_OP: P.OP_COPY, P.K_URI: "./T/C"})) == 400  # no source
    assert get_st("A", "./T/C") == 404


def _copy(uri, source):
    return {P.K_OP: P.OP_COPY, P.K_URI: uri, P.K_SOURCE: source}


def test_dm_protocol_copy_of_a_secret_is_refused_like_its_get():
    _agent(auth=True)
    copy = {P.K_OP: P.OP_COPY, P.K_URI: "./DMAcc/A/Leak", P.K_SOURCE: "./DMAcc/A/AppAuth/Srv/AAuthSecret"}
    assert _st(_D_handle("A", copy)) == 405
    assert get_st("A", "./DMAcc/A/Leak") == 404


def test_dm_status_407_without_credentials_for_copy_and_sequence_too():
    _agent()
    assert _st(_D_handle(None, {P.K_OP: P.OP_COPY, P.K_URI: "./T/C", P.K_SOURCE: "./T/L"})) == 407
    assert _st(_batch(None, P.OP_SEQUENCE, [{P.K_OP: P.OP_GET, P.K_URI: "./T/L"}])) == 407


def test_dmacc_mo_accounts_carry_appid_appaddr_and_aauthlevel_and_aauthdata_is_no_get():
    from agent import mo
    from agent.dispatch import Dispatcher
    from agent.tree import Tree
    from tests.agent import acl_fixture

    tree = Tree()
    mo.seed(tree, {"accounts": [{"server_id": "A", "addr": "https://dm.example/a",
                                 "auth": {"secret": "s", "data": "nonce"}}]})
    acl_fixture._D[0] = Dispatcher(tree)
    assert val("A", "./DMAcc/A/AppID") == "w7"
    assert val("A", "./DMAcc/A/AppAddr/Srv/AddrType") == "URI"
    assert val("A", "./DMAcc/A/AppAddr/Srv/Addr") == "https://dm.example/a"
    assert val("A", "./DMAcc/A/AppAuth/Srv/AAuthLevel") == "SRVCRED"
    assert get_st("A", "./DMAcc/A/AppAuth/Srv/AAuthData") == 405
    assert get_st("A", "./DMAcc/A/AppAuth/Srv/AAuthSecret") == 405


def test_standard_objects_carry_their_mo_identifiers_in_type():
    _agent()
    assert val("A", "./DevInfo?prop=Type") == "urn:oma:mo:oma-dm-devinfo:1.0"
    assert val("A", "./DevDetail?prop=Type") == "urn:oma:mo:oma-dm-devdetail:1.0"
    assert val("A", "./DMAcc?prop=Type") == "urn:oma:mo:oma-dm-dmacc:1.0"


def test_tnd_formats_date_and_time_must_exist_not_only_look_right():
    for good in ("2024-05-31", "20240229", "2000-02-29"):
        assert is_date(good), good
    for bad in ("2024-13-45", "2023-02-29", "1900-02-29", "2024-04-31", "2024-00-10"):
        assert not is_date(bad), bad
    for good in ("23:59:59", "12:00:00Z", "120000+0530", "2024-05-31T00:00:00-08:00"):
        assert is_time(good), good
    for bad in ("25:61:61", "24:00:00", "12:60:00", "12:00:61", "12:00:00+25", "2024-13-01T00:00:00"):
        assert not is_time(bad), bad
    _agent()
    assert _st(_do("A", P.OP_ADD, "./T/D", "2024-13-45", "date")) == 415
    assert _st(_do("A", P.OP_ADD, "./T/D", "2024-12-31", "date")) == 200
