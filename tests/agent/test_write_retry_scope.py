"""Rule: a write with a client token (field 20) from a principal is answered from its first
reply on any link and is not run again; the same token and id from another principal, or a
write with no token or no principal, is scoped to the link and runs again elsewhere; a bad
token runs nothing. The link's own window holds its 8 newest replies. Through App and Link
(insecure mode names the principal). Plain asserts.
"""

from agent import frame

# As a board does (boards/unix/main.py): frame buffers first, while the heap is whole.
frame.reserve(3)

from agent import proto as P  # noqa: E402
from agent.app import App  # noqa: E402
from agent.session import Session  # noqa: E402
from tests.agent.edge_helpers import ask as _ask  # noqa: E402

_CONFIG = {"device": {"devid": "urn:t"}, "accounts": [{"server_id": "A"}, {"server_id": "B"}]}
_ids = [5000]


def _app():
    return App(_CONFIG, insecure=True, log=lambda msg: None)


def _hello(link, who=None):
    """One hello; the principal its reply says the link now speaks for."""
    _ids[0] += 1
    message = {P.K_ID: _ids[0], P.K_OP: P.OP_HELLO}
    if who is not None:
        message[P.K_SERVER] = who
    r = _ask(link, message)
    assert r[P.K_STATUS] == P.S_OK
    return r[P.K_VALUE]["principal"]


def _add(rid, uri, token=None):
    message = {P.K_ID: rid, P.K_OP: P.OP_ADD, P.K_URI: uri, P.K_VALUE: 1, P.K_FORMAT: "int"}
    if token is not None:
        message[P.K_TOKEN] = token
    return message


def _status(link, message):
    return _ask(link, message)[P.K_STATUS]


def test_rule_a_token_write_retried_on_a_new_link_gets_its_first_answer_and_runs_once():
    app = _app()
    first = app.new_link("one", False)
    _hello(first, "A")
    assert _status(first, _add(7, "./X", token=77)) == P.S_OK
    first.close()
    second = app.new_link("two", False)
    _hello(second, "A")
    ran = second.executed
    assert _status(second, _add(7, "./X", token=77)) == P.S_OK  # not 418: it did not run again
    assert second.executed == ran
    _hello(second, "A")  # a new hello: the device-wide reply stays
    assert _status(second, _add(7, "./X", token=77)) == P.S_OK
    assert _status(second, _add(7, "./X", token=78)) == P.S_EXISTS  # another token: runs
    second.close()


def test_rule_the_same_token_and_id_from_another_principal_runs_for_it():
    app = _app()
    link = app.new_link("one", False)
    _hello(link, "A")
    assert _status(link, _add(7, "./X", token=77)) == P.S_OK
    other = app.new_link("two", False)
    _hello(other, "B")
    assert _status(other, _add(7, "./X", token=77)) == P.S_EXISTS  # B's own request: it ran
    link.close()
    other.close()


def test_rule_a_write_without_a_token_or_a_principal_is_kept_for_its_link_only():
    app = _app()
    link = app.new_link("one", False)
    assert _status(link, _add(1, "./N", token=77)) == P.S_AUTH_REQUIRED  # nobody spoke
    ran = link.executed
    assert _status(link, _add(1, "./N", token=77)) == P.S_AUTH_REQUIRED
    assert link.executed == ran  # its link kept the answer
    _hello(link, "A")
    assert _status(link, _add(2, "./T")) == P.S_OK
    assert _status(link, _add(2, "./T")) == P.S_OK
    link.close()
    other = app.new_link("two", False)
    ran = other.executed
    assert _status(other, _add(1, "./N", token=77)) == P.S_AUTH_REQUIRED
    assert other.executed == ran + 1  # another link: run again
    _hello(other, "A")
    assert _status(other, _add(2, "./T")) == P.S_EXISTS
    other.close()


def test_rule_a_plain_hello_starts_the_links_own_replies_afresh():
    app = _app()
    link = app.new_link("one", False)
    _hello(link, "A")
    assert _status(link, _add(3, "./H")) == P.S_OK
    _hello(link, "A")
    assert _status(link, _add(3, "./H")) == P.S_EXISTS  # the link's window was dropped
    link.close()


