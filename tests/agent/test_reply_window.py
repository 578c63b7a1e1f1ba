"""Rule: the window of kept write replies is exactly the one docs/protocol.md s.3 promises:
per scope the 16 newest, at most 1024 bytes of them, in at most 4 scopes, the oldest going
first; a reply is kept once, and a scope's text once for all its replies (heap). Through
agent.session.Replies, the device-wide cache every link shares. Plain asserts.
"""

from agent.session import Replies


def _body(n, tag=0):
    return bytes([tag & 0xFF]) * n


def _kept(replies):
    return [(r[1], r[2], r[3]) for r in replies.records]


def test_rule_a_scope_keeps_its_16_newest_write_replies():
    r = Replies()
    for rid in range(1, 18):
        r.put("1:A>", 7, rid, _body(4, rid))
    assert r.get("1:A>", 7, 1) is None  # pushed out by 16 newer ones
    for rid in range(2, 18):
        assert r.get("1:A>", 7, rid) == _body(4, rid), rid
    assert _kept(r) == [("1:A>", 7, rid) for rid in range(2, 18)]  # oldest first


def test_rule_a_scope_keeps_at_most_1024_bytes_of_replies():
    r = Replies()
    for rid in range(1, 5):
        r.put("1:A>", 7, rid, _body(256, rid))  # exactly 1024 bytes: all kept
    assert [k[2] for k in _kept(r)] == [1, 2, 3, 4]
    r = Replies()
    for rid, n in ((1, 256), (2, 256), (3, 256), (4, 257)):  # 1025 bytes: the oldest goes
        r.put("1:A>", 7, rid, _body(n, rid))
    assert [k[2] for k in _kept(r)] == [2, 3, 4]
    assert r.get("1:A>", 7, 1) is None and r.get("1:A>", 7, 4) == _body(257, 4)


def test_rule_a_reply_larger_than_a_scope_holds_is_not_kept_and_pushes_nothing_out():
    r = Replies()
    r.put("1:A>", 7, 1, _body(10))
    r.put("1:A>", 7, 2, _body(1025))
    assert _kept(r) == [("1:A>", 7, 1)]
    r.put("1:A>", 7, 3, _body(1024))  # as large as a scope holds: kept, the rest goes
    assert _kept(r) == [("1:A>", 7, 3)]


def test_rule_at_most_4_scopes_are_kept_and_the_one_used_least_recently_goes():
    r = Replies()
    for scope in ("1:A>", "1:B>", "1:C>", "1:D>"):
        r.put(scope, 7, 1, _body(4))
    assert len(r.records) == 4
    r.put("1:A>", 7, 2, _body(4))  # A used again: B is now the least recently used
    r.put("1:E>", 7, 1, _body(4))
    assert _kept(r) == [("1:C>", 7, 1), ("1:D>", 7, 1), ("1:A>", 7, 2), ("1:E>", 7, 1)]
    assert r.get("1:B>", 7, 1) is None and r.get("1:A>", 7, 1) is None


def test_rule_an_eviction_takes_the_oldest_reply_of_the_scope_only():
    r = Replies(per_scope=2, scopes=4, scope_bytes=1024)
    r.put("1:A>", 7, 1, _body(4, 1))
    r.put("1:B>", 7, 1, _body(4, 2))
    r.put("1:A>", 7, 2, _body(4, 3))
    r.put("1:A>", 7, 3, _body(4, 4))  # A has 3: its oldest goes, B's stays
    assert _kept(r) == [("1:B>", 7, 1), ("1:A>", 7, 2), ("1:A>", 7, 3)]


def test_rule_a_reply_is_kept_once_and_a_retry_cannot_replace_it():
    r = Replies()
    r.put("1:A>", 7, 1, b"first")
    r.put("1:A>", 7, 1, b"second")
    assert _kept(r) == [("1:A>", 7, 1)] and r.get("1:A>", 7, 1) == b"first"
    r.put("1:A>", 8, 1, b"another token")  # token and id together name a reply
    r.put("2:A>", 7, 1, b"another scope")
    assert r.get("1:A>", 8, 1) == b"another token" and r.get("2:A>", 7, 1) == b"another scope"
    assert r.get("1:A>", 7, 2) is None and r.get("1:A>", 9, 1) is None


def test_rule_a_scopes_text_is_held_once_for_all_its_replies():
    r = Replies()
    r.put("".join(["1:", "A>"]), 7, 1, b"a")
    r.put("".join(["1:", "A>"]), 7, 2, b"b")  # an equal text, built afresh
    assert r.records[0][1] is r.records[1][1]
    assert r.get("1:A>", 7, 2) == b"b"


def test_rule_loaded_records_are_kept_under_the_same_window():
    r = Replies()
    for record in [["rep", "1:A>", 7, rid, _body(4, rid)] for rid in range(1, 21)]:  # as boot replays them
        r.put(record[1], record[2], record[3], record[4])
    assert [k[2] for k in _kept(r)] == list(range(5, 21))
