"""The reply cache's bounds and what the journal sees: the oldest reply goes first, in count
and in bytes; a large read is not kept. A write answered 200 being in the journal once, however
often it is retried (test_exactly_once_journal). Plain asserts.
"""

from agent import proto as P
from agent.app import App
from agent.session import ReplyCache
from tests.agent.edge_helpers import ask as _ask

_CONFIG = {"device": {"devid": "urn:t"}, "accounts": [{"server_id": "A"}]}


def test_rule_reply_cache_forgets_the_oldest_first_by_count():
    c = ReplyCache(max_entries=3, max_bytes=1000)
    for rid in range(4):
        c.put(rid, P.KIND_PLAIN, b"r%d" % rid)
    assert c.get(0, P.KIND_PLAIN) is None
    assert [c.get(rid, P.KIND_PLAIN) for rid in (1, 2, 3)] == [b"r1", b"r2", b"r3"]


def test_rule_reply_cache_forgets_the_oldest_first_by_bytes():
    c = ReplyCache(max_entries=10, max_bytes=10)
    c.put(1, P.KIND_PLAIN, b"aaaa")
    c.put(2, P.KIND_PLAIN, b"bbbb")
    assert c.get(1, P.KIND_PLAIN) == b"aaaa" and c.get(2, P.KIND_PLAIN) == b"bbbb"
    c.put(3, P.KIND_PLAIN, b"cccc")  # 12 bytes > 10: the oldest goes
    assert c.get(1, P.KIND_PLAIN) is None
    assert c.get(2, P.KIND_PLAIN) == b"bbbb" and c.get(3, P.KIND_PLAIN) == b"cccc"
    c.put(4, P.KIND_PLAIN, b"d" * 11)  # larger than the whole cache: not kept, nothing lost
    assert c.get(4, P.KIND_PLAIN) is None and c.get(3, P.KIND_PLAIN) == b"cccc"
    for rid in range(5, 25):  # the byte count goes down as replies go: small ones keep fitting
        c.put(rid, P.KIND_PLAIN, b"ee")
    assert c.get(24, P.KIND_PLAIN) == b"ee" and c.get(20, P.KIND_PLAIN) == b"ee"


def test_rule_reply_cache_keeps_the_first_reply_of_an_id_and_the_kind_it_came_under():
    c = ReplyCache()
    c.put(7, P.KIND_PLAIN, b"first")
    c.put(7, P.KIND_PLAIN, b"second")
    assert c.get(7, P.KIND_PLAIN) == b"first"
    assert c.get(7, P.KIND_SEALED) is None  # a plain reply never answers a sealed request
    c.clear()
    assert c.get(7, P.KIND_PLAIN) is None


def test_rule_a_large_read_reply_is_not_kept_its_retry_reads_afresh():
    app = App(_CONFIG, insecure=True, log=lambda msg: None)
    link = app.new_link("t", False)
    assert _ask(link, {P.K_ID: 1, P.K_OP: P.OP_HELLO, P.K_SERVER: "A"})[P.K_STATUS] == 200
    big = "x" * 400
    assert _ask(link, {P.K_ID: 2, P.K_OP: P.OP_ADD, P.K_URI: "./big", P.K_VALUE: big,
                       P.K_FORMAT: "chr"})[P.K_STATUS] == 200
    get = {P.K_ID: 3, P.K_OP: P.OP_GET, P.K_URI: "./big"}
    assert _ask(link, get)[P.K_VALUE] == big
    app.tree.put("./big", "y" * 400, "chr")
    assert _ask(link, get)[P.K_VALUE] == "y" * 400
    link.close()