def test_rule_a_bad_client_token_gets_400_and_runs_nothing():
    app = _app()
    link = app.new_link("one", False)
    _hello(link, "A")
    for bad in (-1, 1 << 30, "77", 1.5, True, [1]):
        ran = link.executed
        r = _ask(link, _add(9, "./Bad", token=bad))
        assert r[P.K_STATUS] == P.S_BAD_REQUEST and "token" in r[P.K_MSG] and r[P.K_ID] == 9, (bad, r)
        assert link.executed == ran and not app.tree.exists("./Bad"), bad
    assert _status(link, _add(9, "./Bad", token=(1 << 30) - 1)) == P.S_OK  # the largest one
    assert _status(link, _add(10, "./Bad0", token=0)) == P.S_OK
    link.close()


def test_rule_a_link_keeps_its_8_newest_replies():
    app = _app()
    link = app.new_link("one", False)
    _hello(link, "A")
    for rid in range(1, 10):
        assert _status(link, _add(rid, "./L%d" % rid)) == P.S_OK
    assert _status(link, _add(2, "./L2")) == P.S_OK  # among the 8 newest: from the cache
    assert _status(link, _add(1, "./L1")) == P.S_EXISTS  # pushed out: run again
    link.close()


def test_rule_a_link_is_authenticated_once_a_principal_is_named_and_no_longer_after():
    app = _app()
    link = app.new_link("one", False)
    assert not link.authenticated
    assert _hello(link, "A") == "A"
    assert link.authenticated
    assert _hello(link) is None  # a hello that names nobody: nobody from then on
    assert not link.authenticated
    link.close()


def test_rule_a_session_is_not_insecure_unless_asked():
    app = _app()
    s = Session(app.dispatcher, "direct")
    assert not s.insecure and s.channel is None and not s.authenticated


def test_rule_a_reads_reply_is_kept_when_it_is_at_most_256_bytes():
    from agent import cbor

    app = _app()
    link = app.new_link("one", False)
    _hello(link, "A")
    for size, kept in ((256, True), (257, False)):
        app.tree.put("./R", "", "chr")
        get = {P.K_ID: 40 + size, P.K_OP: P.OP_GET, P.K_URI: "./R"}
        probe = _ask(link, {P.K_ID: 30 + size, P.K_OP: P.OP_GET, P.K_URI: "./R"})  # an id as long
        # a reply body of exactly `size` bytes (a text of 24 to 255 has one more length byte)
        text = "v" * (size - len(cbor.dumps(probe)) - 1)
        app.tree.put("./R", text, "chr")
        first = _ask(link, get)
        assert len(cbor.dumps(first)) == size and first[P.K_VALUE] == text
        app.tree.put("./R", "w" * len(text), "chr")
        again = _ask(link, get)[P.K_VALUE]
        assert again == (text if kept else "w" * len(text)), size
    link.close()


def test_rule_a_link_keeps_at_most_1024_bytes_of_its_replies():
    from agent import cbor

    app = _app()
    link = app.new_link("one", False)
    _hello(link, "A")
    app.tree.put("./S", fmt="node")
    for i, size in enumerate((256, 256, 256, 200, 57)):  # 1025 bytes in all: the oldest goes
        rid = 300 + i  # ids of one length
        head = len(cbor.dumps({P.K_ID: rid, P.K_STATUS: 200, P.K_VALUE: "", P.K_FORMAT: "chr"}))
        app.tree.put("./S/%d" % i, "v" * (size - head - 1), "chr")  # 24 to 255: one more length byte
        r = _ask(link, {P.K_ID: rid, P.K_OP: P.OP_GET, P.K_URI: "./S/%d" % i})
        assert len(cbor.dumps(r)) == size, (len(cbor.dumps(r)), size)
    kept = [r[3] for r in link.replies.records if 300 <= r[3] < 310]  # (the hello's is apart)
    assert kept == [301, 302, 303, 304], kept
    link.close()


def test_rule_a_token_writes_failure_is_its_answer_on_every_link():
    # a write that changed nothing is not journaled, but its reply is kept device-wide all
    # the same: the retry must not run where the first try failed
    app = _app()
    first = app.new_link("one", False)
    _hello(first, "A")
    assert _status(first, _add(11, "./P/x", token=5)) == P.S_NOT_FOUND  # no ./P yet
    app.tree.put("./P", fmt="node")
    first.close()
    second = app.new_link("two", False)
    _hello(second, "A")
    assert _status(second, _add(11, "./P/x", token=5)) == P.S_NOT_FOUND
    assert not app.tree.exists("./P/x")
    second.close()
